"""`tritondoctor.facts.conda`: the static parser of hook scripts and start-up files, and `gather`
on real directories (conda-format prefixes, hooks, libraries, links) with real interpreters."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import pytest

from conda_envs import make_conda_meta, make_conda_prefix, other_build_of, own_libpython, write_hook
from tritondoctor.facts import conda, target
from tritondoctor.facts.conda import CondaFacts
from tritondoctor.facts.shellvars import parse_ld_library_path


def probe(python: Path | str) -> target.TargetPython:
    return target.probe(str(python), {"PATH": os.environ.get("PATH", "")})


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shell, line, kind, added", [
    ("sh", 'export LD_LIBRARY_PATH="${CONDA_PREFIX}/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"', "prepend", ["/env/lib"]),
    ("sh", "export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH", "prepend", ["/env/lib"]),
    ("sh", "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$CONDA_PREFIX/lib/stubs", "append", ["/env/lib/stubs"]),
    ("sh", "export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/opt/x", "append", ["/opt/x"]),
    ("sh", "export LD_LIBRARY_PATH=/a:$LD_LIBRARY_PATH:/b/", "wrap", ["/a", "/b"]),
    ("sh", "LD_LIBRARY_PATH=$CONDA_PREFIX/lib; export LD_LIBRARY_PATH", "set", ["/env/lib"]),
    ("sh", "declare -x LD_LIBRARY_PATH='/opt/cuda/lib64'", "set", ["/opt/cuda/lib64"]),
    ("sh", 'export LD_LIBRARY_PATH="${CONDA_BACKUP_LD_LIBRARY_PATH}"', "restore", []),
    ("sh", "export LD_LIBRARY_PATH=$_OLD_LD_LIBRARY_PATH", "restore", []),
    ("sh", "[ -z \"$X\" ] && unset LD_LIBRARY_PATH   # restore", "unset", []),
    ("sh", "export LD_LIBRARY_PATH=", "clear", []),
    ("sh", 'export LD_LIBRARY_PATH=$(echo "$LD_LIBRARY_PATH" | sed "s|$CONDA_PREFIX/lib:||")', "edit", []),
    ("sh", "export LD_LIBRARY_PATH=$(cat /etc/ld-path)", "computed", []),
    ("sh", 'export CONDA_BACKUP_LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"', "save", []),
    ("sh", "if [ -d /x ]; then export LD_LIBRARY_PATH=/x:$LD_LIBRARY_PATH; fi", "prepend", ["/x"]),
    ("fish", "set -gx LD_LIBRARY_PATH $CONDA_PREFIX/lib $LD_LIBRARY_PATH", "prepend", ["/env/lib"]),
    ("fish", "test -n \"$x\"; and set -e LD_LIBRARY_PATH", "unset", []),
    ("fish", "set -gx CONDA_BACKUP_LD_LIBRARY_PATH $LD_LIBRARY_PATH", "save", []),
    ("csh", 'setenv LD_LIBRARY_PATH "${CONDA_PREFIX}/lib:${LD_LIBRARY_PATH}"', "prepend", ["/env/lib"]),
    ("csh", "unsetenv LD_LIBRARY_PATH", "unset", []),
])
def test_statements_are_classified(shell: str, line: str, kind: str, added: list[str]) -> None:
    (action,) = parse_ld_library_path(line + "\n", "hook", shell, conda_prefix="/env")
    assert (action.kind, list(action.added)) == (kind, added)
    assert action.line == 1 and action.file == "hook"


@pytest.mark.parametrize("text", [
    "# export LD_LIBRARY_PATH=/commented/out\n",
    "echo $LD_LIBRARY_PATH\n",
    'alias run="LD_LIBRARY_PATH=/x ./run"\n',
    'if [ -n "${LD_LIBRARY_PATH}" ]; then :; fi\n',
    "export LD_LIBRARY_PATH\n",
])
def test_statements_that_do_not_change_it_are_ignored(text: str) -> None:
    assert parse_ld_library_path(text, "f", "sh", conda_prefix=None) == []


def test_could_add_expands_conda_prefix_to_the_entrys_env_only() -> None:
    (action,) = parse_ld_library_path("export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$HOME/lib:$LD_LIBRARY_PATH\n",
                                      "rc", "sh", conda_prefix=None)
    assert action.added == ("$CONDA_PREFIX/lib", "$HOME/lib")
    assert action.could_add("/opt/conda/lib/", {}, "/opt/conda")
    assert not action.could_add("/opt/conda/lib", {}, None)
    assert not action.could_add("/usr/lib", {}, "/opt/conda")
    assert action.could_add("/home/u/lib", {"HOME": "/home/u"}, None)


# ---------------------------------------------------------------------------------------------
# The base environment and the activation stack
# ---------------------------------------------------------------------------------------------


def test_base_from_conda_exe(tmp_path: Path) -> None:
    base = make_conda_prefix(tmp_path / "mf", base=True)
    facts = conda.gather({"CONDA_EXE": str(base / "bin" / "conda")}, None)
    assert (facts.base_prefix, facts.base_source) == (str(base), "CONDA_EXE")


def test_base_from_mamba_root_prefix(tmp_path: Path) -> None:
    root = tmp_path / "micromamba"
    root.mkdir()
    facts = conda.gather({"MAMBA_ROOT_PREFIX": str(root), "MAMBA_EXE": "/nowhere/micromamba"}, None)
    assert (facts.base_prefix, facts.base_source) == (str(root), "MAMBA_ROOT_PREFIX")
    assert facts.mamba_exe == "/nowhere/micromamba"


def test_base_from_markers_of_the_stack(tmp_path: Path) -> None:
    base = make_conda_prefix(tmp_path / "mf", base=True)
    env = make_conda_prefix(tmp_path / "elsewhere" / "app")
    facts = conda.gather({"CONDA_PREFIX": str(env), "CONDA_SHLVL": "2", "CONDA_PREFIX_1": str(base)}, None)
    assert facts.base_prefix == str(base) and facts.base_source.startswith("markers")
    assert facts.prefix_chain == {1: str(base)} and facts.shlvl == 2


def test_base_as_parent_of_envs_and_stack_fallback(tmp_path: Path) -> None:
    root = make_conda_prefix(tmp_path / "inst")  # a base without condabin/ (e.g. made by micromamba)
    env = make_conda_prefix(root / "envs" / "app")
    facts = conda.gather({"CONDA_PREFIX": str(env), "CONDA_SHLVL": "1"}, None)
    assert (facts.base_prefix, facts.base_source) == (str(root), "parent of envs/")

    first = make_conda_prefix(tmp_path / "first")
    second = make_conda_prefix(tmp_path / "second")
    facts = conda.gather({"CONDA_PREFIX": str(second), "CONDA_SHLVL": "2", "CONDA_PREFIX_1": str(first)}, None)
    assert (facts.base_prefix, facts.base_source) == (str(first), "CONDA_PREFIX_1")


def test_nothing_conda_at_all() -> None:
    facts = conda.gather({"PATH": "/usr/bin"}, None)
    assert facts == CondaFacts(realpaths={}) and not facts.in_use


# ---------------------------------------------------------------------------------------------
# LD_LIBRARY_PATH entries
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def conda_target(layered_venv: Callable[[str], Path], tmp_path: Path) -> tuple[Path, target.TargetPython]:
    """miniforge/envs/app, a conda-format env that is the target interpreter's prefix."""
    make_conda_prefix(tmp_path / "miniforge", base=True)
    app = make_conda_meta(layered_venv("miniforge/envs/app"))
    return app, probe(app / "bin" / "python")


