"""One gcc-built fixture per loader rule, named after the rule (as libtree's tests are).

Every test asserts two things: the model agrees with glibc's loader run in trace mode on the
same files (tests/oracle.py), and the verdict is the one the rule predicts, so that a test fails
if both sides are wrong the same way.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Mapping

import pytest

import tritondoctor.elf as elf_module
from elf_fixtures import Fixtures, have_gcc, mark_version_need_weak, version_needs
from oracle import OracleResult, RTLD, canonical, compare, trace
from tritondoctor.elf import elf_cache
from tritondoctor.loader import Library, LoaderEnv, ResolvedTree, resolve

pytestmark = [
    pytest.mark.skipif(not have_gcc(), reason="gcc is needed to build the ELF fixtures"),
    pytest.mark.skipif(not os.path.exists(RTLD), reason=f"the oracle is x86-64 glibc's {RTLD}"),
]


@pytest.fixture
def fx(tmp_path: Path) -> Fixtures:
    return Fixtures(tmp_path / "fx")


@pytest.fixture(autouse=True)
def private_elf_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh in-memory ELF cache per test: fixtures are rebuilt and replaced in place, and
    their parsed facts have no business in the user's on-disk cache."""
    monkeypatch.setattr(elf_module, "_default_cache", elf_cache(None))


def agree(
    file: Path,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    execute: bool = False,
) -> tuple[ResolvedTree, OracleResult]:
    """Resolve with the model and with ld.so; fail on any disagreement; return both."""
    environ = dict(environ or {})
    where = str(cwd or file.parent)
    tree = resolve(str(file), LoaderEnv.from_system(environ=environ, cwd=where))
    truth = trace(str(file), environ, where, execute=execute)
    cmp = compare(tree, truth, "fixture", where)
    assert cmp, f"{cmp.report()}\n--- ld.so stdout:\n{truth.stdout}--- ld.so stderr:\n{truth.stderr}"
    return tree, truth


def real(path: Path | str) -> str:
    return os.path.realpath(path)


def lib(tree: ResolvedTree, name: str) -> Library:
    found = [entry for entry in tree.libraries if entry.name == name]
    assert len(found) == 1, f"{name}: {[(e.name, e.path) for e in tree.libraries]}"
    return found[0]


def run_for_real(exe: Path, environ: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Start one of our own fixture programs (its main returns 0) under ld.so for real."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LD_")}
    env.update(environ or {})
    return subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=30)


def ld_so_supports(subdir: str) -> bool:
    """Whether this machine's ld.so searches a hwcaps subdirectory, in its own words
    (`ld.so --help` lists them with "supported, searched")."""
    text = subprocess.run([RTLD, "--help"], capture_output=True, text=True).stdout
    return any(re.match(rf"\s+{re.escape(subdir)} \(.*supported, searched\)", line) for line in text.splitlines())


# ---------------------------------------------------------------------------------------------
# RPATH, LD_LIBRARY_PATH, RUNPATH
# ---------------------------------------------------------------------------------------------


def test_01_rpath_is_inherited_down_the_loader_chain(fx: Fixtures) -> None:
    fx.lib("a/libA.so", needed=["libB.so"])
    b = fx.lib("b/libB.so")
    exe = fx.exe("bin/app", needed=["libA.so"], rpath=[str(fx.path("a")), str(fx.path("b"))])
    tree, truth = agree(exe)
    assert truth.mapping["libB.so"] == real(b)
    assert lib(tree, "libB.so").via == "rpath"


def test_02_runpath_is_not_inherited(fx: Fixtures) -> None:
    a = fx.lib("a/libA.so", needed=["libB.so"])
    fx.lib("b/libB.so")
    exe = fx.exe("bin/app", needed=["libA.so"], runpath=[str(fx.path("a")), str(fx.path("b"))])
    tree, truth = agree(exe)
    assert truth.mapping["libA.so"] == real(a)
    assert truth.mapping["libB.so"] is None
    assert [m.name for m in tree.missing] == ["libB.so"]


def test_03_rpath_over_ld_library_path(fx: Fixtures) -> None:
    in_rpath = fx.lib("r/libX.so")
    in_env = fx.lib("e/libX.so")
    exe = fx.exe("bin/app", needed=["libX.so"], rpath=[str(fx.path("r"))])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("e"))})
    assert truth.mapping["libX.so"] == real(in_rpath) != real(in_env)
    assert lib(tree, "libX.so").via == "rpath"


