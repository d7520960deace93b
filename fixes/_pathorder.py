"""Which directories must come first on LD_LIBRARY_PATH, and the proof that they are enough.

Shared by the `conda-hooks` and `venv-hooks` fixes and by `tritondoctor env` (not a fix: the
leading underscore keeps it out of the registry).

The directories come from the findings: the interpreter's own libpython directory (`libpython`
evidence `libdir`) and, for `glibcxx`, the directory of a libstdc++.so.6 that defines every
GLIBCXX / CXXABI version the PyTriton closure asks for (the environment's own lib, the conda env
a venv was made from, the system's). They are added one by one, each time deriving the snapshot
under the environment the hook would produce and re-running the loader checks; the result is the
smallest list (in that order) whose prediction is proven, or the reason none is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from tritondoctor import hooks, remedies
from tritondoctor.elf import ElfInfo, read_elf
from tritondoctor.findings import (
    Finding,
    LoaderPathNeed,
    Status,
    SymbolVersionNeed,
    needs,
)
from tritondoctor.gcc_abi import is_libstdcxx_version
from tritondoctor.loader import LoaderEnv, search_library
from tritondoctor.plan import (
    FileChange,
    Prediction,
    predict,
    prepend_dirs,
    unproven,
    with_overlays,
)

if TYPE_CHECKING:
    from tritondoctor.snapshot import Snapshot

HOOK_FIX_IDS = frozenset(remedies.HOOK_FIX_IDS.values()) | {remedies.NO_HOOKS_FIX_ID}
LIBSTDCXX = "libstdc++.so.6"


@dataclass
class PathNeed:
    dirs: list[str] = field(default_factory=list)
    clears: list[str] = field(default_factory=list)  # finding ids the directories are for
    why: dict[str, str] = field(default_factory=dict)  # dir -> reason, for display
    prediction: Prediction | None = None
    base_environ: Mapping[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def without_own_hook(environ: Mapping[str, str], prefix: str, hook_dirs: list[str] | None) -> dict[str, str]:
    """`environ` as it would be without this environment's tritondoctor hook applied: the base a
    hook is planned against, so that planning again after a fix (in an activated shell or not)
    yields the same hook."""
    env = dict(environ)
    var = hooks.state_var(prefix)
    saved = env.pop(var, None)
    if saved is None or not hook_dirs:
        return env
    value = hooks.deactivated_value(env.get("LD_LIBRARY_PATH"), hook_dirs, saved)
    if value is None:
        env.pop("LD_LIBRARY_PATH", None)
    else:
        env["LD_LIBRARY_PATH"] = value
    return env


def required_libstdcxx_versions(snap: "Snapshot") -> set[str]:
    """Every GLIBCXX / CXXABI version any object of the PyTriton closures asks libstdc++.so.6 for."""
    needed: set[str] = set()
    for tree in snap.resolutions.values():
        for lib in tree.libraries:
            if lib.info is None:
                continue
            for need in lib.info.version_needs:
                if need.file == LIBSTDCXX:
                    needed.update(v.name for v in need.versions if not v.weak and is_libstdcxx_version(v.name))
    return needed


def libstdcxx_defines(path: str) -> set[str] | None:
    info = read_elf(path)
    if not isinstance(info, ElfInfo):
        return None
    return set(info.version_defs)


def good_libstdcxx_dirs(snap: "Snapshot", needed: set[str], overlays: Mapping[str, str]) -> list[tuple[str, str]]:
    """(directory, how it was chosen) of libstdc++.so.6 files defining every `needed` version:
    the target environment's lib, the conda env a venv was made from, the system's default."""
    candidates: list[tuple[str, str]] = []
    target = snap.target
    if target is not None:
        candidates.append((os.path.join(target.prefix, "lib"), "this environment's own lib"))
        if target.in_venv and os.path.isdir(os.path.join(target.base_prefix, "conda-meta")):
            candidates.append((os.path.join(target.base_prefix, "lib"), "the conda env this venv was made from"))
    system = search_library(LIBSTDCXX, LoaderEnv.from_system(environ={}, cwd=snap.cwd))
    if system.path:
        candidates.append((os.path.dirname(system.path), f"the system's ({system.how})"))
    real_overlays = {os.path.realpath(k): v for k, v in overlays.items()}
    good: list[tuple[str, str]] = []
    seen: set[str] = set()
    for directory, how in candidates:
        real = os.path.realpath(directory)
        if real in seen:
            continue
        seen.add(real)
        lookup = real_overlays.get(real, directory)
        path = os.path.join(lookup, LIBSTDCXX)
        if not os.path.exists(path):
            continue
        defined = libstdcxx_defines(path)
        if defined is not None and needed <= defined:
            good.append((directory, how + (" after the planned install" if real in real_overlays else "")))
    return good


def _fixable_libpython(findings: list[Finding]) -> Finding | None:
    found = needs(findings, LoaderPathNeed, HOOK_FIX_IDS)
    return found[0] if found else None


def _libstdcxx_misses(findings: list[Finding]) -> list[Finding]:
    return [f for f in needs(findings, SymbolVersionNeed, {"libstdcxx"}) if f.status == Status.ERROR]


def plan_dirs(
    snap: "Snapshot",
    findings: list[Finding],
    base_environ: Mapping[str, str],
    overlays: Mapping[str, str] | None = None,
) -> PathNeed:
    """The directories to put first (in order) and the prediction for them."""
    overlays = overlays or {}
    need = PathNeed(base_environ=dict(base_environ))
    libpython = _fixable_libpython(findings)
    misses = _libstdcxx_misses(findings)
    if libpython is not None:
        need.clears.append("libpython")
        assert isinstance(libpython.need, LoaderPathNeed)
        libdir = libpython.need.libdir
        need.dirs.append(libdir)
        need.why[libdir] = f"this interpreter's own {libpython.need.needed or 'libpython'}"
    needed_versions = required_libstdcxx_versions(snap) if misses else set()
    if misses:
        need.clears.append("glibcxx")
    if not need.clears:
        return need

    def env_for(dirs: list[str]) -> dict[str, str]:
        env = dict(base_environ)
        value = with_overlays(env.get("LD_LIBRARY_PATH"), overlays)
        if dirs:
            value = prepend_dirs(value, dirs)
        if value is None:
            env.pop("LD_LIBRARY_PATH", None)
        else:
            env["LD_LIBRARY_PATH"] = value
        return env

    method = "derived the snapshot with the hook's directories first on LD_LIBRARY_PATH and ran the loader checks again"
    prediction, derived, after = predict(snap, env_for(need.dirs), need.clears, method, before=findings)
    if misses and prediction.statuses.get("glibcxx") == Status.OK.value and overlays:
        need.clears.remove("glibcxx")  # the planned install clears it where it is, not the hook
        if not need.clears:
            need.dirs = []
            return need
    elif misses and prediction.statuses.get("glibcxx") != Status.OK.value:
        good = good_libstdcxx_dirs(snap, needed_versions, overlays)
        for directory, how in good:
            trial = need.dirs + [directory]
            attempt, derived2, after2 = predict(snap, env_for(trial), need.clears, method, before=findings)
            if attempt.statuses.get("glibcxx") == Status.OK.value:
                need.dirs = trial
                need.why[directory] = f"a libstdc++.so.6 that defines {', '.join(sorted(needed_versions))} ({how})"
                prediction = attempt
                break
        else:
            if not good:
                need.problems.append(
                    "no libstdc++.so.6 on this machine defines " + ", ".join(sorted(needed_versions))
                    + ": path order cannot fix this; a newer libstdc++ must be installed (conda: libstdcxx-ng)")
            # Path order cannot clear glibcxx: keep only what it can clear.
            need.clears.remove("glibcxx")
            if not need.clears:
                need.dirs = []
                need.prediction = unproven("no directory order clears the glibcxx finding", method, ["glibcxx"])
                return need
            prediction, derived, after = predict(snap, env_for(need.dirs), need.clears, method, before=findings)
    for directory in need.dirs:
        try:
            hooks.check_dirs([directory])
        except hooks.HookError as exc:
            need.prediction = unproven(str(exc), method, need.clears)
            return need
    # Only the variables the hook changes are shown: the hook's own result, not overlays.
    shown = env_for(need.dirs) if not overlays else dict(base_environ, LD_LIBRARY_PATH=prepend_dirs(base_environ.get("LD_LIBRARY_PATH"), need.dirs))
    need.prediction = Prediction(prediction.proven, prediction.method, prediction.statuses,
                                 {"LD_LIBRARY_PATH": shown.get("LD_LIBRARY_PATH")}, prediction.reason, prediction.details)
    return need


def planning_base(
    snap: "Snapshot", findings: list[Finding], prefix: str, existing_dirs: list[str] | None
) -> tuple["Snapshot", list[Finding], dict[str, str]]:
    """The snapshot and loader findings to plan a hook against: the current environment less the
    effect of this environment's own tritondoctor hook, if it is active in this shell."""
    from tritondoctor.registry import loader_check_ids, run_checks

    base_env = without_own_hook(snap.environ, prefix, existing_dirs)
    if base_env == dict(snap.environ):
        return snap, findings, base_env
    base = snap.derive(base_env)
    return base, run_checks(base, only=set(loader_check_ids())), base_env


