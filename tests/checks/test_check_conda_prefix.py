"""Fast tier: the `conda-prefix` check (conda's shell state vs the target environment)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import conda_prefix as check

ENV = "/opt/conda/envs/ml"
OTHER = "/opt/conda/envs/other"
BASE = "/opt/conda"


def _conda(**facts: object) -> sf.Snapshot:
    return sf.patch(sf.base(), "conda", **facts)


def _prepend(prefix: str, directory: str) -> sf.ShellAction:
    return sf.action(f"export LD_LIBRARY_PATH={directory}:$LD_LIBRARY_PATH", added=(directory,),
                     file=f"{prefix}/etc/conda/activate.d/x.sh", line=1)


def _conda_env(**facts: object) -> sf.Snapshot:
    """The target is the conda environment ENV (by the conda facts)."""
    return _conda(target_prefix=ENV, target_is_conda_env=True, **facts)


def test_skip_without_facts_or_conda() -> None:
    sf.one(check, sf.base(conda=None), Status.SKIP)
    assert "conda is not in use" in sf.one(check, sf.base(), Status.SKIP).title


def test_ok_active_env_is_the_target() -> None:
    found = sf.one(check, _conda_env(conda_prefix=ENV, conda_prefix_exists=True, shlvl_raw="1", shlvl=1), Status.OK)
    assert f"the active conda environment ({ENV}) is the one the target Python belongs to" == found.title


def test_ok_target_conda_env_used_without_hooks() -> None:
    assert "conda's shell state is consistent" in sf.one(check, _conda_env(), Status.OK).title


def test_not_activated_env_whose_hooks_set_the_path() -> None:
    hooks = sf.env_hooks(ENV, activate=[sf.hook(ENV, "cuda.sh", "activate", _prepend(ENV, f"{ENV}/lib"))])
    found = sf.run(check, _conda_env(hooks=(hooks,)))
    first = sf.titled(found, "is not activated")
    assert first.status is Status.WARN and first.fix is not None and first.fix.id == "conda-activate"
    unrestored = sf.titled(found, "no deactivate.d script restores LD_LIBRARY_PATH")
    assert unrestored.status is Status.WARN and f"prepends {ENV}/lib" in unrestored.title
    assert unrestored.fix is not None and unrestored.fix.id == "venv-hooks"


def test_hooks_that_restore_on_deactivation() -> None:
    restore = sf.action("export LD_LIBRARY_PATH=$CONDA_BACKUP_LD_LIBRARY_PATH", kind="restore")
    hooks = sf.env_hooks(ENV, activate=[sf.hook(ENV, "cuda.sh", "activate", _prepend(ENV, f"{ENV}/lib"))],
                         deactivate=[sf.hook(ENV, "cuda.sh", "deactivate", restore)])
    found = sf.run(check, _conda_env(conda_prefix=ENV, conda_prefix_exists=True, hooks=(hooks,)))
    assert sf.statuses(found) == [Status.OK, Status.OK]
    assert "undo it on deactivation" in found[1].title and "restored by deactivate.d/cuda.sh" in found[1].title


def test_conda_prefix_that_does_not_exist() -> None:
    found = sf.one(check, _conda(conda_prefix=OTHER, conda_prefix_exists=False), Status.WARN)
    assert f"CONDA_PREFIX points to {OTHER}, which does not exist" in found.title
    assert found.fix is not None and found.fix.id == "conda-activate"


def test_another_env_active_than_the_target_env() -> None:
    found = sf.one(check, _conda_env(conda_prefix=BASE, conda_prefix_exists=True), Status.WARN)
    assert f"CONDA_PREFIX is {BASE} but the Python in use belongs to the conda environment {ENV}" == found.title
    assert found.fix is not None and found.fix.commands == (f"conda activate {ENV}",)


def test_conda_env_active_under_a_venv_without_consequences() -> None:
    found = sf.run(check, _conda(conda_prefix=BASE, conda_prefix_exists=True))
    assert sf.statuses(found) == [Status.OK, Status.OK]
    sf.titled(found, f"is active, but the target is the venv {sf.VENV}; nothing of {BASE} is on LD_LIBRARY_PATH")


def test_conda_env_active_under_a_venv_with_its_libraries_on_the_path() -> None:
    entry = sf.entry(0, f"{BASE}/lib", conda_prefix=BASE, owner="base")
    found = sf.one(check, _conda(conda_prefix=BASE, conda_prefix_exists=True, entries=(entry,)), Status.WARN)
    assert "is still active under the venv" in found.title and "its libraries are on LD_LIBRARY_PATH" in found.title
    assert found.fix is not None and found.fix.id == "conda-deactivate"


def test_conda_env_active_under_a_system_python_with_hooks() -> None:
    hooks = sf.env_hooks(BASE, activate=[sf.hook(BASE, "x.sh", "activate", _prepend(BASE, f"{BASE}/lib"))])
    snap = sf.patch(_conda(conda_prefix=BASE, conda_prefix_exists=True, hooks=(hooks,)), "target", prefix=sf.BASE_PYTHON)
    found = sf.one(check, snap, Status.WARN)
    assert "still active under the Python" in found.title and "its activation hooks changed LD_LIBRARY_PATH" in found.title


def test_shell_level_not_a_number() -> None:
    found = sf.one(check, _conda(shlvl_raw="x"), Status.WARN)
    assert "CONDA_SHLVL is 'x', not a number" == found.title and found.fix is not None and found.fix.id == "conda-reset"


def test_shell_level_without_prefix() -> None:
    assert "CONDA_SHLVL is 2 but CONDA_PREFIX is not set" == sf.one(check, _conda(shlvl_raw="2", shlvl=2), Status.WARN).title


def test_shell_level_zero_with_prefix() -> None:
    snap = _conda(shlvl_raw="0", shlvl=0, conda_prefix=sf.VENV, conda_prefix_exists=True)
    assert "CONDA_SHLVL is 0 but CONDA_PREFIX is set" in sf.one(check, snap, Status.WARN).title


def test_broken_activation_stack() -> None:
    snap = _conda(shlvl_raw="3", shlvl=3, conda_prefix=sf.VENV, conda_prefix_exists=True,
                  prefix_chain={2: OTHER, 5: BASE}, realpaths={OTHER: None})
    found = sf.one(check, snap, Status.WARN)
    assert "does not match CONDA_SHLVL=3" in found.title
    assert "missing CONDA_PREFIX_1" in found.title and f"left over CONDA_PREFIX_5={BASE}" in found.title
    assert f"pointing to removed environments: {OTHER}" in found.title


def test_start_up_file_derives_the_path_from_conda_prefix() -> None:
    rc = sf.action("export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH", added=("$CONDA_PREFIX/lib",))
    found = sf.one(check, _conda(rc_actions=(rc,)), Status.WARN)
    assert "line 12 derives LD_LIBRARY_PATH from $CONDA_PREFIX" in found.title
    assert found.fix is not None and found.fix.id == "venv-hooks"
    assert any(c.startswith("# delete ") for c in found.fix.commands)
