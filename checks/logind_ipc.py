"""Will systemd-logind delete the python backend's shared memory under a running server? (row 26)

With `RemoveIPC=yes` (logind.conf(5)'s default) logind removes every System V and POSIX IPC
object of a non-system user when that user's last session ends: an ssh logout or the end of a
cron job takes the /dev/shm regions of a server started from it, and the stub fails later.
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "logind-ipc"
AREA = "Runtime resources"
ORDER = 74


def run(snap: Snapshot) -> list[Finding]:
    host = snap.host
    if host is None:
        return [Finding(ID, Status.SKIP, "host facts were not gathered")]
    facts = host.logind
    evidence = {"remove_ipc": facts.remove_ipc, "source": facts.source, "uid": facts.uid,
                "sys_uid_max": facts.sys_uid_max, "sys_uid_max_source": facts.sys_uid_max_source,
                "logind_present": facts.logind_present}
    if not facts.logind_present:
        return [Finding(ID, Status.OK, "no systemd-logind configuration: nothing removes shared memory at logout",
                        evidence=evidence)]
    setting = f"RemoveIPC={'yes' if facts.remove_ipc else 'no'} ({facts.source})"
    if not facts.remove_ipc:
        return [Finding(ID, Status.OK, f"logind {setting}: shared memory survives logout", evidence=evidence)]
    if facts.system_user:
        return [Finding(ID, Status.OK, f"logind {setting}, but uid {facts.uid} is a system user (<= "
                        f"{facts.sys_uid_max}): its shared memory is kept", evidence=evidence)]
    return [Finding(
        ID, Status.WARN,
        f"logind {setting} deletes uid {facts.uid}'s shared memory when its last session ends",
        detail=f"uid {facts.uid} is above SYS_UID_MAX {facts.sys_uid_max} ({facts.sys_uid_max_source}): an ssh logout "
               "or the end of a cron job removes the python backend's /dev/shm regions under a running server, and "
               "the stub fails later ('Stub process ... is not healthy', FileNotFoundError on /dev/shm).",
        evidence=evidence,
        fix=FixHint("logind-removeipc", "keep IPC objects at logout, or run the server as a system user / lingering "
                    "service", ("printf '[Login]\\nRemoveIPC=no\\n' | sudo tee /etc/systemd/logind.conf.d/"
                                "90-keep-ipc.conf && sudo systemctl restart systemd-logind",
                                "# or: sudo loginctl enable-linger $USER  (a lingering user keeps its IPC)")))]


SIGNATURES = (
    sig(r"FileNotFoundError: \[Errno 2\] No such file or directory: '/dev/shm/[^']*'", 26,
        cause="a /dev/shm region vanished under a running server: systemd-logind's RemoveIPC=yes removes a "
              "non-system user's shared memory when the last session ends"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(26,),
                  summary="systemd-logind RemoveIPC for this (non-system) user")