def test_04_ld_library_path_over_runpath(fx: Fixtures) -> None:
    in_runpath = fx.lib("r/libX.so")
    in_env = fx.lib("e/libX.so")
    exe = fx.exe("bin/app", needed=["libX.so"], runpath=[str(fx.path("r"))])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("e"))})
    assert truth.mapping["libX.so"] == real(in_env)
    assert lib(tree, "libX.so").via == "ld_library_path"
    _, without_env = agree(exe)
    assert without_env.mapping["libX.so"] == real(in_runpath)


def test_05_runpath_of_the_requester_disables_every_rpath(fx: Fixtures) -> None:
    # libA has a DT_RUNPATH (pointing nowhere useful): for libA's own dependencies the loader
    # then ignores DT_RPATH altogether, the executable's included.
    fx.lib("a/libA.so", needed=["libB.so"], runpath=[str(fx.path("nowhere"))])
    fx.lib("b/libB.so")
    exe = fx.exe("bin/app", needed=["libA.so"], rpath=[str(fx.path("a")), str(fx.path("b"))])
    _, truth = agree(exe)
    assert truth.mapping["libB.so"] is None


def test_06_rpath_chain_goes_through_every_loader(fx: Fixtures) -> None:
    # app -> libA (found through LD_LIBRARY_PATH; DT_RPATH b:c) -> libB (no paths) -> libC:
    # libC is found through libA's RPATH, one level up the loader chain from libB.
    fx.lib("a/libA.so", needed=["libB.so"], rpath=[str(fx.path("b")), str(fx.path("c"))])
    fx.lib("b/libB.so", needed=["libC.so"])
    c = fx.lib("c/libC.so")
    exe = fx.exe("bin/app", needed=["libA.so"])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("a"))})
    assert truth.mapping["libC.so"] == real(c)
    assert lib(tree, "libC.so").via == "rpath"


def test_07_rpath_of_an_object_with_runpath_is_ignored_for_itself_only(fx: Fixtures) -> None:
    # app (RPATH a:b) -> libA (RUNPATH a) -> libB: libA's lookup skips app's RPATH (not found);
    # app's own second dependency libB still finds it through app's RPATH.
    fx.lib("a/libA.so", needed=["libC.so"], runpath=[str(fx.path("a"))])
    fx.lib("b/libC.so")
    exe = fx.exe("bin/app", needed=["libA.so"], rpath=[str(fx.path("a")), str(fx.path("b"))])
    _, truth = agree(exe)
    assert truth.mapping["libC.so"] is None
    exe2 = fx.exe("bin/app2", needed=["libA.so", "libC.so"], rpath=[str(fx.path("a")), str(fx.path("b"))])
    _, truth2 = agree(exe2)
    assert truth2.mapping["libC.so"] == real(fx.path("b/libC.so"))


# ---------------------------------------------------------------------------------------------
# Dynamic string tokens
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["$ORIGIN", "${ORIGIN}"])
def test_08_origin_is_the_directory_of_the_object(fx: Fixtures, token: str) -> None:
    # The executable's RPATH uses its own directory; the library's RUNPATH uses the library's.
    fx.lib("app/lib/libA.so", needed=["libB.so"], runpath=[f"{token}/deps"])
    b = fx.lib("app/lib/deps/libB.so")
    exe = fx.exe("app/bin/app", needed=["libA.so"], rpath=[f"{token}/../lib"])
    tree, truth = agree(exe, cwd=fx.root)
    assert truth.mapping["libA.so"] == real(fx.path("app/lib/libA.so"))
    assert truth.mapping["libB.so"] == real(b)
    assert lib(tree, "libB.so").via == "runpath"


def test_09_origin_of_a_symlinked_executable_is_its_real_directory(fx: Fixtures) -> None:
    # Started through a symlink, the main program's $ORIGIN comes from /proc/self/exe: the
    # directory of the real file, not of the link.
    a = fx.lib("real/lib/libA.so")
    exe = fx.exe("real/bin/app", needed=["libA.so"], rpath=["$ORIGIN/../lib"])
    link = fx.mkdir("elsewhere/bin") / "app"
    link.symlink_to(exe)
    _, truth = agree(link, execute=True)
    assert truth.mapping["libA.so"] == real(a)