def test_entries_are_classified(conda_target: tuple[Path, target.TargetPython], tmp_path: Path) -> None:
    app, tp = conda_target
    base = tmp_path / "miniforge"
    other = make_conda_prefix(base / "envs" / "other")
    torch_lib = other / "lib" / "python3.11" / "site-packages" / "torch" / "lib"
    torch_lib.mkdir(parents=True)
    link = tmp_path / "link-to-base-lib"
    link.symlink_to(base / "lib")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    value = ":".join([
        f"{app}/lib", f"{base}/lib", str(torch_lib), "", "rel/lib", "$CONDA_PREFIX/lib", str(tmp_path / "gone"),
        str(a_file), f"{base}/lib/", str(link), "$ORIGIN/../lib", OWN := str(own_libpython().parent),
    ])
    facts = conda.gather({"CONDA_EXE": f"{base}/bin/conda", "LD_LIBRARY_PATH": value}, tp)

    rows = [(e.kind, e.exists, e.owner, e.conda_prefix, e.duplicate_of, e.in_target) for e in facts.entries]
    assert rows == [
        ("absolute", True, "target", str(app), None, True),
        ("absolute", True, "base", str(base), None, False),
        ("absolute", True, "other-env", str(other), None, False),
        ("empty", None, None, None, None, False),
        ("relative", None, None, None, None, False),
        ("unexpanded", None, None, None, None, False),
        ("absolute", False, None, None, None, False),
        ("absolute", True, None, None, None, False),  # a file: is_dir False
        ("absolute", True, "base", str(base), 1, False),  # trailing slash
        ("absolute", True, "base", str(base), 1, False),  # symlink to the same directory
        ("token", None, None, None, None, False),  # $ORIGIN: the loader's business
        ("absolute", True, None, None, None, True),  # the venv's base interpreter's libdir
    ]
    assert facts.entries[7].is_dir is False and facts.entries[3].directory == ""
    assert facts.target_is_conda_env and facts.target_prefix == str(app)
    assert str(Path(OWN)) in facts.target_lib_dirs
    json.dumps(facts.to_json())


