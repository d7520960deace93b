"""Can the python backend's stub be executed where Triton puts it? (catalog rows 27, 28)

Row 27: a stub without the exec bit that Triton cannot chmod (a read-only or noexec file system).
Row 28: python_backend copies cloud model repositories and unpacks EXECUTION_ENV_PATH archives
under /tmp (ignoring TMPDIR, src/pb_env.cc) and runs the stub from there: a noexec or tiny /tmp
fails with "Permission denied" or "No space left on device".
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.facts.runtime import human_bytes
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "exec-mounts"
AREA = "Runtime resources"
ORDER = 71

# An unpacked conda-pack'd environment is hundreds of MiB; below this /tmp cannot hold one.
TMP_MIN_FREE = 256 * 1024 * 1024


def _stub_finding(snap: Snapshot) -> Finding | None:
    install, target = snap.pytriton, snap.target
    stub = install.stub_for(target.minor) if install and target else None
    if stub is None or install is None or install.stub_executable.get(target.minor if target else "", True):
        return None
    if not install.stub_on_frozen_fs.get(target.minor if target else "", False):
        return None  # the pytriton check names a plain missing exec bit (chmod works)
    return Finding(ID, Status.ERROR, f"the stub {stub} has no exec bit on a read-only or noexec file system",
                   detail="Triton fails with 'Failed to give execute permission to triton_python_backend_stub': chmod "
                          "is refused there.",
                   evidence={"stub": stub},
                   fix=FixHint("stub-exec", "install PyTriton on a writable, exec-allowed file system, or set +x "
                               "before packaging", (f"# where it is built: chmod +x {stub}",)))


def _tmp_finding(snap: Snapshot) -> Finding:
    tmp = snap.host.tmp if snap.host else None
    if tmp is None:
        return Finding(ID, Status.SKIP, "/tmp facts were not gathered")
    evidence = {"path": tmp.path, "mountpoint": tmp.mountpoint, "fstype": tmp.fstype, "noexec": tmp.noexec,
                "free_bytes": tmp.free_bytes, "total_bytes": tmp.total_bytes}
    fix = FixHint("tmp-exec", "give Triton an exec-allowed /tmp with room (TMPDIR is not used for this)",
                  ("sudo mount -o remount,exec /tmp", "# docker: --tmpfs /tmp:exec,size=2g"))
    if tmp.noexec:
        return Finding(ID, Status.WARN, f"{tmp.path} is mounted noexec ({tmp.mountpoint})",
                       detail="python_backend runs the stub from /tmp when it copies a cloud model repository or "
                              "unpacks an EXECUTION_ENV_PATH archive: '/bin/dash: 0: cannot open /tmp/folder.../"
                              "triton_python_backend_stub: Permission denied'. PyTriton's own models are not affected.",
                       evidence=evidence, fix=fix)
    if tmp.free_bytes is not None and tmp.free_bytes < TMP_MIN_FREE:
        return Finding(ID, Status.WARN, f"{tmp.path} has only {human_bytes(tmp.free_bytes)} free",
                       detail="python_backend copies cloud repositories and unpacks EXECUTION_ENV_PATH archives there.",
                       evidence=evidence, fix=fix)
    return Finding(ID, Status.OK, f"{tmp.path}: exec allowed, {human_bytes(tmp.free_bytes)} free", evidence=evidence)


def run(snap: Snapshot) -> list[Finding]:
    stub = _stub_finding(snap)
    return ([stub] if stub else []) + [_tmp_finding(snap)]


SIGNATURES = (
    sig(r"Failed to give execute permission to triton_python_backend_stub in (\S+)", 27, fast_fail=True,
        cause="the stub has no exec bit and Triton cannot chmod it (a read-only repository mount)"),
    sig(r"cannot open (/tmp/\S*triton_python_backend_stub): Permission denied", 28, fast_fail=True,
        cause="Triton runs the stub from /tmp (cloud repositories, EXECUTION_ENV_PATH) and /tmp is mounted noexec"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(27, 28),
                  summary="the stub's exec bit on read-only mounts; /tmp noexec or too small")