def test_10_lib_and_platform_tokens(fx: Fixtures) -> None:
    # $LIB is the loader's own library directory name (lib/x86_64-linux-gnu on Debian, lib64
    # elsewhere); $PLATFORM the AT_PLATFORM string. Build both candidate layouts; ld.so decides.
    env = LoaderEnv.from_system(environ={})
    by_lib = fx.lib(f"app/{env.dst_lib}/libL.so")
    by_platform = fx.lib(f"app/plat/{env.platform}/libP.so")
    exe = fx.exe("app/bin/app", needed=["libL.so", "libP.so"], rpath=["$ORIGIN/../$LIB", "$ORIGIN/../plat/$PLATFORM"])
    _, truth = agree(exe)
    assert truth.mapping["libL.so"] == real(by_lib)
    assert truth.mapping["libP.so"] == real(by_platform)


# ---------------------------------------------------------------------------------------------
# LD_LIBRARY_PATH syntax
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [":{nowhere}", "{nowhere}::", "{nowhere}::{nowhere}2", "{nowhere}:"])
def test_11_empty_ld_library_path_entry_is_the_current_directory(fx: Fixtures, value: str) -> None:
    here = fx.lib("work/libcwd.so")
    exe = fx.exe("bin/app", needed=["libcwd.so"])
    llp = value.format(nowhere=fx.path("nowhere"))
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": llp}, cwd=fx.path("work"))
    assert truth.mapping["libcwd.so"] == real(here)
    assert lib(tree, "libcwd.so").via == "ld_library_path"


def test_12_no_empty_entry_no_current_directory(fx: Fixtures) -> None:
    fx.lib("work/libcwd.so")
    exe = fx.exe("bin/app", needed=["libcwd.so"])
    _, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("nowhere"))}, cwd=fx.path("work"))
    assert truth.mapping["libcwd.so"] is None


def test_13_semicolon_separates_ld_library_path_entries(fx: Fixtures) -> None:
    there = fx.lib("d/libsemi.so")
    exe = fx.exe("bin/app", needed=["libsemi.so"])
    _, truth = agree(exe, {"LD_LIBRARY_PATH": f"{fx.path('nowhere')};{fx.path('d')}"})
    assert truth.mapping["libsemi.so"] == real(there)


# ---------------------------------------------------------------------------------------------
# Candidates the loader passes over, and candidates that stop it
# ---------------------------------------------------------------------------------------------


def test_14_wrong_class_candidate_is_skipped(fx: Fixtures) -> None:
    decoy = fx.wrong_class("decoy/libX.so")
    good = fx.lib("good/libX.so")
    exe = fx.exe("bin/app", needed=["libX.so"])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": f"{fx.path('decoy')}:{fx.path('good')}"})
    assert truth.mapping["libX.so"] == real(good)
    assert [r.path for r in lib(tree, "libX.so").rejected] == [str(decoy)]
    _, alone = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("decoy"))})
    assert alone.mapping["libX.so"] is None


def test_15_wrong_machine_candidate_is_skipped(fx: Fixtures) -> None:
    fx.wrong_machine("decoy/libX.so")
    good = fx.lib("good/libX.so")
    exe = fx.exe("bin/app", needed=["libX.so"])
    _, truth = agree(exe, {"LD_LIBRARY_PATH": f"{fx.path('decoy')}:{fx.path('good')}"})
    assert truth.mapping["libX.so"] == real(good)


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("text", "invalid ELF header"),
        ("empty", "file too short"),
        ("directory", "cannot read file data"),
        ("relocatable", "only ET_DYN and ET_EXEC can be loaded"),
    ],
)
def test_16_unusable_candidate_stops_the_load(fx: Fixtures, kind: str, reason: str) -> None:
    # Unlike a wrong class or machine, a file that is no ELF object of this kind at all is
    # fatal: ld.so signals the error instead of going on to the next directory.
    bad = fx.path("bad/libX.so")
    if kind == "text":
        fx.not_elf("bad/libX.so")
    elif kind == "empty":
        fx.mkdir("bad")
        bad.write_bytes(b"")
    elif kind == "directory":
        bad.mkdir(parents=True)
    else:
        fx.mkdir("bad")
        src = fx.path("bad/x.c")
        src.write_text("int x(void) { return 1; }\n")
        subprocess.run(["gcc", "-c", "-fPIC", "-o", str(bad), str(src)], check=True)
    fx.lib("good/libX.so")
    exe = fx.exe("bin/app", needed=["libX.so"])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": f"{fx.path('bad')}:{fx.path('good')}"})
    assert truth.load_error is not None and truth.load_error.startswith(f"{bad}: {reason}")
    assert any(e.startswith(f"{bad}: {reason}") for e in tree.errors)
    assert not tree.ok
    assert run_for_real(exe, {"LD_LIBRARY_PATH": f"{fx.path('bad')}:{fx.path('good')}"}).returncode == 127


