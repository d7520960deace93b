"""Does the stub load the interpreter's own libpython? (catalog rows 1, 2, 3, 22, 23)

The python-backend stub links libpythonX.Y.so.1.0 dynamically; the wheel does not bundle it
(except the 3.13 stub, which uses a CPython 3.13.0 grafted into nvidia_pytriton.libs). When the
loader finds no libpython, the stub cannot start; when it finds *another build* of the same
minor version (e.g. the distribution's 3.11.2 for a pyenv 3.11.7), the stub runs that build's
C code against the interpreter's 3.11.7 standard library and models fail in odd ways, such as
"'_thread.RLock' object has no attribute '_recursion_count'".
"""

from __future__ import annotations

import os
import re
from typing import Any, Sequence

from tritondoctor.checks._envpath import loader_path_fix
from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import loader_path_fix as interp_loader_fix
from tritondoctor.checks._logs import log_evidence, same_file, short
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.findings import Finding, FixHint, LoaderPathNeed, Status
from tritondoctor.observation import Observation
from tritondoctor.paths import canonical
from tritondoctor.snapshot import STUB, Snapshot

ID = "libpython"
AREA = "Shared libraries"
ORDER = 20

_GRAFTED = re.compile(r"^libpython\d+-[0-9a-f]{8}\.")


def run(snap: Snapshot) -> list[Finding]:
    target, facts = snap.target, snap.libpython
    if target is None or snap.pytriton is None or STUB not in snap.resolutions or facts is None:
        return [Finding(ID, Status.SKIP, "no python-backend stub to inspect for this interpreter")]
    stub = snap.resolutions[STUB].file
    evidence = {"stub": stub, **facts.to_json(), "python": target.executable, "python_version": target.version_string,
                "chain": _chain(facts)}
    if facts.needed is None:
        return [Finding(ID, Status.OK, "the stub does not link libpython dynamically", evidence=evidence)]
    resolved = canonical(facts.resolved.path) if facts.resolved and facts.resolved.path else None
    bundled = bool(_GRAFTED.match(facts.needed))

    if not target.enable_shared:
        found = f"the loader finds {resolved} ({facts.resolved_version or 'unknown version'})" if resolved else "none is found"
        return [Finding(
            ID, Status.ERROR,
            f"Python {target.version_string} at {target.executable} was built without a shared libpython; "
            f"the stub needs {facts.needed} and {found}",
            detail="Rebuild or choose an interpreter with a shared libpython (conda, uv and python.org builds "
                   "have one; pyenv needs --enable-shared).",
            evidence=evidence,
            fix=FixHint("rebuild-python", "use an interpreter built with --enable-shared",
                        (f"env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install --force {target.version_string}",
                         "# or create the environment with conda / uv, whose Pythons ship libpython")),
        )]

    own_dir = facts.own_dir
    libdir_note = ""
    if target.libdir and not facts.libdir_exists:
        libdir_note = (f" Note: sysconfig says LIBDIR={target.libdir}, which does not exist (old uv Pythons did "
                       f"this); the real directory is {own_dir or 'unknown'}.")
        evidence["sysconfig_libdir"] = target.libdir
    if resolved is None:
        if own_dir is None:
            return [Finding(ID, Status.ERROR, f"the stub cannot find {facts.needed}, and this interpreter's own copy was not found either",
                            detail="Install a Python with a shared libpython for this environment." + libdir_note,
                            evidence=evidence, fix=None)]
        return [Finding(
            ID, Status.ERROR,
            f"the stub cannot find {facts.needed}: {own_dir} is not on the loader's search path",
            detail=f"PyTriton's stub for Python {target.minor} links {facts.needed}; this interpreter keeps it in "
                   f"{own_dir}, which neither LD_LIBRARY_PATH nor the loader cache names." + libdir_note,
            evidence=evidence,
            fix=loader_path_fix(snap, [own_dir], f"put {own_dir} first on LD_LIBRARY_PATH when this environment is active"),
            need=LoaderPathNeed(own_dir, facts.needed),
        )]

    if facts.same_file:
        return [Finding(ID, Status.OK, f"the stub loads this interpreter's own {facts.needed} ({facts.resolved.how if facts.resolved else ''})",
                        evidence=evidence)]

    theirs = facts.resolved_version or "unknown version"
    ours = target.version_string
    if bundled:
        if theirs == ours:
            return [Finding(ID, Status.OK, f"the stub loads PyTriton's bundled CPython {theirs}, the same version as this interpreter",
                            evidence=evidence)]
        return [Finding(
            ID, Status.ERROR,
            f"the stub loads PyTriton's bundled CPython {theirs} ({resolved}) but this interpreter is {ours}",
            detail="The Python 3.13 stub of this wheel carries its own libpython; any other 3.13.x interpreter makes a "
                   "mixed build (C code of one release, standard library of another). Path order cannot change a grafted name.",
            evidence=evidence,
            fix=FixHint("python-version", f"use Python {theirs} exactly, or Python 3.12 or older",
                        (f"# e.g. uv venv --python {theirs}  or  pyenv install {theirs}",)),
        )]
    status = Status.ERROR if theirs != ours else Status.WARN
    same_version_note = "" if theirs != ours else " (same version number, but another build)"
    return [Finding(
        ID, status,
        f"the stub loads {resolved} (Python {theirs}) instead of this interpreter's {canonical(facts.own_path) if facts.own_path else '?'} (Python {ours}){same_version_note}",
        detail=f"It was found through {facts.resolved.how if facts.resolved else '?'}. A stub running one build's libpython with "
               f"another build's standard library fails at model load, e.g. \"'_thread.RLock' object has no attribute "
               f"'_recursion_count'\" or \"No module named '_ctypes'\"." + libdir_note,
        evidence=evidence,
        fix=loader_path_fix(snap, [own_dir] if own_dir else [], f"put {own_dir} first on LD_LIBRARY_PATH when this environment is active"),
        need=LoaderPathNeed(own_dir, facts.needed) if own_dir else None,
    )]


