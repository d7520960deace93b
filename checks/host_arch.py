"""Does tritonserver run under CPU emulation? (catalog rows 36, 33)

An x86-64 Triton under QEMU user-mode emulation (Docker Desktop on Apple silicon, binfmt_misc
qemu-x86_64 on an ARM host) hangs or aborts. Visible as an x86-64 process whose /proc/cpuinfo
describes ARM cores, or a QEMU binfmt handler for another architecture than this machine's.
Row 33 (static TLS exhausted by a late dlopen, aarch64 above all) has only a log signature.
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "host-arch"
AREA = "Platform"
ORDER = 2

_FIX = FixHint("native-arch", "run an image / environment native to this CPU (arm64 PyTriton wheels exist), or "
               "Rosetta instead of QEMU", ("docker run --platform linux/arm64 ...",
                                           "# Docker Desktop: Settings > General > Use Rosetta for x86_64/amd64 emulation"))


def run(snap: Snapshot) -> list[Finding]:
    emu = snap.host.emulation if snap.host else None
    if emu is None:
        return [Finding(ID, Status.SKIP, "host facts were not gathered")]
    evidence = {"machine": emu.machine, "qemu_handlers": [list(h) for h in emu.qemu_handlers],
                "cpu_vendor": emu.cpu_vendor, "arm_cpuinfo": emu.arm_cpuinfo}
    if emu.cpu_vendor == "VirtualApple":
        return [Finding(ID, Status.OK, f"{emu.machine} under Rosetta (vendor VirtualApple)", evidence=evidence)]
    if emu.emulated:
        return [Finding(ID, Status.ERROR, f"this {emu.machine} process runs on ARM cores: CPU emulation (QEMU)",
                        detail="An emulated tritonserver hangs or aborts (server #7268, #7174).",
                        evidence=evidence, fix=_FIX)]
    foreign = [h for h in emu.qemu_handlers if emu.machine.replace("_", "-") not in h[0]]
    if foreign:
        names = ", ".join(h[0] for h in foreign)
        return [Finding(ID, Status.OK, f"{emu.machine}, native; binfmt_misc can emulate other architectures ({names})",
                        detail="An image of another architecture would start under QEMU here and Triton in it would "
                               "hang or abort: pull images for this architecture.", evidence=evidence)]
    return [Finding(ID, Status.OK, f"{emu.machine}, native (no emulation)", evidence=evidence)]


SIGNATURES = (
    sig(r"qemu: uncaught target signal (\d+)", 36, fast_fail=True,
        cause="tritonserver runs under QEMU emulation of another CPU architecture, which it does not survive"),
    sig(r"(\S*libgomp\S*\.so\S*): cannot allocate memory in static TLS block", 33, fast_fail=True,
        cause="static TLS is exhausted by a late dlopen of libgomp (aarch64 above all): LD_PRELOAD it, or raise "
              "GLIBC_TUNABLES=glibc.rtld.optional_static_tls"),
    sig(r"(\S+\.so\S*): cannot allocate memory in static TLS block", 33, fast_fail=True,
        cause="static TLS is exhausted by a late dlopen: LD_PRELOAD that library, or raise "
              "GLIBC_TUNABLES=glibc.rtld.optional_static_tls"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(36,),
                  summary="CPU emulation (QEMU binfmt, ARM cores under an x86-64 process)")