def test_17_missing_soname_is_not_found_and_the_rest_resolves(fx: Fixtures) -> None:
    present = fx.lib("d/libpresent.so")
    exe = fx.exe("bin/app", needed=["libmissing.so.1", "libpresent.so"], rpath=[str(fx.path("d"))])
    tree, truth = agree(exe)
    assert truth.mapping["libmissing.so.1"] is None
    assert truth.mapping["libpresent.so"] == real(present)
    assert [m.name for m in tree.missing] == ["libmissing.so.1"]
    assert any("libmissing.so.1" in e for e in tree.errors)


# ---------------------------------------------------------------------------------------------
# Names with a slash, reuse of loaded objects
# ---------------------------------------------------------------------------------------------


def test_18_needed_with_a_slash_is_opened_as_a_path(fx: Fixtures) -> None:
    absolute = fx.lib("abs/libabs.so", soname=None)
    relative = fx.lib("sub/librel.so", soname=None)
    exe = fx.exe("bin/app", needed=[str(absolute), "sub/librel.so"])
    assert str(absolute) in _needed(exe) and "sub/librel.so" in _needed(exe)
    # Relative to the process's current directory, never searched.
    _, truth = agree(exe, cwd=fx.root)
    assert truth.mapping[str(absolute)] == real(absolute)
    assert truth.mapping["sub/librel.so"] == real(relative)
    _, elsewhere = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("sub"))}, cwd=fx.mkdir("elsewhere"))
    assert elsewhere.mapping["sub/librel.so"] is None


def test_19_needed_with_origin_and_a_slash(fx: Fixtures) -> None:
    # DT_NEEDED "$ORIGIN/liborig.so": linked against a file in a directory literally named
    # "$ORIGIN"; at run time the token is the requesting object's directory.
    fx.lib("$ORIGIN/liborig.so", soname=None)
    exe = fx.exe("app/bin/app", needed=["$ORIGIN/liborig.so"])
    assert "$ORIGIN/liborig.so" in _needed(exe)
    beside = fx.lib("app/bin/liborig.so", soname=None)
    _, truth = agree(exe, cwd=fx.root)
    assert truth.loaded[0] == real(beside)


def test_20_soname_of_a_loaded_object_satisfies_a_later_request(fx: Fixtures) -> None:
    # app needs "libalias.so" (a file whose DT_SONAME is libreal.so.1) and libB; libB needs
    # libreal.so.1: the loaded object matches by soname, the other libreal.so.1 on
    # LD_LIBRARY_PATH is never opened.
    alias = fx.lib("a/libalias.so", soname="libreal.so.1")
    other = fx.lib("llp/libreal.so.1")
    fx.lib("a/libB.so", needed=["libreal.so.1"])
    exe = fx.exe("bin/app", needed=["libalias.so", "libB.so"], rpath=[str(fx.path("a"))])
    _, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("llp"))})
    assert real(alias) in truth.loaded
    assert real(other) not in truth.loaded
    assert "libreal.so.1" not in truth.mapping


def test_21_one_file_under_two_names_is_loaded_once(fx: Fixtures) -> None:
    one = fx.lib("a/libone.so")
    (fx.path("a/libtwo.so")).symlink_to("libone.so")
    exe = fx.exe("bin/app", needed=["libone.so", "libtwo.so"], rpath=[str(fx.path("a"))])
    _, truth = agree(exe)
    assert truth.loaded.count(real(one)) == 1
    assert "libtwo.so" not in truth.mapping


def test_22_dependency_cycle_is_loaded_once(fx: Fixtures) -> None:
    fx.lib("a/libA.so", needed=["libB.so"], rpath=[str(fx.path("a"))])
    fx.lib("a/libB.so", needed=["libA.so"], rpath=[str(fx.path("a"))])
    exe = fx.exe("bin/app", needed=["libA.so"], rpath=[str(fx.path("a"))])
    tree, truth = agree(exe)
    assert [truth.loaded.count(real(fx.path(f"a/lib{x}.so"))) for x in "AB"] == [1, 1]
    assert tree.ok


def test_23_cycle_back_to_the_main_object_by_its_soname(fx: Fixtures) -> None:
    main = fx.lib("a/libmain.so.1", needed=["libB.so"], rpath=[str(fx.path("a"))])
    fx.lib("a/libB.so", needed=["libmain.so.1"], rpath=[str(fx.path("a"))])
    _, truth = agree(main)
    assert real(main) not in truth.loaded  # the main object itself, matched by soname


