"""Thousands of truncated and byte-flipped ELF files: `read_elf` returns a typed value and never
raises; `resolve` never raises and reports a corrupt main file (or dependency) as an error.

The mutants come from real files (a gcc-built library with DT_NEEDED, DT_SONAME, DT_RPATH,
version needs and definitions, and this system's libz) by a seeded RNG, aimed at the bytes the
reader looks at: the ELF header, the program and section header tables, .dynamic, .dynstr and
the version sections. A failure message carries the seed and mutation to reproduce it.
"""

from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

import tritondoctor.elf as elf_module
from elf_fixtures import Fixtures, have_gcc
from tritondoctor.elf import ElfError, ElfInfo, elf_cache, read_elf
from tritondoctor.loader import LoaderEnv, resolve

SEED = 20260123
MUTANTS_PER_BASE = 1200
RESOLVE_SAMPLE = 300
DEPENDENCY_SAMPLE = 150


@dataclass(frozen=True)
class Region:
    name: str
    start: int
    end: int


@dataclass(frozen=True)
class Mutant:
    base: str
    description: str
    data: bytes


@pytest.fixture(autouse=True)
def private_elf_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Mutants are keyed by file identity like any file; keep thousands of them out of the
    user's on-disk cache (and away from any stale identity in it)."""
    monkeypatch.setattr(elf_module, "_default_cache", elf_cache(None))
    yield


