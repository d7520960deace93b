"""`ld-library-path` and `conda-prefix` on real situations: real directories, conda-format
prefixes, activation hooks, start-up files and environment variables, a real snapshot of the
target interpreter with the real nvidia-pytriton, and glibc's own loader (trace mode) as the
oracle where a finding claims that a library is actually loaded from somewhere.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from conda_envs import (
    make_conda_meta,
    make_conda_prefix,
    other_build_of,
    own_libpython,
    traced,
    write_hook,
)
from tritondoctor.checks import conda_prefix, ld_library_path
from tritondoctor.findings import Finding, Status
from tritondoctor.loader import LoaderEnv, search_library
from tritondoctor.snapshot import STUB, Snapshot, take_snapshot

LIBPYTHON = own_libpython().name
OWN_LIBDIR = str(own_libpython().parent)
BACKUP_HOOK = [
    'export CONDA_BACKUP_LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"',
    'export LD_LIBRARY_PATH="${CONDA_PREFIX}/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"',
]
RESTORE_HOOK = [
    'if [ -n "${CONDA_BACKUP_LD_LIBRARY_PATH:-}" ]; then',
    '  export LD_LIBRARY_PATH="${CONDA_BACKUP_LD_LIBRARY_PATH}"',
    "else",
    "  unset LD_LIBRARY_PATH",
    "fi",
    "unset CONDA_BACKUP_LD_LIBRARY_PATH",
]


@dataclass
class Install:
    """A miniforge-like installation: base at `base`, the target env at `app`, another at `other`."""

    base: Path
    app: Path
    other: Path
    home: Path
    cwd: Path

    @property
    def python(self) -> str:
        return str(self.app / "bin" / "python")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def environ(clean_environ: dict[str, str], home: Path) -> dict[str, str]:
    return dict(clean_environ, HOME=str(home))


@pytest.fixture
def install(layered_venv: Callable[[str], Path], tmp_path: Path, home: Path) -> Install:
    base = make_conda_prefix(tmp_path / "miniforge", base=True)
    app = make_conda_meta(layered_venv("miniforge/envs/app"))
    other = make_conda_prefix(tmp_path / "miniforge" / "envs" / "other")
    cwd = tmp_path / "work"
    cwd.mkdir()
    return Install(base=base, app=app, other=other, home=home, cwd=cwd)


def conda_vars(install: Install, active: Path, *stack: Path) -> dict[str, str]:
    """The variables `conda activate` leaves: `stack` are the previously active prefixes, oldest first."""
    out = {
        "CONDA_EXE": str(install.base / "bin" / "conda"),
        "CONDA_PREFIX": str(active),
        "CONDA_SHLVL": str(len(stack) + 1),
        "CONDA_DEFAULT_ENV": "base" if active == install.base else active.name,
        "CONDA_PYTHON_EXE": str(install.base / "bin" / "python"),
    }
    for level, prefix in enumerate(stack, start=1):
        out[f"CONDA_PREFIX_{level}"] = str(prefix)
    return out


def snapshot(python: str, environ: dict[str, str], cwd: Path) -> Snapshot:
    return take_snapshot(python=python, environ=environ, cwd=str(cwd))


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status in (Status.WARN, Status.ERROR)]


def only(findings: list[Finding], status: Status, needle: str = "") -> Finding:
    matching = [f for f in findings if f.status == status and needle in f.title]
    assert len(matching) == 1, [(f.status.value, f.title) for f in findings]
    return matching[0]


def stub_loads(snap: Snapshot, soname: str) -> str | None:
    """Oracle: the file glibc's loader gives the stub, under the environment PyTriton gives it."""
    assert snap.server_environ is not None
    return traced(snap.resolutions[STUB].file, dict(snap.server_environ), snap.cwd).get(soname)


# ---------------------------------------------------------------------------------------------
# Healthy environments: nothing to report
# ---------------------------------------------------------------------------------------------