def test_24_cycle_back_to_the_main_object_by_another_name(fx: Fixtures) -> None:
    # The main map has no file identity (glibc does not record one for the program it was asked
    # to run), so a request for it under a name that is neither its path nor its soname loads
    # the same file a second time.
    main = fx.lib("a/libmain.so.1", needed=["libB.so"], rpath=[str(fx.path("a"))])
    fx.path("a/libmain.so").symlink_to("libmain.so.1")
    fx.lib("a/libB.so", needed=["libmain.so"], rpath=[str(fx.path("a"))])
    _, truth = agree(main)
    assert truth.mapping["libmain.so"] == real(main)


# ---------------------------------------------------------------------------------------------
# LD_PRELOAD
# ---------------------------------------------------------------------------------------------


def test_25_ld_preload_comes_first_and_satisfies_later_requests(fx: Fixtures) -> None:
    fx.lib("a/libfoo.so.1")
    preloaded = fx.lib("p/libfoo.so.1")
    exe = fx.exe("bin/app", needed=["libfoo.so.1"], rpath=[str(fx.path("a"))])
    preload = f"{preloaded} libz.so.1:libnope.so"  # space and colon both separate entries
    tree, truth = agree(exe, {"LD_PRELOAD": preload})
    assert truth.loaded[0] == real(preloaded)
    assert truth.entries[1][0] == "libz.so.1"
    assert real(fx.path("a/libfoo.so.1")) not in truth.loaded
    assert [name for name, _ in truth.preload_errors] == ["libnope.so"]
    assert any("libnope.so" in w for w in tree.warnings)


# ---------------------------------------------------------------------------------------------
# Flags and filters
# ---------------------------------------------------------------------------------------------


def test_26b_nodefaultlib_on_the_executable(fx: Fixtures) -> None:
    # The flag of the requesting object counts: here the program's own libc.so.6 is not found.
    exe = fx.exe("bin/app", needed=["libz.so.1"], flags=["-Wl,-z,nodefaultlib"])
    tree, truth = agree(exe)
    assert truth.mapping["libz.so.1"] is None and truth.mapping["libc.so.6"] is None
    assert {m.name for m in tree.missing} == {"libz.so.1", "libc.so.6"}


def test_26_nodefaultlib_skips_cache_and_system_directories(fx: Fixtures) -> None:
    fx.lib("a/libnd.so", needed=["libz.so.1"], flags=["-Wl,-z,nodefaultlib"])
    exe = fx.exe("bin/app", needed=["libnd.so"], rpath=[str(fx.path("a"))])
    assert os.path.exists("/usr/lib/x86_64-linux-gnu/libz.so.1") or os.path.exists("/lib/x86_64-linux-gnu/libz.so.1")
    _, truth = agree(exe)
    assert truth.mapping["libz.so.1"] is None
    prefix = fx.mkdir("prefix/lib")
    (prefix / "libz.so.1").symlink_to(canonical("/lib/x86_64-linux-gnu/libz.so.1"))
    _, with_env = agree(exe, {"LD_LIBRARY_PATH": str(prefix)})
    assert with_env.mapping["libz.so.1"] == canonical("/lib/x86_64-linux-gnu/libz.so.1")


def test_27_missing_auxiliary_filter_is_not_an_error(fx: Fixtures) -> None:
    fx.lib("a/libfilt.so", flags=["-Wl,-f,libaux_missing.so"])
    exe = fx.exe("bin/app", needed=["libfilt.so"], rpath=[str(fx.path("a"))])
    tree, truth = agree(exe)
    assert truth.mapping["libaux_missing.so"] is None  # trace mode lists the absent auxiliary
    aux = lib(tree, "libaux_missing.so")
    assert aux.optional and aux.path is None
    assert tree.missing == [] and tree.ok
    assert run_for_real(exe).returncode == 0  # and the program really starts


def test_28_filter_is_loaded_before_the_filtering_object(fx: Fixtures) -> None:
    impl = fx.lib("a/libimpl.so")
    filt = fx.lib("a/libfilt.so", flags=["-Wl,-F,libimpl.so", "-Wl,-f,libaux_missing.so"])
    exe = fx.exe("bin/app", needed=["libfilt.so"], rpath=[str(fx.path("a"))])
    _, truth = agree(exe)
    names = [name for name, _ in truth.entries]
    assert names.index("libimpl.so") < names.index("libaux_missing.so") < names.index("libfilt.so")
    assert truth.mapping["libimpl.so"] == real(impl) and truth.mapping["libfilt.so"] == real(filt)


