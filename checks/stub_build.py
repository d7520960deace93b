"""Are the stub and the python backend the files the installed wheel shipped? (row 31)

Row 31: a stub or libtriton_python.so built from another python_backend branch than the server's
(0.7.0 bundles r24.10) leaves models LOADING or fails with "Triton backend API version does not
support this backend". Statically visible as a file that differs from the wheel's RECORD hash.
Row 39 (a Python newer than every stub the wheel ships) belongs to the `pytriton` check, which
names it statically and carries its log signature.
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "stub-build"
AREA = "PyTriton install"
ORDER = 11


def run(snap: Snapshot) -> list[Finding]:
    install, target, files = snap.pytriton, snap.target, snap.pkgfiles
    if install is None or target is None or files is None:
        return [Finding(ID, Status.SKIP, "no PyTriton install to compare with its wheel")]
    if not files.foreign:
        return [Finding(ID, Status.OK, f"the python backend and the Python {target.minor} stub are the files "
                        f"nvidia-pytriton {install.version} shipped (RECORD hashes match)")]
    paths = [b.path for b in files.foreign]
    return [Finding(
        ID, Status.ERROR, "not the files the wheel shipped: " + ", ".join(paths),
        detail=f"Their sha256 differs from nvidia-pytriton {install.version}'s RECORD: a custom build was dropped in. "
               "One built from another python_backend branch than the bundled server's leaves models LOADING or "
               "fails with 'Triton backend API version does not support this backend'.",
        evidence={"foreign": [{"path": b.path, "recorded": b.recorded_sha256, "actual": b.actual_sha256}
                              for b in files.foreign]},
        fix=FixHint("reinstall-pytriton", "restore the wheel's files (or build the stub at the server's r<yy.mm> "
                    "branch: r24.10 for 0.7.0)",
                    (f"{target.executable} -m pip install --force-reinstall --no-deps nvidia-pytriton=={install.version}",)))]


SIGNATURES = (
    sig(r"Triton backend API version does not support this backend", 31, fast_fail=True,
        cause="a stub or python backend built from another python_backend branch than the server (0.7.0 = r24.10)"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(31,),
                  summary="the stub and python backend against the wheel's RECORD hashes (custom builds)")