def regions_of(path: Path) -> list[Region]:
    """Byte ranges of the structures the reader parses, found with pyelftools directly."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as fh:
        elf = ELFFile(fh)
        h = elf.header
        out = [
            Region("ehdr", 0, 64),
            Region("phdrs", h["e_phoff"], h["e_phoff"] + h["e_phnum"] * h["e_phentsize"]),
            Region("shdrs", h["e_shoff"], h["e_shoff"] + h["e_shnum"] * h["e_shentsize"]),
        ]
        for section in elf.iter_sections():
            if section.name in (".dynamic", ".dynstr", ".gnu.version_r", ".gnu.version_d", ".shstrtab", ".interp"):
                out.append(Region(section.name, section["sh_offset"], section["sh_offset"] + section["sh_size"]))
    return [r for r in out if r.end > r.start]


def mutants(base: Path, rng: random.Random, count: int) -> Iterator[Mutant]:
    data = base.read_bytes()
    regions = regions_of(base)
    boundaries = sorted({b for r in regions for b in (r.start, r.end)} | {0, 4, 16, 52, 64, len(data)})
    for i in range(count):
        kind = rng.choice(("truncate", "flip", "flip", "field", "field"))
        if kind == "truncate":
            if rng.random() < 0.6:
                cut = max(0, min(len(data) - 1, rng.choice(boundaries) + rng.randint(-8, 8)))
            else:
                cut = rng.randrange(len(data))
            yield Mutant(base.name, f"#{i} truncate to {cut}", data[:cut])
            continue
        buf = bytearray(data)
        changes = []
        for _ in range(rng.randint(1, 4)):
            region = rng.choice(regions)
            if kind == "flip":
                at = rng.randrange(region.start, region.end)
                buf[at] ^= rng.randrange(1, 256)
                changes.append(f"flip {region.name}@{at}")
            else:
                width = rng.choice((1, 2, 4, 8))
                at = rng.randrange(region.start, max(region.start + 1, region.end - width + 1))
                value = rng.choice((0, (1 << (8 * width)) - 1, rng.getrandbits(8 * width), 1 << (8 * width - 1)))
                buf[at : at + width] = value.to_bytes(width, "little")[: len(buf[at : at + width])]
                changes.append(f"set {region.name}@{at}/{width}={value:#x}")
        yield Mutant(base.name, f"#{i} {', '.join(changes)}", bytes(buf))


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not have_gcc():
        pytest.skip("gcc is needed to build the base ELF file")
    root = tmp_path_factory.mktemp("corrupt-bases")
    fx = Fixtures(root / "fx")
    provider = fx.versioned_lib("prov/libprov.so.1", ["PROV_1", "PROV_2"])
    rich = fx.needing_versions("lib/librich.so", provider, ["PROV_2"], needed=["libz.so.1", "libm.so.6"],
                               rpath=["$ORIGIN", "/opt/nowhere"])
    out = [rich]
    libz = Path(os.path.realpath("/usr/lib/x86_64-linux-gnu/libz.so.1"))
    if libz.is_file():
        out.append(Path(shutil.copy2(libz, root / "libz.so.1")))
    return out


def write_all(tmp: Path, items: list[Mutant]) -> list[Path]:
    """Each mutant in a file of its own: a new inode, so no two share a file identity."""
    paths = []
    for n, mutant in enumerate(items):
        path = tmp / f"m{n:05d}.so"
        path.write_bytes(mutant.data)
        paths.append(path)
    return paths


def check_info(info: ElfInfo) -> None:
    assert info.elf_class in (32, 64)
    assert all(isinstance(n, str) for n in info.needed)
    assert info.rpath is None or all(isinstance(p, str) for p in info.rpath)
    assert info.runpath is None or all(isinstance(p, str) for p in info.runpath)
    assert isinstance(info.flags_1, int)
    assert all(isinstance(v.name, str) for need in info.version_needs for v in need.versions)
    assert all(isinstance(v, str) for v in info.version_defs)
    assert all(kind in ("needed", "auxiliary", "filter") for kind, _ in info.dependencies)


def test_read_elf_never_raises_on_mutants(bases: list[Path], tmp_path: Path) -> None:
    rng = random.Random(SEED)
    items = [m for base in bases for m in mutants(base, rng, MUTANTS_PER_BASE)]
    assert len(items) >= 2000 or len(bases) == 1
    paths = write_all(tmp_path, items)
    cache = elf_cache(None)
    errors = infos = 0
    for mutant, path in zip(items, paths):
        try:
            result = read_elf(str(path), cache)
        except Exception as exc:  # noqa: BLE001 - the point of the test
            pytest.fail(f"read_elf raised {exc!r} on {mutant.base} mutant {mutant.description} (seed {SEED})")
        if isinstance(result, ElfError):
            assert result.path == str(path) and isinstance(result.reason, str) and result.reason
            errors += 1
        else:
            assert isinstance(result, ElfInfo), f"{mutant.description}: {result!r}"
            check_info(result)
            infos += 1
    # Both outcomes are well represented, or the mutations were not aimed at anything.
    assert errors > len(items) // 10 and infos > len(items) // 10, (errors, infos)


def test_resolve_reports_a_corrupt_main_file(bases: list[Path], tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    pool = [m for base in bases for m in mutants(base, rng, RESOLVE_SAMPLE // len(bases))]
    paths = write_all(tmp_path, pool)
    env = LoaderEnv.from_system(environ={}, cwd=str(tmp_path))
    corrupt = 0
    for mutant, path in zip(pool, paths):
        try:
            tree = resolve(str(path), env)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"resolve raised {exc!r} on {mutant.base} mutant {mutant.description} (seed {SEED + 1})")
        if isinstance(read_elf(str(path)), ElfError):
            corrupt += 1
            assert tree.errors and str(path) in tree.errors[0], mutant.description
            assert tree.libraries == [] and not tree.ok
    assert corrupt > len(pool) // 10


def test_resolve_reports_a_corrupt_dependency(bases: list[Path], tmp_path: Path) -> None:
    # app (RPATH $ORIGIN/../lib) needs librich.so; librich.so is a mutant.
    fx = Fixtures(tmp_path / "fx")
    exe = fx.exe("template/bin/app", needed=["librich.so"], rpath=["$ORIGIN/../lib"])
    rng = random.Random(SEED + 2)
    pool = list(mutants(bases[0], rng, DEPENDENCY_SAMPLE))
    env = LoaderEnv.from_system(environ={}, cwd=str(tmp_path))
    failed = 0
    for n, mutant in enumerate(pool):
        app = fx.mkdir(f"case{n}/bin") / "app"
        shutil.copy2(exe, app)
        dep = fx.mkdir(f"case{n}/lib") / "librich.so"
        dep.write_bytes(mutant.data)
        try:
            tree = resolve(str(app), env)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"resolve raised {exc!r} with dependency mutant {mutant.description} (seed {SEED + 2})")
        lib = next(entry for entry in tree.libraries if entry.name == "librich.so")
        if lib.path is None:
            failed += 1
            # Either ld.so would skip it (another class/machine: then "not found") or it stops
            # the load on it: then the error names the file.
            assert not tree.ok
            assert lib.rejected and os.path.realpath(lib.rejected[0].path) == str(dep), mutant.description
            if tree.errors and lib.rejected[0].path in tree.errors[-1]:
                assert tree.libraries[-1] is lib  # nothing is loaded after the failure
    assert failed > len(pool) // 10