def test_healthy_venv_without_ld_library_path(layered_venv: Callable[[str], Path], environ: dict[str, str], tmp_path: Path) -> None:
    venv = layered_venv("plain")
    snap = snapshot(str(venv / "bin" / "python"), environ, tmp_path)
    ld = ld_library_path.run(snap)
    assert [(f.status, f.title) for f in ld] == [(Status.OK, "LD_LIBRARY_PATH is not set")]
    (conda,) = conda_prefix.run(snap)
    assert conda.status == Status.SKIP


def test_healthy_venv_with_its_own_libdir_on_the_path(layered_venv: Callable[[str], Path], environ: dict[str, str], tmp_path: Path) -> None:
    # The remedy for pyenv's libpython on this machine: the interpreter's own LIBDIR first.
    venv = layered_venv("plain")
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=OWN_LIBDIR), tmp_path)
    assert stub_loads(snap, LIBPYTHON) == os.path.realpath(own_libpython())
    findings = ld_library_path.run(snap) + conda_prefix.run(snap)
    assert problems(findings) == []
    assert only(findings, Status.OK).id == "ld-library-path"


def test_healthy_activated_conda_env_with_paired_hooks(install: Install, environ: dict[str, str]) -> None:
    write_hook(install.app, "activate", "app-libs.sh", BACKUP_HOOK)
    write_hook(install.app, "deactivate", "app-libs.sh", RESTORE_HOOK)
    # What the hook left: the env's own lib, then the interpreter's libdir the env was set up with.
    env = dict(environ, **conda_vars(install, install.app, install.base),
               LD_LIBRARY_PATH=f"{install.app}/lib:{OWN_LIBDIR}")
    snap = snapshot(install.python, env, install.cwd)

    findings = ld_library_path.run(snap) + conda_prefix.run(snap)

    assert problems(findings) == [], [(f.status.value, f.title) for f in problems(findings)]
    assert snap.conda is not None and snap.conda.base_prefix == str(install.base)
    hooks = only(findings, Status.OK, "activate.d/app-libs.sh prepends")
    assert hooks.title.endswith("(restored by deactivate.d/app-libs.sh)")
    assert hooks.id == "conda-prefix"
    assert hooks.evidence["activate"][0]["ld_library_path"][1]["kind"] == "prepend"
    assert hooks.evidence["activate"][0]["ld_library_path"][1]["added"] == [f"{install.app}/lib"]
    assert only(findings, Status.OK, "active conda environment").evidence["conda_prefix"] == str(install.app)


# ---------------------------------------------------------------------------------------------
# ld-library-path
# ---------------------------------------------------------------------------------------------


def test_trailing_colon_from_an_unguarded_bashrc_line_is_a_warning(
    layered_venv: Callable[[str], Path], environ: dict[str, str], home: Path, tmp_path: Path
) -> None:
    (home / ".bashrc").write_text(f"# cuda\nexport LD_LIBRARY_PATH={OWN_LIBDIR}:$LD_LIBRARY_PATH\n")
    venv = layered_venv("plain")
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=f"{OWN_LIBDIR}:"), tmp_path)

    finding = only(ld_library_path.run(snap), Status.WARN, "empty entry")

    assert "current directory" in finding.title and "security risk" in finding.detail
    assert finding.evidence["entries"][0]["kind"] == "empty" and finding.evidence["entries"][0]["index"] == 1
    assert finding.evidence["loaded_from_cwd"] == []
    assert [(s["file"], s["line"]) for s in finding.evidence["sources"]] == [(str(home / ".bashrc"), 2)]
    assert finding.fix is not None and finding.fix.id == "venv-hooks"
    assert f"# and, for this shell: export LD_LIBRARY_PATH={OWN_LIBDIR}" in finding.fix.commands
    assert any("${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" in c for c in finding.fix.commands)


def test_empty_entry_that_supplies_a_library_from_the_current_directory_is_an_error(
    layered_venv: Callable[[str], Path], environ: dict[str, str], tmp_path: Path
) -> None:
    venv = layered_venv("plain")
    cwd = tmp_path / "downloads"
    planted = other_build_of(own_libpython(), cwd)
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=f":{OWN_LIBDIR}"), cwd)
    assert stub_loads(snap, LIBPYTHON) == str(planted)  # glibc agrees: the stub takes the planted file

    finding = only(ld_library_path.run(snap), Status.ERROR)

    assert finding.title.startswith(f"stub loads {LIBPYTHON} from the current directory {cwd}")
    assert finding.evidence["loaded_from_cwd"] == [{"binaries": ["stub"], "name": LIBPYTHON, "path": str(planted)}]