def test_28b_filtee_of_the_main_object_is_off_the_printed_chain(fx: Fixtures) -> None:
    # ld.so FILTER.so: the filtee goes into the chain before the main object, i.e. nowhere that
    # trace mode prints (and no version check sees); the filtering object's own needs still load.
    fx.lib("a/libimpl.so")
    filt = fx.lib("a/libfilt.so", needed=["libm.so.6"], flags=["-Wl,-F,libimpl.so"])
    tree, truth = agree(filt, {"LD_LIBRARY_PATH": str(fx.path("a"))})
    assert "libimpl.so" not in truth.mapping and truth.mapping["libm.so.6"] is not None
    assert "libimpl.so" not in [entry.name for entry in tree.libraries]


def test_29_missing_filter_is_an_error(fx: Fixtures) -> None:
    fx.lib("a/libfilt.so", flags=["-Wl,-F,libimpl_missing.so"])
    exe = fx.exe("bin/app", needed=["libfilt.so"], rpath=[str(fx.path("a"))])
    tree, truth = agree(exe)
    assert truth.mapping["libimpl_missing.so"] is None
    assert not tree.ok
    assert run_for_real(exe).returncode == 127


# ---------------------------------------------------------------------------------------------
# Symbol versions
# ---------------------------------------------------------------------------------------------


def test_30_missing_symbol_version_is_reported(fx: Fixtures) -> None:
    new = fx.versioned_lib("new/libv.so.1", ["V1", "V2"])
    exe = fx.needing_versions("bin/app", new, ["V2"], kind="exe", rpath=[str(fx.path("new"))])
    assert version_needs(exe)["libv.so.1"] == ["V2"]
    old = fx.versioned_lib("old/libv.so.1", ["V1"])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("old"))})
    # The RPATH wins, so nothing is wrong yet...
    assert truth.version_errors == [] and tree.version_errors == []
    # ...while the same program without an RPATH, and LD_LIBRARY_PATH on the old library, fails.
    exe2 = fx.needing_versions("bin/app2", new, ["V2"], kind="exe")
    tree2, truth2 = agree(exe2, {"LD_LIBRARY_PATH": f"{fx.path('old')}:{fx.path('new')}"})
    expected = [("V2", real(old), real(exe2))]
    assert [(e.version, e.file, e.required_by) for e in truth2.version_errors] == expected
    assert [(e.version, real(e.file), real(e.required_by)) for e in tree2.version_errors] == expected


def test_31_library_without_version_definitions_satisfies_any_version(fx: Fixtures) -> None:
    new = fx.versioned_lib("new/libv.so.1", ["V1", "V2"])
    exe = fx.needing_versions("bin/app", new, ["V2"], kind="exe")
    fx.lib("plain/libv.so.1", source="int tdx_node_1(void) { return 1; }\n")
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("plain"))})
    assert truth.version_errors == [] and tree.version_errors == []
    assert truth.mapping["libv.so.1"] == real(fx.path("plain/libv.so.1"))


def test_31b_weak_version_need_is_not_an_error(fx: Fixtures) -> None:
    # A need marked VER_FLG_WEAK: a provider without the version is fine (trace mode, which
    # checks verbosely, says "weak version ... not found" on stderr).
    new = fx.versioned_lib("new/libv.so.1", ["V1", "V2"])
    exe = fx.needing_versions("bin/app", new, ["V1", "V2"], kind="exe")
    mark_version_need_weak(exe, "V2")
    old = fx.versioned_lib("old/libv.so.1", ["V1"])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": str(old.parent)})
    assert "weak version `V2' not found" in truth.stderr
    assert truth.version_errors == [] and tree.version_errors == []
    assert truth.mapping["libv.so.1"] == real(old)
    older = fx.versioned_lib("older/libv.so.1", ["V0"])  # V1 is still a strong need
    _, strong = agree(exe, {"LD_LIBRARY_PATH": str(older.parent)})
    assert [e.version for e in strong.version_errors] == ["V1"]


