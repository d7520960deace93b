"""Does a numpy >= 2 reach the python-backend stub from outside the environment? (row 30)

The 0.7.0 stub is built with pybind11 2.10 against numpy 1.x; a numpy 2 that the stub imports
garbles tensors ("unpack_from requires a buffer of at least ...", "cannot reshape array of size
0"). It arrives most often from outside the env: the user site (~/.local), PYTHONPATH, or a .pth
file, all of which the stub inherits. A numpy 2 in the env's own site-packages is python-deps'.
"""

from __future__ import annotations

from tritondoctor import versions
from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "stub-numpy"
AREA = "Python packages"
ORDER = 52

_FIX = {
    "PYTHONPATH": ("unset PYTHONPATH  # or drop the directory holding numpy 2 from it",),
    "user site": ("export PYTHONNOUSERSITE=1  # where PyTriton runs",),
}


def run(snap: Snapshot) -> list[Finding]:
    files, target = snap.pkgfiles, snap.target
    if files is None or target is None or snap.pytriton is None:
        return [Finding(ID, Status.SKIP, "no PyTriton environment to inspect")]
    reach = files.numpy
    if reach is None:
        return [Finding(ID, Status.SKIP, "numpy is not importable from this environment (see python-deps)")]
    evidence = {"directory": reach.directory, "version": reach.version, "route": reach.route, "via": reach.via}
    where = f"{reach.directory} ({reach.route}{': ' + reach.via if reach.via else ''})"
    major = versions.release(reach.version)[:1]
    if not major or major[0] < 2:
        return [Finding(ID, Status.OK, f"the stub imports numpy {reach.version or '?'} from {where}", evidence=evidence)]
    if reach.route == "site-packages":
        return [Finding(ID, Status.OK, f"numpy {reach.version} is the environment's own (python-deps judges it)",
                        evidence=evidence)]
    commands = _FIX.get(reach.route, (f"# remove {reach.via or reach.directory} from the path the stub inherits",))
    return [Finding(
        ID, Status.ERROR, f"numpy {reach.version} reaches the python-backend stub from {where}",
        detail=f"nvidia-pytriton {snap.pytriton.version}'s stub was built against numpy 1.x; a numpy 2 imported by it "
               "garbles tensors ('unpack_from requires a buffer of at least ...', 'cannot reshape array of size 0'). "
               "The stub inherits PYTHONPATH, the user site and .pth files from the server's environment.",
        evidence=evidence,
        fix=FixHint("stub-numpy-path", "let the stub see the environment's numpy<2 only",
                    commands + (f"{target.executable} -m pip install 'numpy<2'  # in the environment itself",)))]


SIGNATURES = (
    sig(r"unpack_from requires a buffer of at least \d+ bytes", 30,
        cause="numpy >= 2 reached the 0.7.0 stub (built against numpy 1.x), via ~/.local, PYTHONPATH or a .pth file"),
    sig(r"cannot reshape array of size 0 into shape", 30,
        cause="numpy >= 2 reached the 0.7.0 stub (built against numpy 1.x), via ~/.local, PYTHONPATH or a .pth file"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(30,),
                  summary="which numpy the stub imports and the path it arrives by (user site, PYTHONPATH, .pth)")