def test_set_but_empty_variable_becomes_the_current_directory_through_pytriton(
    layered_venv: Callable[[str], Path], environ: dict[str, str], tmp_path: Path
) -> None:
    venv = layered_venv("plain")
    clean_dir = tmp_path / "empty-dir"
    clean_dir.mkdir()
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=""), clean_dir)
    warning = only(ld_library_path.run(snap), Status.WARN, "set but empty")
    assert warning.fix is not None and "# and, for this shell: unset LD_LIBRARY_PATH" in warning.fix.commands

    planted = other_build_of(own_libpython(), tmp_path / "models")
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=""), planted.parent)
    assert stub_loads(snap, LIBPYTHON) == str(planted)
    error = only(ld_library_path.run(snap), Status.ERROR, "set but empty")
    assert error.evidence["loaded_from_cwd"][0]["path"] == str(planted)


def test_missing_and_unexpanded_entries_are_named(
    layered_venv: Callable[[str], Path], environ: dict[str, str], tmp_path: Path
) -> None:
    venv = layered_venv("plain")
    gone = tmp_path / "cuda-11.8" / "lib64"
    value = f"{OWN_LIBDIR}:{gone}:$CONDA_PREFIX/lib"  # the last one single-quoted in some script
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=value), tmp_path)

    finding = only(ld_library_path.run(snap), Status.WARN, "do not exist")

    assert str(gone) in finding.title and "never expanded" in finding.title
    assert [(e["raw"], e["kind"]) for e in finding.evidence["entries"]] == [
        (str(gone), "absolute"), ("$CONDA_PREFIX/lib", "unexpanded")]
    assert finding.fix is not None
    assert f"# and, for this shell: export LD_LIBRARY_PATH={OWN_LIBDIR}" in finding.fix.commands


def test_duplicates_are_attributed_to_the_line_that_adds_them(
    layered_venv: Callable[[str], Path], environ: dict[str, str], home: Path, tmp_path: Path
) -> None:
    cuda = tmp_path / "cuda" / "lib64"
    cuda.mkdir(parents=True)
    (home / ".bashrc").write_text(f'export LD_LIBRARY_PATH="{cuda}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n')
    venv = layered_venv("plain")
    value = f"{cuda}:{cuda}/:{OWN_LIBDIR}:{cuda}"  # sourced three times
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=value), tmp_path)

    finding = only(ld_library_path.run(snap), Status.WARN, "repeats")

    assert f"{cuda} (3 times)" in finding.title and f"{home}/.bashrc line 1" in finding.title
    assert [e["index"] for e in finding.evidence["repeated"]] == [1, 3]
    assert f"# and, for this shell: export LD_LIBRARY_PATH={cuda}:{OWN_LIBDIR}" in finding.fix.commands  # type: ignore[union-attr]


def test_base_env_lib_that_supplies_libpython_to_another_env_is_an_error(install: Install, environ: dict[str, str]) -> None:
    """The classic: ~/.bashrc derives LD_LIBRARY_PATH from $CONDA_PREFIX and is read again after conda's
    init block activated base; the target is the env `app`, whose Python is another build."""
    foreign = other_build_of(own_libpython(), install.base / "lib")
    (install.home / ".bashrc").write_text(
        "# >>> conda initialize >>>\n# <<< conda initialize <<<\nexport LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH\n")
    env = dict(environ, **conda_vars(install, install.base, install.app),
               LD_LIBRARY_PATH=f"{install.base}/lib:{OWN_LIBDIR}")
    snap = snapshot(install.python, env, install.cwd)
    assert stub_loads(snap, LIBPYTHON) == str(foreign)

    finding = only(ld_library_path.run(snap), Status.ERROR)

    assert finding.title == (f"LD_LIBRARY_PATH entry {install.base}/lib belongs to the conda base environment "
                             f"({install.base}): stub loads {LIBPYTHON} from it instead of the target environment's own")
    ev = finding.evidence
    assert ev["entry"]["owner"] == "base" and ev["target_prefix"] == str(install.app)
    assert ev["shadowing"] == [{"binaries": ["stub"], "name": LIBPYTHON, "path": str(foreign)}]
    assert ev["entry"]["shadows"][0] == {"name": LIBPYTHON, "path": str(foreign),
                                         "target_path": os.path.realpath(own_libpython())}
    assert [(s["file"], s["line"]) for s in ev["sources"]] == [(str(install.home / ".bashrc"), 3)]
    assert finding.fix is not None and finding.fix.id == "conda-hooks"
    assert f"# delete {install.home}/.bashrc line 3: `export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH`" \
        in finding.fix.commands
    assert f"# and, for this shell: export LD_LIBRARY_PATH={OWN_LIBDIR}" in finding.fix.commands