def test_shadows_compare_file_identity_not_names(conda_target: tuple[Path, target.TargetPython], tmp_path: Path) -> None:
    app, tp = conda_target
    own_z = app / "lib" / "libz.so.1"
    own_z.write_bytes(b"\x7fELF pretend libz 1.3")
    (app / "lib" / "libstdc++.so.6.0.32").write_bytes(b"\x7fELF pretend libstdc++ 13")
    (app / "lib" / "libstdc++.so.6").symlink_to("libstdc++.so.6.0.32")

    hard, sym, same, other = (tmp_path / n for n in ("hard", "sym", "same", "other"))
    for d in (hard, sym, same, other):
        d.mkdir()
    os.link(own_z, hard / "libz.so.1")
    (sym / "libz.so.1").symlink_to(own_z)
    shutil.copyfile(own_z, same / "libz.so.1")
    (other / "libz.so.1").write_bytes(b"\x7fELF pretend libz 1.2")
    (other / "libstdc++.so.6.0.28").write_bytes(b"\x7fELF pretend libstdc++ 11")
    (other / "libstdc++.so.6").symlink_to("libstdc++.so.6.0.28")
    other_build_of(own_libpython(), other)
    (other / "libunrelated.so").write_bytes(b"")

    value = ":".join(map(str, (hard, sym, same, other)))
    facts = conda.gather({"LD_LIBRARY_PATH": value}, tp)

    assert [e.shadows for e in facts.entries[:3]] == [(), (), ()]
    shadows = facts.entries[3].shadows
    # Core runtime libraries first, then the rest by name.
    assert [c.name for c in shadows] == [own_libpython().name, "libstdc++.so.6", "libz.so.1"]
    assert shadows[1].path == str(other / "libstdc++.so.6.0.28")
    assert shadows[1].target_path == str(app / "lib" / "libstdc++.so.6.0.32")
    assert shadows[0].target_path == os.path.realpath(own_libpython())


def test_system_python_compares_only_core_runtime_libraries(tmp_path: Path) -> None:
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no system python3")
    tp = probe("/usr/bin/python3")
    if tp.prefix != "/usr":
        pytest.skip("/usr/bin/python3 is not a system-prefix Python")
    system_libstdcxx = Path("/usr/lib/x86_64-linux-gnu/libstdc++.so.6")
    system_libz = Path("/usr/lib/x86_64-linux-gnu/libz.so.1")
    if not (system_libstdcxx.exists() and system_libz.exists()):
        pytest.skip("no Debian-layout system libraries")
    d = tmp_path / "toolchain" / "lib64"
    other_build_of(system_libstdcxx, d)
    other_build_of(system_libz, d)
    facts = conda.gather({"LD_LIBRARY_PATH": str(d)}, tp)
    (entry,) = facts.entries
    assert [c.name for c in entry.shadows] == ["libstdc++.so.6"]
    assert not entry.in_target  # everything under /usr is not "the target's own"


# ---------------------------------------------------------------------------------------------
# Hooks and start-up files
# ---------------------------------------------------------------------------------------------