def _pytriton_root() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def test_32_old_libstdcxx_first_on_ld_library_path_under_tritonserver(fx: Fixtures) -> None:
    root = _pytriton_root()
    if root is None:
        pytest.skip("nvidia-pytriton is not installed in the test environment")
    server = root / "tritonserver/bin/tritonserver"
    bundled = root.parent / "nvidia_pytriton.libs"
    old, nodes = fx.old_libstdcxx("old/libstdc++.so.6")
    assert "GLIBCXX_3.4.29" in nodes and "GLIBCXX_3.4.30" not in nodes and "CXXABI_1.3.13" in nodes
    environ = {"LD_LIBRARY_PATH": f"{old.parent}:{bundled}"}  # PyTriton appends its libs dir
    tree, truth = agree(server, environ)
    assert truth.mapping["libstdc++.so.6"] == real(old)
    missing = {e.version for e in truth.version_errors}
    assert missing == {"GLIBCXX_3.4.30"}
    assert {e.file for e in truth.version_errors} == {real(old)}
    assert real(server) in {e.required_by for e in truth.version_errors}
    assert sorted((e.version, real(e.file), real(e.required_by)) for e in tree.version_errors) == sorted(
        (e.version, e.file, e.required_by) for e in truth.version_errors
    )


# ---------------------------------------------------------------------------------------------
# hwcaps subdirectories
# ---------------------------------------------------------------------------------------------


def test_33_glibc_hwcaps_subdirectory_wins_when_supported(fx: Fixtures) -> None:
    plain = fx.lib("d/libh.so")
    v2 = fx.lib("d/glibc-hwcaps/x86-64-v2/libh.so")
    exe = fx.exe("bin/app", needed=["libh.so"])
    _, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("d"))})
    assert truth.mapping["libh.so"] == real(v2 if ld_so_supports("x86-64-v2") else plain)


def test_34_legacy_hwcaps_subdirectory(fx: Fixtures) -> None:
    # glibc before 2.37 still searches the legacy platform/hwcap subdirectories (x86_64/,
    # tls/, ...); 2.37 removed them. ld.so --help says which this one searches.
    plain = fx.lib("d/libh.so")
    legacy = fx.lib("d/x86_64/libh.so")
    exe = fx.exe("bin/app", needed=["libh.so"])
    _, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("d"))})
    assert truth.mapping["libh.so"] == real(legacy if ld_so_supports("x86_64") else plain)


# ---------------------------------------------------------------------------------------------
# More search-path details
# ---------------------------------------------------------------------------------------------


def test_35_origin_in_ld_library_path_is_the_main_programs_directory(fx: Fixtures) -> None:
    beside = fx.lib("app/bin/libo.so")
    exe = fx.exe("app/bin/app", needed=["libo.so"])
    _, truth = agree(exe, {"LD_LIBRARY_PATH": "$ORIGIN"}, cwd=fx.mkdir("elsewhere"))
    assert truth.mapping["libo.so"] == real(beside)


def test_36_relative_rpath_is_relative_to_the_current_directory(fx: Fixtures) -> None:
    there = fx.lib("work/rel/librel.so")
    exe = fx.exe("app/bin/app", needed=["librel.so"], rpath=["rel"])
    _, truth = agree(exe, cwd=fx.path("work"))
    assert truth.mapping["librel.so"] == real(there)
    _, elsewhere = agree(exe, cwd=fx.path("app"))
    assert elsewhere.mapping["librel.so"] is None


def test_37_needed_path_of_the_wrong_class_is_not_found(fx: Fixtures) -> None:
    decoy = fx.wrong_class("abs/lib32.so")
    fx.lib("stub/lib32.so", soname=None, nostdlib=True)
    exe = fx.exe("bin/app", needed=["stub/lib32.so"])
    _, truth = agree(exe, cwd=fx.root)
    assert truth.mapping["stub/lib32.so"] == real(fx.path("stub/lib32.so"))
    fx.path("stub/lib32.so").unlink()
    fx.path("stub/lib32.so").symlink_to(decoy)
    tree, wrong = agree(exe, cwd=fx.root)
    assert wrong.mapping["stub/lib32.so"] is None
    assert [m.name for m in tree.missing] == ["stub/lib32.so"]


def test_38_symlink_loop_ends_that_search_list(fx: Fixtures) -> None:
    # open() fails with ELOOP, neither ENOENT nor EACCES: open_path gives up on the rest of
    # LD_LIBRARY_PATH (the next source, RUNPATH here, is still tried).
    loop = fx.mkdir("loop")
    (loop / "libX.so").symlink_to("libX.so")
    later = fx.lib("later/libX.so")
    runpath = fx.lib("rp/libX.so")
    exe = fx.exe("bin/app", needed=["libX.so"], runpath=[str(fx.path("rp"))])
    _, truth = agree(exe, {"LD_LIBRARY_PATH": f"{loop}:{fx.path('later')}"})
    assert truth.mapping["libX.so"] == real(runpath) != real(later)