def test_other_env_lib_that_supplies_a_library_the_target_lacks_is_a_warning(install: Install, environ: dict[str, str]) -> None:
    system_libstdcxx = search_library("libstdc++.so.6", LoaderEnv.from_system(environ={})).path
    assert system_libstdcxx
    copy = other_build_of(Path(system_libstdcxx), install.other / "lib", "libstdc++.so.6")
    env = dict(environ, **conda_vars(install, install.app, install.base),
               LD_LIBRARY_PATH=f"{install.app}/lib:{install.other}/lib:{OWN_LIBDIR}")
    snap = snapshot(install.python, env, install.cwd)
    assert stub_loads(snap, "libstdc++.so.6") == str(copy)

    finding = only(ld_library_path.run(snap), Status.WARN, "another conda environment")

    assert finding.title == (f"LD_LIBRARY_PATH entry {install.other}/lib belongs to another conda environment "
                             f"({install.other}), not to the target environment {install.app}; tritonserver, "
                             f"python_backend and stub load libstdc++.so.6 from it")
    assert finding.evidence["entry"]["owner"] == "other-env"
    assert finding.evidence["entry"]["conda_prefix"] == str(install.other)
    assert finding.evidence["loaded"] == [
        {"binaries": ["tritonserver", "python_backend", "stub"], "name": "libstdc++.so.6", "path": str(copy)}]
    assert finding.evidence["shadowing"] == []


def test_unused_base_lib_on_the_path_is_a_warning(install: Install, environ: dict[str, str]) -> None:
    env = dict(environ, **conda_vars(install, install.app, install.base),
               LD_LIBRARY_PATH=f"{OWN_LIBDIR}:{install.base}/lib")
    snap = snapshot(install.python, env, install.cwd)
    finding = only(ld_library_path.run(snap), Status.WARN, "base environment")
    assert finding.title.endswith(f"not to the target environment {install.app}")
    assert finding.evidence["loaded"] == []


def test_copy_of_the_targets_libpython_outside_any_env(
    layered_venv: Callable[[str], Path], environ: dict[str, str], tmp_path: Path
) -> None:
    venv = layered_venv("plain")
    loaded_dir = tmp_path / "opt-python" / "lib"
    loaded = other_build_of(own_libpython(), loaded_dir)
    unused_dir = tmp_path / "stray"
    other_build_of(own_libpython().parent / "libpython3.so", unused_dir)  # the stub does not need it
    # A byte-identical copy and a hard link are the same library: not reported.
    same_dir = tmp_path / "same"
    same_dir.mkdir()
    shutil.copyfile(own_libpython(), same_dir / LIBPYTHON)
    os.link(own_libpython().parent / "libpython3.so", same_dir / "libpython3.so")
    value = f"{same_dir}:{loaded_dir}:{unused_dir}:{OWN_LIBDIR}"
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=value), tmp_path)
    assert stub_loads(snap, LIBPYTHON) == os.path.realpath(same_dir / LIBPYTHON)

    findings = ld_library_path.run(snap)
    assert not any(str(same_dir) in f.title for f in findings)
    warning = only(findings, Status.WARN, str(unused_dir))
    assert warning.evidence["entry"]["shadows"][0]["name"] == "libpython3.so"

    # Without the identical copy first, the other build is what the stub gets: an error.
    value = f"{loaded_dir}:{OWN_LIBDIR}"
    snap = snapshot(str(venv / "bin" / "python"), dict(environ, LD_LIBRARY_PATH=value), tmp_path)
    assert stub_loads(snap, LIBPYTHON) == str(loaded)
    error = only(ld_library_path.run(snap), Status.ERROR)
    assert error.title == (f"stub loads {LIBPYTHON} from LD_LIBRARY_PATH entry {loaded_dir}, not the target "
                           f"environment's own {os.path.realpath(own_libpython())}")
    assert error.fix is not None and error.fix.id == "venv-hooks"