def test_hooks_of_the_target_and_their_pairing(conda_target: tuple[Path, target.TargetPython]) -> None:
    app, tp = conda_target
    write_hook(app, "activate", "10-libs.sh", ["export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH"])
    write_hook(app, "activate", "10-libs.fish", ["set -gx LD_LIBRARY_PATH $CONDA_PREFIX/lib $LD_LIBRARY_PATH"])
    write_hook(app, "activate", "20-other.sh", ["export FOO=1"])
    write_hook(app, "activate", "libs.bat", ["@SET LD_LIBRARY_PATH=%CONDA_PREFIX%\\lib"])
    write_hook(app, "deactivate", "10-libs.sh", ["unset LD_LIBRARY_PATH"])
    (app / "etc" / "conda" / "activate.d" / "not-a-file.sh").mkdir()

    facts = conda.gather({"CONDA_PREFIX": str(app), "CONDA_SHLVL": "1"}, tp)
    hooks = facts.target_hooks
    assert hooks is not None and hooks.prefix == str(app)
    assert [(s.name, s.shell, [a.kind for a in s.ld_library_path]) for s in hooks.activate] == [
        ("10-libs.fish", "fish", ["prepend"]),
        ("10-libs.sh", "sh", ["prepend"]),
        ("20-other.sh", "sh", []),
        ("libs.bat", "bat", []),
    ]
    assert hooks.activate[1].ld_library_path[0].added == (f"{app}/lib",)
    # The sh hook is undone on deactivation; the fish one is not.
    assert [s.name for s in hooks.unrestored()] == ["10-libs.fish"]
    assert [s.name for s in hooks.touching_ld_library_path()] == ["10-libs.fish", "10-libs.sh", "10-libs.sh"]


def test_start_up_files_are_read_from_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config" / "fish").mkdir(parents=True)
    (home / ".bashrc").write_text("alias ll='ls -l'\nexport LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH\n")
    (home / ".config" / "fish" / "config.fish").write_text("set -gx LD_LIBRARY_PATH /opt/cuda/lib64 $LD_LIBRARY_PATH\n")
    facts = conda.gather({"HOME": str(home)}, None)
    assert [(Path(a.file).name, a.line, a.kind, a.uses_conda_prefix) for a in facts.rc_actions] == [
        (".bashrc", 2, "prepend", True),
        ("config.fish", 1, "prepend", False),
    ]


# ---------------------------------------------------------------------------------------------
# Robustness and cost
# ---------------------------------------------------------------------------------------------


def test_gather_never_raises(tmp_path: Path, conda_target: tuple[Path, target.TargetPython]) -> None:
    app, tp = conda_target
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    hooks = app / "etc" / "conda" / "activate.d"
    hooks.mkdir(parents=True)
    (hooks / "binary.sh").write_bytes(b"\xff\xfe\x00LD_LIBRARY_PATH=\xff\n")
    (hooks / "dangling.sh").symlink_to(tmp_path / "nowhere")
    unreadable = app / "etc" / "conda" / "deactivate.d"
    unreadable.mkdir(parents=True)
    weird = {
        "CONDA_SHLVL": "two", "CONDA_PREFIX": "relative/env", "CONDA_PREFIX_x": "y", "CONDA_PREFIX_3": "",
        "CONDA_EXE": "", "MAMBA_ROOT_PREFIX": str(tmp_path / "absent"), "HOME": str(tmp_path / "no-home"),
        "LD_LIBRARY_PATH": f"{loop}:;:/a\x00b:{app}/lib:{'x' * 5000}",
    }
    for target_python in (tp, None):
        facts = conda.gather(weird, target_python)
        json.dumps(facts.to_json())
        assert facts.shlvl is None and facts.shlvl_raw == "two"
        assert facts.prefix_chain == {}
        assert facts.ld_library_path == weird["LD_LIBRARY_PATH"]


def test_gather_is_fast_on_large_environments(conda_target: tuple[Path, target.TargetPython], tmp_path: Path) -> None:
    app, tp = conda_target
    for i in range(3000):  # a big conda env's lib/
        (app / "lib" / f"lib{i}.so.1").write_bytes(b"x")
    entries = []
    for d in range(20):
        directory = tmp_path / f"dir{d}"
        directory.mkdir()
        for i in range(0, 3000, 10):  # each entry shares 300 names, all other files
            (directory / f"lib{i}.so.1").write_bytes(b"y")
        entries.append(str(directory))
    environ = {"LD_LIBRARY_PATH": ":".join(entries), "CONDA_PREFIX": str(app), "CONDA_SHLVL": "1"}
    conda.gather(environ, tp)  # warm the dentry cache, as a second `check` would find it
    elapsed = float("inf")
    for _ in range(3):  # best of three: the machine may be busy with other work
        started = time.perf_counter()
        facts = conda.gather(environ, tp)
        elapsed = min(elapsed, time.perf_counter() - started)
    assert all(len(e.shadows) == 300 for e in facts.entries)
    assert elapsed < 1.0, f"gather took {elapsed:.3f}s"
