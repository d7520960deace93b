"""A file of the user's own at the path of our conda hook is never replaced without a word.

The environment is a real conda-format prefix (a venv that sees the shared PyTriton install,
with conda-meta/) activated as conda does it, on this machine's real libpython bug, so `fix`
plans the conda-hooks fix. The user's etc/conda/activate.d/tritondoctor-ld-library-path.sh
carries no tritondoctor marker: `fix` shows it, keeps it and applies nothing; `fix --force`
replaces it through the journal, and `fix --undo` puts the user's bytes back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from conda_envs import make_conda_meta
from fixkit import by_id, check_json, conda_activated, tree_state, tritondoctor

from tritondoctor import hooks

USERS_OWN = "# my own activation script, not tritondoctor's\nexport MY_TOOL_HOME=/opt/mine\n"


@pytest.fixture
def conda_app(layered_venv: Callable[[str], Path], clean_environ: dict[str, str]) -> tuple[Path, dict[str, str], Path]:
    prefix = make_conda_meta(layered_venv("envs/app"))
    own = Path(hooks.conda_script_path(str(prefix), "activate", "sh"))
    own.parent.mkdir(parents=True)
    own.write_text(USERS_OWN)
    environ = conda_activated(prefix, dict(clean_environ, TRITONDOCTOR_LOCK_TIMEOUT="30"))
    (libpython,) = by_id(check_json(prefix / "bin" / "python", environ), "libpython")
    if libpython["status"] != "error" or (libpython.get("fix") or {}).get("id") != "conda-hooks":
        pytest.skip("this machine has no second libpython of the same minor version in the loader cache")
    return prefix, environ, own


def test_fix_keeps_a_users_file_at_our_hook_path_and_says_so(conda_app: tuple[Path, dict[str, str], Path]) -> None:
    prefix, environ, own = conda_app
    pristine = tree_state(prefix)

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--json", environ=environ)

    assert proc.returncode == 1, proc.stderr
    result = json.loads(proc.stdout)
    (plan,) = result["plans"]
    assert plan["id"] == "conda-hooks"
    assert not plan["prediction"]["proven"] and str(own) in plan["prediction"]["reason"]
    assert any(n.startswith(hooks.FOREIGN_NOTE) and str(own) in n for n in plan["notes"])
    paths = [c["path"] for c in plan["changes"]]
    assert str(own) not in paths  # that change is skipped ...
    assert hooks.conda_script_path(str(prefix), "deactivate", "sh") in paths  # ... the others are shown
    assert result["applied"] == [] and result["skipped"] == ["conda-hooks"]
    assert own.read_text() == USERS_OWN
    assert tree_state(prefix) == pristine  # nothing written, no journal

    shown = tritondoctor("fix", "--dry-run", environ=dict(environ, COLUMNS="400"))
    assert shown.returncode == 1, shown.stderr
    assert f"{hooks.FOREIGN_NOTE}: {own} is kept" in shown.stdout
    assert "not applying conda-hooks" in shown.stdout and "--force" in shown.stdout


def test_force_replaces_it_through_the_journal_and_undo_restores_it(
        conda_app: tuple[Path, dict[str, str], Path], clean_environ: dict[str, str]) -> None:
    prefix, environ, own = conda_app
    pristine = tree_state(prefix)

    proc = tritondoctor("fix", "--yes", "--no-smoke", "--force", "--json", environ=environ)

    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    (plan,) = result["plans"]
    replaced = [c for c in plan["changes"] if c["path"] == str(own)]
    assert len(replaced) == 1 and replaced[0]["kind"] == "replace"
    assert hooks.FOREIGN_NOTE in replaced[0]["description"]
    assert any(n.startswith(hooks.FOREIGN_NOTE) and "--force" in n for n in plan["notes"])
    assert result["applied"] == ["conda-hooks"]
    assert hooks.is_ours(own.read_text())
    activated = conda_activated(prefix, clean_environ)
    assert activated["LD_LIBRARY_PATH"] == plan["dirs"][0]

    undo = tritondoctor("fix", "--undo", environ=environ)
    assert undo.returncode == 0, undo.stderr
    assert own.read_text() == USERS_OWN
    assert tree_state(prefix) == pristine


def test_every_whole_file_we_write_carries_the_marker_and_only_foreign_files_are_held(tmp_path: Path) -> None:
    from tritondoctor.fixes import _pathorder, grpc_proxy_hooks

    ours = [grpc_proxy_hooks.conda_text("activate"), grpc_proxy_hooks.conda_text("deactivate"),
            hooks.venv_csh_restore_script(["/opt/lib"], str(tmp_path))]
    ours += [hooks.conda_script(["/opt/lib"], str(tmp_path), phase, shell)
             for phase in ("activate", "deactivate") for shell in hooks.EXTENSIONS]
    assert all(hooks.is_ours(text) for text in ours)
    mine, theirs, new = tmp_path / "mine.sh", tmp_path / "theirs.sh", tmp_path / "new.sh"
    mine.write_text(grpc_proxy_hooks.conda_text("activate").replace("127.0.0.1", "127.0.0.2"))  # ours, older
    theirs.write_text(USERS_OWN)
    changes = [_pathorder.hook_change(str(p), grpc_proxy_hooks.conda_text("activate"), "d") for p in (mine, theirs, new)]

    held = _pathorder.guard_foreign([c for c in changes if c is not None], force=False)
    forced = _pathorder.guard_foreign([c for c in changes if c is not None], force=True)

    assert [c.path for c in held.changes] == [str(mine), str(new)] and held.foreign == [str(theirs)]
    assert [c.path for c in forced.changes] == [str(mine), str(theirs), str(new)]
    assert hooks.FOREIGN_NOTE in forced.changes[1].description