# ---------------------------------------------------------------------------------------------
# conda-prefix
# ---------------------------------------------------------------------------------------------


def test_conda_prefix_pointing_at_base_while_another_env_runs(install: Install, environ: dict[str, str]) -> None:
    (install.home / ".bashrc").write_text("export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH\n")
    env = dict(environ, **conda_vars(install, install.base, install.app),
               LD_LIBRARY_PATH=f"{install.base}/lib:{OWN_LIBDIR}")
    snap = snapshot(install.python, env, install.cwd)

    findings = conda_prefix.run(snap)

    mismatch = only(findings, Status.WARN, "CONDA_PREFIX is")
    assert mismatch.title == (f"CONDA_PREFIX is {install.base} but the Python in use belongs to the conda "
                              f"environment {install.app}")
    assert mismatch.evidence["ld_library_path_entries_from_conda_prefix"] == [f"{install.base}/lib"]
    assert mismatch.evidence["prefix_chain"] == {"CONDA_PREFIX_1": str(install.app)}
    assert mismatch.fix is not None and mismatch.fix.commands == (f"conda activate {install.app}",)
    rc = only(findings, Status.WARN, "derives LD_LIBRARY_PATH from $CONDA_PREFIX")
    assert rc.title.startswith(f"{install.home}/.bashrc line 1 ")
    assert rc.fix is not None and rc.fix.id == "conda-hooks"
    assert rc.fix.commands[-1] == f"tritondoctor fix --python {install.python}" or \
        rc.fix.commands[-1].startswith("tritondoctor fix")
    assert len(problems(findings)) == 2


def test_shell_level_without_conda_prefix(install: Install, environ: dict[str, str]) -> None:
    env = dict(environ, CONDA_SHLVL="1", CONDA_EXE=str(install.base / "bin" / "conda"))
    snap = snapshot(install.python, env, install.cwd)
    finding = only(conda_prefix.run(snap), Status.WARN)
    assert finding.title == "CONDA_SHLVL is 1 but CONDA_PREFIX is not set"
    assert finding.evidence["conda_shlvl"] == "1" and finding.evidence["base_prefix"] == str(install.base)


def test_shell_level_that_is_not_a_number(install: Install, environ: dict[str, str]) -> None:
    env = {**environ, **conda_vars(install, install.app), "CONDA_SHLVL": "1x"}
    snap = snapshot(install.python, env, install.cwd)
    assert only(conda_prefix.run(snap), Status.WARN).title == "CONDA_SHLVL is '1x', not a number"


@pytest.mark.parametrize("shlvl, chain, expected", [
    ("1", {"CONDA_PREFIX_1": "base"}, "left over CONDA_PREFIX_1="),
    ("3", {"CONDA_PREFIX_1": "base"}, "missing CONDA_PREFIX_2"),
    ("2", {"CONDA_PREFIX_1": "removed"}, "pointing to removed environments"),
])
def test_activation_stack_inconsistent_with_shell_level(
    install: Install, environ: dict[str, str], shlvl: str, chain: dict[str, str], expected: str
) -> None:
    paths = {"base": str(install.base), "removed": str(install.base / "envs" / "removed")}
    env = {**environ, **conda_vars(install, install.app), "CONDA_SHLVL": shlvl,
           **{k: paths[v] for k, v in chain.items()}}
    snap = snapshot(install.python, env, install.cwd)
    finding = only(conda_prefix.run(snap), Status.WARN)
    assert finding.title.startswith(f"conda's activation stack does not match CONDA_SHLVL={shlvl}: ")
    assert expected in finding.title