# ---------------------------------------------------------------------------------------------
# What ld.so reads of a file: program headers, not sections
# ---------------------------------------------------------------------------------------------


def _end_of_segments(path: Path) -> int:
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        return max(s["p_offset"] + s["p_filesz"] for s in elf.iter_segments() if s["p_type"] == "PT_LOAD")


def test_39_library_truncated_after_its_segments_still_loads(fx: Fixtures) -> None:
    # A copy cut short loses the section header table (at the end) first; ld.so never reads it.
    whole = fx.lib("full/libcut.so", needed=["libm.so.6"])
    cut = fx.mkdir("cut") / "libcut.so"
    cut.write_bytes(whole.read_bytes()[: _end_of_segments(whole)])
    assert cut.stat().st_size < whole.stat().st_size
    exe = fx.exe("bin/app", needed=["libcut.so"])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("cut"))})
    assert truth.mapping["libcut.so"] == real(cut)
    assert truth.mapping["libm.so.6"] is not None
    assert tree.ok


def test_40_versions_are_checked_without_section_headers(fx: Fixtures) -> None:
    new = fx.versioned_lib("new/libv.so.1", ["V1", "V2"])
    exe = fx.needing_versions("bin/app", new, ["V2"], kind="exe")
    old = fx.versioned_lib("old/libv.so.1", ["V1"])
    data = bytearray(old.read_bytes())
    data[0x28:0x30] = bytes(8)  # e_shoff
    data[0x3C:0x40] = bytes(4)  # e_shnum, e_shstrndx
    old.write_bytes(bytes(data))
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": str(fx.path("old"))})
    assert [(e.version, e.file) for e in truth.version_errors] == [("V2", real(old))]
    assert [(e.version, real(e.file)) for e in tree.version_errors] == [("V2", real(old))]


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("pie", "cannot dynamically load position-independent executable"),
        ("executable", "cannot dynamically load executable"),
        ("debuginfo", "object file has no dynamic section"),
    ],
)
def test_41_dependency_that_is_no_shared_object_stops_the_load(fx: Fixtures, kind: str, reason: str) -> None:
    # These pass open_verify; _dl_map_object_from_fd then fails, naming the requested name.
    bad = fx.mkdir("bad") / "libdep.so"
    if kind == "debuginfo":
        real_lib = fx.lib("src/libdep.so")
        subprocess.run(["objcopy", "--only-keep-debug", str(real_lib), str(bad)], check=True)
    else:
        flags = ["-pie", "-fPIE"] if kind == "pie" else ["-no-pie"]
        src = fx.path("bad/main.c")
        src.write_text("int main(void) { return 0; }\n")
        subprocess.run(["gcc", *flags, "-o", str(bad), str(src)], check=True)
    fx.lib("good/libdep.so")
    exe = fx.exe("bin/app", needed=["libdep.so"])
    tree, truth = agree(exe, {"LD_LIBRARY_PATH": f"{fx.path('bad')}:{fx.path('good')}"})
    assert truth.load_error == f"libdep.so: {reason}"
    assert any(e.startswith(f"libdep.so: {reason}") and str(bad) in e for e in tree.errors)


def test_42_unusable_preload_is_ignored(fx: Fixtures) -> None:
    text = fx.not_elf("p/libtext.so")
    wrong = fx.wrong_class("p/lib32.so")
    exe = fx.exe("bin/app", needed=["libm.so.6"])
    tree, truth = agree(exe, {"LD_PRELOAD": f"{text}:{wrong}"})
    assert sorted(truth.preload_errors) == sorted([(str(text), "invalid ELF header"), (str(wrong), "wrong ELF class: ELFCLASS32")])
    assert truth.mapping["libm.so.6"] is not None and tree.ok


def test_43_unusable_auxiliary_is_ignored_entirely(fx: Fixtures) -> None:
    # An error on an auxiliary filtee is swallowed: not even a "not found" line.
    fx.not_elf("a/libaux_text.so")
    fx.lib("a/libfilt.so", flags=["-Wl,-f,libaux_text.so"])
    exe = fx.exe("bin/app", needed=["libfilt.so"], rpath=[str(fx.path("a"))])
    tree, truth = agree(exe)
    assert "libaux_text.so" not in truth.mapping
    assert run_for_real(exe).returncode == 0


def _needed(path: Path) -> list[str]:
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as fh:
        dynamic = ELFFile(fh).get_section_by_name(".dynamic")
        assert isinstance(dynamic, DynamicSection)
        return [str(getattr(t, "needed")) for t in dynamic.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