def hook_change(path: str, content: str, description: str, block: str = "") -> FileChange | None:
    """A FileChange writing `content` to `path`, or None when it already holds exactly that."""
    from tritondoctor.plan import CREATE, REPLACE, FileChange, file_sha256, sha256_bytes

    before = file_sha256(path) if os.path.isfile(path) else None
    if before is not None and before == sha256_bytes(content.encode()):
        return None
    if os.path.lexists(path) and not os.path.isfile(path):
        raise hooks.HookError(f"{path}: exists and is not a regular file")
    return FileChange(path=path, kind=REPLACE if before else CREATE, content=content, before_sha256=before,
                      block=block or content, description=description)


def is_foreign(path: str) -> bool:
    """A regular file at one of our hook paths that tritondoctor did not write (no marker)."""
    if not os.path.isfile(path):
        return False
    with open(path, encoding="utf-8", errors="replace") as fh:
        return not hooks.is_ours(fh.read())


def foreign_note(path: str, force: bool) -> str:
    if force:
        return (f"{hooks.FOREIGN_NOTE}: {path} is replaced because of --force "
                "(backed up first; `tritondoctor fix --undo` puts it back)")
    return f"{hooks.FOREIGN_NOTE}: {path} is kept; nothing of this fix is applied (--force replaces it, backed up)"