def test_activate_hook_without_deactivate_restore(install: Install, environ: dict[str, str]) -> None:
    hook = write_hook(install.app, "activate", "cuda.sh", ["export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH"])
    write_hook(install.app, "deactivate", "other.sh", ["unset SOME_OTHER_VAR"])
    env = dict(environ, **conda_vars(install, install.app, install.base), LD_LIBRARY_PATH=f"{install.app}/lib:{OWN_LIBDIR}")
    snap = snapshot(install.python, env, install.cwd)

    finding = only(conda_prefix.run(snap), Status.WARN)

    assert finding.title == (f"{hook} prepends {install.app}/lib, and no deactivate.d script restores "
                             f"LD_LIBRARY_PATH")
    assert finding.evidence["script"]["path"] == str(hook)
    assert finding.evidence["script"]["ld_library_path"][0]["kind"] == "prepend"
    assert finding.fix is not None and finding.fix.id == "conda-hooks"
    assert problems(ld_library_path.run(snap)) == []


def test_conda_env_used_without_activation_skips_its_hooks(install: Install, environ: dict[str, str]) -> None:
    write_hook(install.app, "activate", "libs.sh", BACKUP_HOOK)
    write_hook(install.app, "deactivate", "libs.sh", RESTORE_HOOK)
    snap = snapshot(install.python, environ, install.cwd)
    finding = only(conda_prefix.run(snap), Status.WARN)
    assert finding.title == (f"the conda environment {install.app} is not activated, so its activate.d hook "
                             f"(libs.sh) did not set LD_LIBRARY_PATH")
    assert finding.fix is not None and finding.fix.commands == (f"conda activate {install.app}",)


def test_venv_under_an_active_base(install: Install, layered_venv: Callable[[str], Path], environ: dict[str, str]) -> None:
    venv = layered_venv("project-venv")
    env = dict(environ, **conda_vars(install, install.base), VIRTUAL_ENV=str(venv), LD_LIBRARY_PATH=OWN_LIBDIR)
    snap = snapshot(str(venv / "bin" / "python"), env, install.cwd)
    findings = conda_prefix.run(snap)
    assert problems(findings) == []
    assert "nothing of" in only(findings, Status.OK, "is active, but the target is the venv").title

    env["LD_LIBRARY_PATH"] = f"{install.base}/lib:{OWN_LIBDIR}"
    snap = snapshot(str(venv / "bin" / "python"), env, install.cwd)
    finding = only(conda_prefix.run(snap), Status.WARN)
    assert finding.title == (f"the conda environment {install.base} is still active under the venv {venv}, "
                             f"and its libraries are on LD_LIBRARY_PATH")
    assert finding.fix is not None and finding.fix.commands[0] == "conda deactivate"
    assert only(ld_library_path.run(snap), Status.WARN, "base environment").evidence["entry"]["owner"] == "base"


def test_hooks_written_by_the_conda_hooks_fix_raise_no_alarm(install: Install, environ: dict[str, str]) -> None:
    """After `tritondoctor fix` (conda-hooks) and re-activation, this check must be quiet about the
    fix's own scripts: their activate part prepends, their deactivate part restores."""
    from tritondoctor import hooks

    for phase in ("activate", "deactivate"):
        for shell in ("sh", "fish"):
            path = Path(hooks.conda_script_path(str(install.app), phase, shell))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(hooks.conda_script([OWN_LIBDIR], str(install.app), phase, shell))
    env = dict(environ, **conda_vars(install, install.app, install.base), LD_LIBRARY_PATH=OWN_LIBDIR,
               **{hooks.state_var(str(install.app)): "unset"})
    snap = snapshot(install.python, env, install.cwd)

    findings = conda_prefix.run(snap) + ld_library_path.run(snap)

    assert problems(findings) == [], [(f.status.value, f.title) for f in problems(findings)]
    ok = only(findings, Status.OK, f"activate.d/tritondoctor-ld-library-path.sh prepends {OWN_LIBDIR}")
    assert f"activate.d/tritondoctor-ld-library-path.fish prepends {OWN_LIBDIR};" in ok.title
    assert snap.conda is not None and snap.conda.target_hooks is not None
    assert snap.conda.target_hooks.unrestored() == []
