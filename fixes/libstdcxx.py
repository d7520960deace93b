"""Fix `libstdcxx`: install a libstdc++ new enough for PyTriton into the conda environment.

From the versions the PyTriton closure needs (GLIBCXX_3.4.30 / CXXABI_1.3.13 for 0.7.0) the
minimum GCC comes from `tritondoctor.gcc_abi` (the libstdc++ manual's symbol-versioning history:
3.4.30 -> GCC 12.1, 3.4.31 -> 13.1, 3.4.32 -> 13.2, 3.4.33 -> 14.1); conda-forge names the
package after the GCC version: `libstdcxx-ng>=12` (since GCC 14 a metapackage over `libstdcxx`,
which carries the files).

Where the package comes from, first found:
1. `--package FILE` archives (.conda / .tar.bz2);
2. the conda package caches: $CONDA_PKGS_DIRS, <base>/pkgs, $MAMBA_ROOT_PREFIX/pkgs, ~/.conda/pkgs;
3. a conda frontend ($MAMBA_EXE, $CONDA_EXE, mamba, micromamba, conda on PATH), used to
   *download only*; what it downloaded is then checked and installed like 1 and 2.

Before anything is written, the archive is extracted to a temporary directory and its
libstdc++.so.6 read (`.gnu.version_d`): an archive that does not define every needed version is
rejected. The prediction then derives the snapshot with the archive's files placed where they
would be installed.

The install itself is py-rattler's: `rattler.install` given the environment's own conda-meta
records as `installed_packages`, the new package as the only record, and every other installed
package in `ignored_packages`. That is a real conda transaction (the old libstdcxx-ng unlinked
with its files and record, the new one linked with prefix replacement and validated against its
paths.json, a conda-meta/<name>-<version>-<build>.json PrefixRecord with `files` and
`paths_data` written), not a file copy with a hand-made record, and it cannot touch any other
package. Every path it can change is in the journal first.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from tritondoctor.elf import ElfInfo, read_elf
from tritondoctor.findings import Status, SymbolVersionNeed, needs
from tritondoctor.fixes import _pathorder
from tritondoctor.fixspec import FixSpec, files_unchanged
from tritondoctor.gcc_abi import conda_spec, minimum_gcc
from tritondoctor.plan import (
    ApplyError,
    Command,
    FixPlan,
    PackageInstall,
    PlanContext,
    PlanError,
    Prediction,
    file_sha256,
    predict,
    with_overlays,
)
from tritondoctor.versions import digits

if TYPE_CHECKING:
    from tritondoctor.findings import Finding
    from tritondoctor.journal import Journal
    from tritondoctor.snapshot import Snapshot

ID = "libstdcxx"
NAMES = ("libstdcxx-ng", "libstdcxx")
SONAME = "libstdc++.so.6"
_ARCHIVE = re.compile(r"^(?P<name>libstdcxx(?:-ng)?)-(?P<version>[0-9][^-]*)-(?P<build>[^-]+)\.(?:conda|tar\.bz2)$")
_ARCHIVE_ANY = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)-(?P<build>[^-]+)\.(?:conda|tar\.bz2)$")


def version_tuple(version: str) -> tuple[int, ...]:
    return digits(version)


# ---------------------------------------------------------------------------------------------
# Archives
# ---------------------------------------------------------------------------------------------


@dataclass
class Archive:
    path: str
    name: str = ""
    version: str = ""
    build: str = ""
    subdir: str = ""
    depends: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # what it installs, relative to the prefix
    lib_dir: str | None = None  # extracted lib/ (holds libstdc++.so.6), for the prediction
    defines: frozenset[str] = frozenset()
    machine: str | None = None
    sha256: str = ""
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name}-{self.version}-{self.build}" if self.name else os.path.basename(self.path)


def inspect_archive(path: str, workdir: str) -> Archive:
    """Extract `path` into a directory under `workdir` and read what it is and, when it has one,
    what its lib/libstdc++.so.6 defines. Never raises for a bad archive: `error` says what is wrong."""
    import conda_package_handling.api as cph

    archive = Archive(path=os.path.abspath(path))
    if not os.path.isfile(path):
        archive.error = "no such file"
        return archive
    if not (path.endswith(".conda") or path.endswith(".tar.bz2")):
        archive.error = "not a conda package (.conda or .tar.bz2)"
        return archive
    archive.sha256 = file_sha256(path) or ""
    dest = tempfile.mkdtemp(prefix="pkg-", dir=workdir)
    try:
        cph.extract(path, dest_dir=dest)
    except Exception as exc:  # noqa: BLE001 - any unreadable archive is the same answer
        archive.error = f"cannot be extracted ({exc.__class__.__name__}: {str(exc)[:120]})"
        return archive
    try:
        with open(os.path.join(dest, "info", "index.json"), encoding="utf-8") as fh:
            index = json.load(fh)
        archive.name, archive.version, archive.build = index["name"], str(index["version"]), index["build"]
        archive.subdir = index.get("subdir", "")
        archive.depends = tuple(index.get("depends") or ())
    except (OSError, ValueError, KeyError) as exc:
        archive.error = f"no readable info/index.json ({exc})"
        return archive
    try:
        with open(os.path.join(dest, "info", "paths.json"), encoding="utf-8") as fh:
            archive.paths = tuple(p["_path"] for p in json.load(fh).get("paths", []))
    except (OSError, ValueError, KeyError):
        try:
            with open(os.path.join(dest, "info", "files"), encoding="utf-8") as fh:
                archive.paths = tuple(line.strip() for line in fh if line.strip())
        except OSError:
            archive.paths = ()
    lib = os.path.join(dest, "lib", SONAME)
    real = os.path.realpath(lib)
    if not os.path.exists(lib):
        return archive  # a companion (libstdcxx-ng metapackage, libgcc, ...): no library to read
    if not real.startswith(os.path.realpath(dest) + os.sep):
        archive.error = f"its lib/{SONAME} points outside the package"
        return archive
    info = read_elf(real)
    if not isinstance(info, ElfInfo):
        archive.error = f"its lib/{SONAME} is not a readable ELF file ({info})"
        return archive
    archive.lib_dir = os.path.dirname(lib)
    archive.defines = frozenset(info.version_defs)
    archive.machine = info.machine
    return archive


def pkgs_dirs(snap: "Snapshot", existing: bool = True) -> list[str]:
    """The conda package caches, in conda's order of preference (`existing=False`: also those a
    frontend would create when it downloads)."""
    env = snap.environ
    dirs = [d for d in env.get("CONDA_PKGS_DIRS", "").split(",") if d.strip()]
    roots: list[str | None] = [snap.conda.base_prefix if snap.conda else None, env.get("MAMBA_ROOT_PREFIX")]
    for var in ("CONDA_EXE", "MAMBA_EXE"):
        exe = env.get(var)
        if exe:
            roots.append(os.path.dirname(os.path.dirname(exe)))
    if snap.target is not None:
        parent = os.path.dirname(snap.target.prefix.rstrip("/"))
        if os.path.basename(parent) == "envs":
            roots.append(os.path.dirname(parent))
    dirs += [os.path.join(r, "pkgs") for r in roots if r]
    home = env.get("HOME") or os.path.expanduser("~")
    dirs += [os.path.join(home, ".conda", "pkgs")]
    out: list[str] = []
    for directory in dirs:
        directory = os.path.expanduser(directory.strip())
        if (os.path.isdir(directory) or not existing) and os.path.realpath(directory) not in {os.path.realpath(d) for d in out}:
            out.append(directory)
    return out


def archives_in(directories: Iterable[str]) -> list[str]:
    """Every package archive in the caches (any name), .conda before .tar.bz2."""
    out: list[str] = []
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        out += [os.path.join(directory, n) for n in names if _ARCHIVE_ANY.match(n)]
    return sorted(out, key=lambda p: not p.endswith(".conda"))


def cached_archives(directories: Iterable[str], min_version: tuple[int, ...]) -> list[str]:
    """libstdcxx-ng / libstdcxx archives in the caches, at least `min_version`, newest first."""
    found: list[tuple[tuple[int, ...], str]] = []
    for path in archives_in(directories):
        match = _ARCHIVE.match(os.path.basename(path))
        if match and version_tuple(match.group("version")) >= min_version:
            found.append((version_tuple(match.group("version")), path))
    found.sort(key=lambda item: (item[0], item[1].endswith(".conda")), reverse=True)
    return [path for _, path in found]


def find_frontend(environ: Mapping[str, str]) -> str | None:
    for var in ("MAMBA_EXE", "CONDA_EXE"):
        exe = environ.get(var)
        if exe and os.access(exe, os.X_OK):
            return exe
    for name in ("mamba", "micromamba", "conda"):
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found
    return None


# ---------------------------------------------------------------------------------------------
# The environment's conda-meta records
# ---------------------------------------------------------------------------------------------


def installed_records(prefix: str) -> dict[str, dict[str, Any]]:
    """conda-meta file name -> record (plain JSON: planning needs no rattler)."""
    meta = os.path.join(prefix, "conda-meta")
    out: dict[str, dict[str, Any]] = {}
    try:
        names = sorted(os.listdir(meta))
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(meta, name), encoding="utf-8") as fh:
                record = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and "name" in record:
            out[name] = record
    return out


def _spec_name(spec: str) -> str:
    return re.split(r"[\s=<>!~\[]", spec.strip(), maxsplit=1)[0]


def have_rattler() -> bool:
    import importlib.util

    return importlib.util.find_spec("rattler") is not None


def _matches(spec: str, name: str, version: str, build: str) -> bool:
    """Does the package (name, version, build) satisfy the dependency `spec`? (rattler's MatchSpec)"""
    if _spec_name(spec) != name:
        return False
    if not have_rattler():
        return True  # judged by name only; the install itself needs py-rattler and says so
    import rattler
    try:
        match_spec = rattler.MatchSpec(spec)
    except Exception:  # noqa: BLE001 - a spec rattler cannot read: judged by name, as conda's user would
        return True
    record = rattler.PackageRecord(name=name, version=version, build=rattler.BuildString(build or "0"),
                                   build_number=0, subdir="linux-64")
    return bool(record.matches(match_spec))


@dataclass
class Transaction:
    replaces: list[str] = field(default_factory=list)  # conda-meta file names
    missing: list[str] = field(default_factory=list)  # dependency specs nothing would satisfy
    problems: list[str] = field(default_factory=list)


def transaction(prefix: str, archives: list[Archive]) -> Transaction:
    """Which installed records the new packages replace (same name, or owning a path they
    install), and which dependencies would be left unsatisfied, theirs or the remaining
    packages' (conda would call the environment inconsistent)."""
    records = installed_records(prefix)
    new_paths = {p for a in archives for p in a.paths}
    new_names = {a.name for a in archives}
    tx = Transaction()
    for file_name, record in records.items():
        if record["name"] in new_names or new_paths & set(record.get("files") or ()):
            tx.replaces.append(file_name)
    remaining = [r for f, r in records.items() if f not in tx.replaces]
    available = [(r["name"], str(r["version"]), r.get("build", "")) for r in remaining]
    available += [(a.name, a.version, a.build) for a in archives]
    replaced_names = {records[f]["name"] for f in tx.replaces}
    for archive in archives:
        for dep in archive.depends:
            if dep.startswith("__"):
                continue  # virtual packages (__glibc, ...): the system, not the environment
            if not any(_matches(dep, *pkg) for pkg in available) and dep not in tx.missing:
                tx.missing.append(dep)
                tx.problems.append(f"{archive.label} needs {dep}, which would not be installed")
    for record in remaining:
        for dep in record.get("depends") or ():
            if _spec_name(dep) in replaced_names and not any(_matches(dep, *pkg) for pkg in available):
                if dep not in tx.missing:
                    tx.missing.append(dep)
                tx.problems.append(f"{record['name']} depends on {dep}, which the replacement would remove")
    return tx


def complete_set(prefix: str, main: Archive, pool: Iterable[str], workdir: str) -> tuple[list[Archive], Transaction]:
    """`main` plus, from `pool`, the archives its transaction needs (a dependency such as libgcc,
    or the libstdcxx-ng metapackage other packages depend on), a few rounds deep."""
    chosen = [main]
    pool = [p for p in pool if os.path.abspath(p) != main.path]
    tx = transaction(prefix, chosen)
    for _ in range(6):
        if not tx.missing:
            break
        added = False
        for spec in list(tx.missing):
            name = _spec_name(spec)
            for path in pool:
                match = _ARCHIVE_ANY.match(os.path.basename(path))
                if not match or match.group("name") != name or any(a.path == os.path.abspath(path) for a in chosen):
                    continue
                if not _matches(spec, name, match.group("version"), match.group("build")):
                    continue
                candidate = inspect_archive(path, workdir)
                if candidate.error is None:
                    chosen.append(candidate)
                    added = True
                    break
        if not added:
            break
        tx = transaction(prefix, chosen)
    return chosen, tx


# ---------------------------------------------------------------------------------------------
# Planning
# ---------------------------------------------------------------------------------------------


def _libstdcxx_findings(findings: list["Finding"]) -> list["Finding"]:
    return [f for f in needs(findings, SymbolVersionNeed, {ID}) if f.status == Status.ERROR]


@dataclass(frozen=True)
class _Need:
    """What the binaries need from libstdc++ and the conda package that provides it."""

    prefix: str
    needed: frozenset[str]  # every GLIBCXX / CXXABI version the closure asks for
    missing: tuple[str, ...]  # those the file found first lacks
    gcc: str
    spec: str  # e.g. libstdcxx-ng>=12


def plan(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext | None = None) -> FixPlan | None:
    ctx = ctx or PlanContext()
    need = _need(snap, findings, ctx)
    if need is None:
        return None
    workdir = ctx.workdir or tempfile.mkdtemp(prefix="tritondoctor-")
    ctx.workdir = workdir
    chosen, pool = _choose_archive(snap, ctx, need, workdir)
    if chosen is None:
        return _frontend_plan(snap, ctx, need.prefix, need.spec, need.gcc, set(need.needed))
    return _offline_plan(snap, findings, ctx, need, chosen, pool, workdir)


def _need(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext) -> _Need | None:
    """The requirement, or None when this fix has nothing to do here (said in ctx.notes)."""
    target = snap.target
    misses = _libstdcxx_findings(findings)
    if target is None or not misses:
        if ctx.packages and target is not None:
            ctx.notes.append(f"{ID}: --package given, but no GLIBCXX / CXXABI version is missing; nothing to install")
        return None
    prefix = target.prefix
    needed = frozenset(_pathorder.required_libstdcxx_versions(snap))
    missing = tuple(sorted({v for f in misses if isinstance(f.need, SymbolVersionNeed) for v in f.need.missing}))
    gcc = minimum_gcc(list(missing))
    if gcc is None:
        ctx.notes.append(f"{ID}: {', '.join(missing)} is newer than any GCC release tritondoctor knows")
        return None
    names = [r["name"] for r in installed_records(prefix).values() if r["name"] in NAMES]
    package_name = "libstdcxx" if names == ["libstdcxx"] else "libstdcxx-ng"
    spec = f"{package_name}>={conda_spec(gcc)}"
    if target.env_kind != "conda":
        if not ctx.packages:
            return None  # a venv: path order (venv-hooks) or the OS; nothing to install into
        raise PlanError(f"--package: {prefix} is not a conda environment (no conda-meta); nothing to install into")
    own = os.path.join(prefix, "lib", SONAME)
    if not ctx.packages and os.path.exists(own):
        defined = _pathorder.libstdcxx_defines(own)
        if defined is not None and needed <= defined:
            return None  # the environment's own is new enough: path order (conda-hooks) fixes it
    if not have_rattler():
        ctx.notes.append(f"{ID}: needs {spec}; installing it needs py-rattler (pip install py-rattler), "
                         f'or run: conda install -p {prefix} -c conda-forge "{spec}"')
        return None
    return _Need(prefix, needed, missing, gcc, spec)


def _why_not(archive: Archive, need: _Need, machine: str | None) -> str | None:
    """Why this archive cannot provide the libstdc++ needed (None: it can)."""
    if archive.error:
        return archive.error
    if archive.lib_dir is None:
        return f"has no lib/{SONAME}"
    if archive.name not in NAMES:
        return f"is {archive.name}, not {' or '.join(NAMES)}"
    if machine and archive.machine != machine:
        return f"is built for {archive.machine}, this machine needs {machine}"
    lacking = sorted(need.needed - archive.defines)
    if lacking:
        return f"its {SONAME} lacks {', '.join(lacking)} (needs GCC >= {need.gcc}: {need.spec})"
    return None


def _choose_archive(snap: "Snapshot", ctx: PlanContext, need: _Need,
                    workdir: str) -> tuple[Archive | None, list[str]]:
    """The archive to install (from --package, else the package caches) and the pool the rest of
    its transaction is completed from. A bad --package is a PlanError: nothing is changed."""
    machine = _machine(snap)
    if not ctx.packages:
        dirs = pkgs_dirs(snap)
        for path in cached_archives(dirs, version_tuple(need.gcc)):
            archive = inspect_archive(path, workdir)
            if _why_not(archive, need, machine) is None:
                return archive, archives_in(dirs)
        return None, archives_in(dirs)
    given = [inspect_archive(path, workdir) for path in ctx.packages]
    for archive in given:
        if archive.error:
            raise PlanError(f"--package {archive.path}: {archive.label}: {archive.error}; nothing was changed")
    carriers = [a for a in given if a.lib_dir is not None]
    if not carriers:
        raise PlanError(f"--package: no archive given contains lib/{SONAME} ({need.spec} needed); nothing was changed")
    for archive in carriers:
        why = _why_not(archive, need, machine)
        if why is not None:
            raise PlanError(f"--package {archive.path}: {archive.label}: {why}; rejected, nothing was changed")
    return max(carriers, key=lambda a: version_tuple(a.version)), list(ctx.packages)


def _offline_plan(snap: "Snapshot", findings: list["Finding"], ctx: PlanContext, need: _Need, chosen: Archive,
                  pool: list[str], workdir: str) -> FixPlan:
    prefix = need.prefix
    archives, tx = complete_set(prefix, chosen, pool, workdir)
    if ctx.packages:
        unused = [p for p in ctx.packages if os.path.abspath(p) not in {a.path for a in archives}]
        if unused:
            ctx.notes.append(f"{ID}: not needed, not installed: {', '.join(unused)}")
    overlays = {os.path.join(prefix, "lib"): chosen.lib_dir or ""}
    prediction, clears, notes = _offline_prediction(snap, findings, need, chosen, overlays)
    notes += [f"{a.path}: {a.label}, needed by the transaction" for a in archives[1:]]
    if tx.problems:
        prediction = Prediction(False, prediction.method, prediction.statuses, {}, reason="; ".join(tx.problems),
                                details=prediction.details)
    replaced = ", ".join(r[:-5] for r in tx.replaces) or "nothing"
    return FixPlan(
        id=ID,
        title=f"install {' + '.join(a.label for a in archives)} into {prefix} (replaces {replaced}) with py-rattler, offline",
        prefix=prefix,
        clears=clears,
        prediction=prediction,
        install=PackageInstall(method="rattler", spec=need.spec, archives=tuple(a.path for a in archives),
                               sha256=tuple(a.sha256 for a in archives), name=chosen.name, version=chosen.version,
                               build=chosen.build, replaces=tuple(tx.replaces), defines=tuple(sorted(need.needed)),
                               pkgs_dirs=tuple(pkgs_dirs(snap))),
        notes=tuple(notes),
        overlays=overlays,
    )


def _offline_prediction(snap: "Snapshot", findings: list["Finding"], need: _Need, chosen: Archive,
                        overlays: dict[str, str]) -> tuple[Prediction, tuple[str, ...], list[str]]:
    """The snapshot derived with the archive's lib/ searched where $PREFIX/lib is."""
    env = dict(snap.environ)
    value = with_overlays(env.get("LD_LIBRARY_PATH"), overlays)
    if value is not None:
        env["LD_LIBRARY_PATH"] = value
    method = (f"read .gnu.version_d of the archive's {SONAME}: it defines {', '.join(need.missing)} and the other "
              f"{len(need.needed - set(need.missing))} versions the binaries need; then derived the snapshot with the "
              f"archive's lib/ searched where {need.prefix}/lib is")
    prediction, _, _ = predict(snap, env, ["glibcxx"], method, before=findings)
    prediction = Prediction(prediction.proven, prediction.method, prediction.statuses, {}, prediction.reason,
                            prediction.details)
    clears: tuple[str, ...] = ("glibcxx",)
    notes = [f"{chosen.path}: {chosen.label}, its {SONAME} defines every needed version"]
    if prediction.statuses.get("glibcxx") != Status.OK.value:
        # The archive is good but its directory is not where the binaries search: the conda-hooks
        # plan (made next, with this install's files as an overlay) proves the combination.
        prediction = Prediction(True, method + "; the install alone does not put it on the search path",
                                prediction.statuses, {}, details=prediction.details)
        clears = ()
        notes.append(f"{need.prefix}/lib is not on the loader's search path for PyTriton: see the conda-hooks plan")
    return prediction, clears, notes


def _machine(snap: "Snapshot") -> str | None:
    for tree in snap.resolutions.values():
        for lib in tree.libraries:
            if lib.info is not None:
                return lib.info.machine
    return None


def _frontend_plan(snap: "Snapshot", ctx: PlanContext, prefix: str, spec: str, gcc: str,
                   needed: set[str]) -> FixPlan | None:
    frontend = find_frontend(snap.environ)
    if frontend is None:
        caches = ", ".join(pkgs_dirs(snap)) or "none found"
        ctx.notes.append(
            f"{ID}: needs {spec} (GCC >= {gcc}), but no such archive is in the conda package caches ({caches}) "
            f"and no conda, mamba or micromamba was found: download a {spec.split('>=')[0]} package for linux-64 "
            f"(e.g. from https://conda.anaconda.org/conda-forge) and run `tritondoctor fix --package FILE`")
        return None
    download = (frontend, "install", "--download-only", "--yes", "--prefix", prefix, "-c", "conda-forge", spec)
    return FixPlan(
        id=ID,
        title=f"download {spec} with {os.path.basename(frontend)}, check it, install it into {prefix}",
        prefix=prefix,
        clears=("glibcxx",),
        prediction=Prediction(False, "checked after download, before install", {"glibcxx": "unknown"},
                              reason="the package is not on this machine yet", deferred=True,
                              details=(f"the downloaded {SONAME} must define {', '.join(sorted(needed))}; "
                                       "nothing is installed otherwise",)),
        commands=(Command(download, "download only: the environment is not changed"),),
        install=PackageInstall(method="frontend", spec=spec, frontend=frontend, defines=tuple(sorted(needed)),
                               pkgs_dirs=tuple(pkgs_dirs(snap, existing=False))),
        notes=("then installed offline with py-rattler from the package cache, like an archive given with --package",),
    )


# ---------------------------------------------------------------------------------------------
# Applying
# ---------------------------------------------------------------------------------------------


def _stream(argv: Iterable[str]) -> int:
    """Run a command with its output passed through line by line (progress stays visible)."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stderr.write("    " + line)
        sys.stderr.flush()
    return proc.wait()


def apply(plan: FixPlan, journal: "Journal") -> None:
    install = plan.install
    if install is None:
        return
    workdir = tempfile.mkdtemp(prefix="apply-", dir=journal.dir)
    try:
        if install.method == "frontend":
            archives = _download(plan, install, workdir)
        else:
            for path, digest in zip(install.archives, install.sha256):
                if file_sha256(path) != digest:
                    raise ApplyError(f"{path} changed since it was checked; nothing was installed")
            archives = [inspect_archive(p, workdir) for p in install.archives]
        _install(plan.prefix, archives, install, journal, workdir, allow_problems=install.method == "rattler")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _download(plan: FixPlan, install: PackageInstall, workdir: str) -> list[Archive]:
    """Let the frontend solve and download (only), then check what it downloaded."""
    assert install.frontend is not None
    for command in plan.commands:
        sys.stderr.write(f"  $ {' '.join(command.argv)}\n")
        code = _stream(command.argv)
        if code != 0:
            raise ApplyError(f"{os.path.basename(install.frontend)} could not download {install.spec} (exit {code}); "
                             "nothing was installed")
    dirs = list(install.pkgs_dirs)
    for path in cached_archives(dirs, version_tuple(_gcc_of(install.spec))):
        archive = inspect_archive(path, workdir)
        if archive.error is None and archive.lib_dir and set(install.defines) <= archive.defines:
            archives, tx = complete_set(plan.prefix, archive, archives_in(dirs), workdir)
            if tx.problems:
                raise ApplyError("; ".join(tx.problems) + "; nothing was installed")
            return archives
    raise ApplyError(f"no downloaded {install.spec} archive defines {', '.join(install.defines)} "
                     f"(looked in {', '.join(dirs)}); nothing was installed")


def _gcc_of(spec: str) -> str:
    return spec.split(">=", 1)[1] if ">=" in spec else "0"


def _install(prefix: str, inspected: list[Archive], install: PackageInstall, journal: "Journal", workdir: str,
             allow_problems: bool) -> None:
    import rattler

    prefix = os.path.realpath(prefix)
    meta = os.path.join(prefix, "conda-meta")
    for archive in inspected:
        if archive.error:
            raise ApplyError(f"{archive.path}: {archive.error}; nothing was installed")
    if not any(a.lib_dir and set(install.defines) <= a.defines for a in inspected):
        raise ApplyError(f"no archive defines {', '.join(install.defines)}; nothing was installed")
    records = installed_records(prefix)
    tx = transaction(prefix, inspected)
    if tx.problems and not allow_problems:
        raise ApplyError("; ".join(tx.problems) + "; nothing was installed")
    replaces = set(tx.replaces)
    # Everything the transaction may touch goes into the journal before it runs.
    tracked: set[str] = set()
    for file_name in replaces:
        tracked.add(os.path.join(meta, file_name))
        tracked.update(os.path.join(prefix, p) for p in records[file_name].get("files") or ())
    for archive in inspected:
        tracked.update(os.path.join(prefix, p) for p in archive.paths)
        tracked.add(os.path.join(meta, f"{archive.name}-{archive.version}-{archive.build}.json"))
    tracked.add(os.path.join(meta, "history"))
    tracked.add(os.path.join(prefix, "CACHEDIR.TAG"))  # py-rattler drops one into the prefix
    for path in sorted(tracked):
        journal.track(path)
    dirs_before = {d for p in tracked for d in _parents(p, prefix) if os.path.isdir(d)}
    meta_before = set(os.listdir(meta))
    top_before = set(os.listdir(prefix))
    tag_existed = os.path.lexists(os.path.join(prefix, "CACHEDIR.TAG"))

    async def run() -> None:
        installed = [rattler.PrefixRecord.from_path(Path(meta, f)) for f in records]
        new = [await rattler.RepoDataRecord.from_package_archive(a.path) for a in inspected]
        keep = {r["name"] for f, r in records.items() if f not in replaces} - {a.name for a in inspected}
        await rattler.install(new, target_prefix=prefix, cache_dir=Path(workdir, "cache"),
                              installed_packages=installed, ignored_packages=keep, execute_link_scripts=False,
                              show_progress=sys.stderr.isatty())

    try:
        asyncio.run(run())
    except Exception as exc:  # noqa: BLE001 - rolled back by the caller through the journal
        raise ApplyError(f"py-rattler could not install {', '.join(a.label for a in inspected)}: {exc}") from None
    if not tag_existed:
        try:
            os.unlink(os.path.join(prefix, "CACHEDIR.TAG"))  # would make backup tools skip the env
        except FileNotFoundError:
            pass
    for archive in inspected:
        _tidy_record(os.path.join(meta, f"{archive.name}-{archive.version}-{archive.build}.json"), archive, install,
                     workdir)
    _append_history(os.path.join(meta, "history"), [records[f] for f in sorted(replaces)], inspected, install.spec)
    unexpected = [os.path.join(meta, n) for n in sorted(set(os.listdir(meta)) - meta_before)]
    unexpected += [os.path.join(prefix, n) for n in sorted(set(os.listdir(prefix)) - top_before)]
    for path in unexpected:
        journal.note_created(path)  # not there before: undo removes it
    journal.note_created_dirs(sorted({d for p in tracked for d in _parents(p, prefix)
                                      if os.path.isdir(d) and d not in dirs_before}))
    journal.settle()
    lib = os.path.join(prefix, "lib", SONAME)
    defined = _pathorder.libstdcxx_defines(lib) if os.path.exists(lib) else None
    if defined is None or not set(install.defines) <= defined:
        raise ApplyError(f"after the install {lib} still does not define {', '.join(install.defines)}")


def _parents(path: str, prefix: str) -> list[str]:
    out = []
    parent = os.path.dirname(path)
    while parent.startswith(prefix + os.sep):
        out.append(parent)
        parent = os.path.dirname(parent)
    return out


def _tidy_record(path: str, archive: Archive, install: PackageInstall, workdir: str) -> None:
    """The PrefixRecord py-rattler wrote, pointed at the archive rather than at our temporary
    extraction directory (which is gone after the install), with its channel named as conda
    names the channel of a local file."""
    from tritondoctor.journal import atomic_write

    with open(path, encoding="utf-8") as fh:
        record = json.load(fh)
    tmp = os.path.realpath(workdir)
    if str(record.get("extracted_package_dir", "")).startswith(tmp):
        record.pop("extracted_package_dir", None)
    link = record.get("link")
    if isinstance(link, dict) and str(link.get("source", "")).startswith(tmp):
        record.pop("link", None)
    record["package_tarball_full_path"] = archive.path
    if not record.get("channel"):
        url = record.get("url") or ""
        record["channel"] = url.rsplit("/", 1)[0] if "/" in url else "<unknown>"
    # (py-rattler 0.28's `install(requested_specs=...)` hands its MatchSpec wrappers to the Rust
    # side unwrapped and fails, so the spec conda records is written here.)
    if not record.get("requested_spec"):
        record["requested_spec"] = install.spec
    if not record.get("requested_specs"):
        record["requested_specs"] = [install.spec]
    atomic_write(path, (json.dumps(record, indent=2) + "\n").encode(), 0o644)


def _append_history(path: str, removed: list[dict[str, Any]], added: list[Archive], spec: str) -> None:
    """A conda-meta/history entry in conda's own format, so `conda list --revisions` shows it."""
    from tritondoctor import __version__
    from tritondoctor.journal import atomic_write

    try:
        with open(path, "rb") as fh:
            old = fh.read()
    except FileNotFoundError:
        old = b""
    lines = [f"==> {datetime.now().strftime('%Y-%m-%d %H:%M:%S')} <=="]
    lines.append(f"# cmd: tritondoctor fix  (install {spec} offline)")
    lines.append(f"# conda version: none (tritondoctor {__version__}, py-rattler)")
    for record in removed:
        channel = str(record.get("channel") or "").rstrip("/")
        lines.append(f"-{channel + '::' if channel else ''}{record['name']}-{record['version']}-{record.get('build', '')}")
    for archive in added:
        lines.append(f"+{archive.name}-{archive.version}-{archive.build}")
    lines.append(f"# update specs: {json.dumps([spec])}")
    text = "\n".join(lines) + "\n"
    sep = b"" if not old or old.endswith(b"\n") else b"\n"
    atomic_write(path, old + sep + text.encode(), 0o644)


def _stale(plan: FixPlan) -> str | None:
    """Files unchanged, and the conda records the install replaces still there (another run may
    have installed meanwhile)."""
    reason = files_unchanged(plan)
    if reason is not None or plan.install is None:
        return reason
    meta = os.path.join(plan.prefix, "conda-meta")
    gone = [r for r in plan.install.replaces if not os.path.exists(os.path.join(meta, r))]
    return f"{', '.join(gone)} left conda-meta since the plan was made" if gone else None


FIX = FixSpec(ID, plan, apply, stale=_stale,
              summary="install a libstdc++ new enough for the binaries into the conda env")