@dataclass
class Guarded:
    changes: list[FileChange]
    notes: list[str]
    foreign: list[str]  # paths of the user's own files (kept unless force)


def guard_foreign(changes: list[FileChange], force: bool) -> Guarded:
    """Keep the user's own files at our hook paths: their changes are dropped (with a note) unless
    `force`, in which case they stay, marked, and the journal backs the file up as any other.
    Marked blocks inside a file (a venv's activate scripts) are not whole files of ours."""
    from dataclasses import replace

    from tritondoctor.plan import APPEND_BLOCK

    out = Guarded([], [], [])
    for change in changes:
        if change.kind == APPEND_BLOCK or not is_foreign(change.path):
            out.changes.append(change)
            continue
        out.foreign.append(change.path)
        out.notes.append(foreign_note(change.path, force))
        if force:
            out.changes.append(replace(change, description=f"REPLACES {hooks.FOREIGN_NOTE}; {change.description}"))
    return out


def not_applicable(prediction: Prediction, foreign: list[str]) -> Prediction:
    """The prediction of a plan that keeps the user's own files at our paths: not applied."""
    from dataclasses import replace

    reason = f"{', '.join(foreign)}: {hooks.FOREIGN_NOTE} (kept; --force replaces it, backed up)"
    if prediction.reason:
        reason = f"{reason}; {prediction.reason}"
    return replace(prediction, proven=False, deferred=False, reason=reason)