def _chain(facts) -> list[str]:  # type: ignore[no-untyped-def]
    lib = facts.resolved
    if lib is None:
        return []
    steps = [f"{lib.name} => {lib.path or 'not found'} ({lib.how})"]
    steps += [f"rejected {r.path}: {r.reason}" for r in lib.rejected]
    return steps


SIGNATURES = (
    sig(r"(libpython3\.\d+[a-z]*\.so(?:\.[\d.]+)?): cannot open shared object file", 1, 23, fast_fail=True,
        cause="the stub links libpythonX.Y.so.1.0 and the loader finds no copy on its path"),
    sig(r"'_thread\.RLock' object has no attribute '_recursion_count'", 2, fast_fail=True,
        cause="the stub loaded another build of libpython than the interpreter's standard library belongs to"),
    sig(r"No module named '_ctypes'", 3, fast_fail=True,
        cause="a mixed Python build: the stub's libpython and the standard library come from different installs"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    interp = obs.interpreter
    first = matches[0]
    wanted = interp.own_libpython
    loaded = {p: v for p, v in obs.stub_libpython.items() if not wanted or not same_file(p, wanted)}
    evidence: dict[str, Any] = log_evidence(matches, interpreter=interp.python, version=interp.version,
                                            libdir=interp.libdir, own_libpython=wanted)
    if obs.stub_libpython:
        evidence["stub_loaded"] = obs.stub_libpython
    missing = first.groups[0] if first.groups and first.groups[0].startswith("libpython") else None
    if missing:
        title = f"the Python backend stub cannot find {missing}"
        detail = (f"PyTriton's stub links against {missing}; the loader looks on LD_LIBRARY_PATH and in the system's "
                  f"cache, and this interpreter's copy in {interp.libdir or '(unknown)'} is in neither.")
    else:
        if loaded:
            path, version = next(iter(loaded.items()))
            path = canonical(path)
            title = (f"the Python backend stub loaded {path} ({version or 'unknown version'}) instead of this "
                     f"interpreter's libpython ({interp.version})")
        else:
            title = f"the Python backend stub runs with a libpython that does not match this interpreter ({interp.version})"
        detail = ("PyTriton's stub links against libpython; the loader gave it another Python's library, whose "
                  f"build does not fit this interpreter's standard library ({short(first.line, 160)}).")
    if not interp.enable_shared or not wanted:
        fix = FixHint("rebuild-python", "this interpreter has no shared libpython: use a Python built with --enable-shared",
                      ("# pyenv: env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install --force "
                       + (interp.version or "3.X.Y"),))
        return Finding(ID, Status.ERROR, title, detail, evidence, fix, SMOKE_AREA)
    directory = os.path.dirname(wanted)
    fix = interp_loader_fix(interp, directory,
                            f"put {directory} first on the loader path so the stub finds {os.path.basename(wanted)}")
    return Finding(ID, Status.ERROR, title, detail, evidence, fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, loader=True, signatures=SIGNATURES, from_log=from_log, rows=(1, 2, 3, 22, 23),
                  summary="what the stub's libpythonX.Y.so.1.0 resolves to vs the interpreter's own")
