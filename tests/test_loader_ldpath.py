"""A huge LD_LIBRARY_PATH: the model agrees with ld.so on 5,000 entries.

Most entries name directories that do not exist, some are real empty directories, and the
libraries sit far down the list, behind decoys (a wrong-class file and a dangling symlink under
a needed name), duplicates, relative and empty entries, ';' separators and `$ORIGIN`. The time
it takes is measured by bench/bench_ldpath.py, not asserted here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from elf_fixtures import Fixtures, have_gcc
from oracle import RTLD, compare, trace

import tritondoctor.elf as elf_module
from tritondoctor.elf import elf_cache
from tritondoctor.loader import LoaderEnv, ResolvedTree, resolve, search_library

pytestmark = [
    pytest.mark.skipif(not have_gcc(), reason="gcc is needed to build the ELF fixtures"),
    pytest.mark.skipif(not os.path.exists(RTLD), reason=f"the oracle is x86-64 glibc's {RTLD}"),
]

ENTRIES = 5000
REAL_EVERY = 97  # one entry in so many is a real (empty) directory


@pytest.fixture(autouse=True)
def private_elf_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elf_module, "_default_cache", elf_cache(None))


def huge_path(root: Path, tail: list[str]) -> str:
    """ENTRIES entries ending in `tail`. Entries stay short: one environment string may not
    exceed 128 KiB (MAX_ARG_STRLEN), or ld.so could not even be started with it."""
    entries: list[str] = []
    for i in range(ENTRIES - len(tail)):
        if i % REAL_EVERY == 0:
            (root / "e" / str(i)).mkdir(parents=True)
            # relative (to the cwd), absolute, and absolute with a trailing slash
            entries.append([f"e/{i}", str(root / "e" / str(i)), f"{root}/e/{i}/"][i % 3])
        elif i % 1000 == 1:
            entries.append("")  # the current directory
        else:
            entries.append(f"/nx/{i}")
    entries += tail
    return ":".join(entries[:2500]) + ";" + ":".join(entries[2500:])


def agree(file: Path, ld_library_path: str, cwd: Path) -> ResolvedTree:
    environ = {"LD_LIBRARY_PATH": ld_library_path}
    assert len(f"LD_LIBRARY_PATH={ld_library_path}") < 128 * 1024
    tree = resolve(str(file), LoaderEnv.from_system(environ=environ, cwd=str(cwd)))
    truth = trace(str(file), environ, str(cwd))
    cmp = compare(tree, truth, f"{ENTRIES} entries", str(cwd))
    assert cmp, f"{cmp.report()}\n--- ld.so stdout:\n{truth.stdout}--- ld.so stderr:\n{truth.stderr}"
    return tree


@pytest.fixture
def tree_files(tmp_path: Path) -> tuple[Fixtures, Path]:
    fx = Fixtures(tmp_path / "fx")
    fx.lib("far/libleaf.so", needed=["libz.so.1"])
    fx.lib("far/libmid.so", needed=["libleaf.so", "libm.so.6"])
    exe = fx.exe("app/bin/app", needed=["libmid.so", "libabsent.so"])
    fx.wrong_class("decoy/libmid.so")
    os.symlink("/nx/dangling", fx.mkdir("decoy") / "libleaf.so")
    return fx, exe


def test_huge_ld_library_path_agrees_with_ld_so(tree_files: tuple[Fixtures, Path], tmp_path: Path) -> None:
    fx, exe = tree_files
    far, decoy = fx.path("far"), fx.path("decoy")
    tail = [str(decoy), "$ORIGIN/../lib", str(decoy), f"{far}//", str(far)]
    tree = agree(exe, huge_path(tmp_path, tail), tmp_path)
    mid = next(lib for lib in tree.libraries if lib.name == "libmid.so")
    assert mid.path == f"{far}/libmid.so" and mid.via == "ld_library_path" and mid.search_dir == str(far)
    assert [r.path for r in mid.rejected] == [f"{decoy}/libmid.so"]
    assert [lib.name for lib in tree.missing] == ["libabsent.so"]


def test_a_library_deep_in_the_list_wins_over_the_cache(tmp_path: Path) -> None:
    """A copy of libz in the 4,999th entry shadows the system's (found through the cache)."""
    fx = Fixtures(tmp_path / "fx")
    exe = fx.exe("app", needed=["libz.so.1"])
    libz = os.path.realpath("/usr/lib/x86_64-linux-gnu/libz.so.1")
    if not os.path.isfile(libz):
        pytest.skip("no system libz to copy")
    shadow = fx.mkdir("shadow")
    shutil.copy2(libz, shadow / "libz.so.1")
    tree = agree(exe, huge_path(tmp_path, [str(shadow)]), tmp_path)
    assert tree.libraries[0].path == f"{shadow}/libz.so.1"


def test_directories_are_read_afresh_for_each_resolution(tmp_path: Path) -> None:
    """What one resolution learnt about a directory (its listing) does not outlive it."""
    target = tmp_path / "later"
    target.mkdir()
    env = LoaderEnv.from_system(environ={"LD_LIBRARY_PATH": f"/nx/a:{target}"}, cwd=str(tmp_path))
    assert search_library("libtdxlater.so", env).path is None
    Fixtures(tmp_path / "fx").lib("later/libtdxlater.so", soname="libtdxlater.so")
    shutil.move(str(tmp_path / "fx" / "later" / "libtdxlater.so"), target / "libtdxlater.so")
    assert search_library("libtdxlater.so", env).path == f"{target}/libtdxlater.so"
