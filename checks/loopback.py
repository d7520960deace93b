"""Is there an IPv4 loopback address? (catalog row 37)

PyTriton and its clients reach the server at localhost / 127.0.0.1; on an IPv6-only host (no
127.0.0.1 on lo, seen in /proc/net/fib_trie) those calls fail, and Triton 2.21-2.30 could not
listen on `--http-address ::` at all.
"""

from __future__ import annotations

from tritondoctor.checkspec import CheckSpec, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "loopback"
AREA = "Runtime resources"
ORDER = 69


def run(snap: Snapshot) -> list[Finding]:
    lo = snap.host.loopback if snap.host else None
    if lo is None or lo.ipv4_loopback is None:
        return [Finding(ID, Status.SKIP, "loopback addresses could not be read (/proc/net/fib_trie)")]
    evidence = {"ipv4_loopback": lo.ipv4_loopback, "ipv6_loopback": lo.ipv6_loopback}
    if lo.ipv4_loopback:
        return [Finding(ID, Status.OK, "127.0.0.1 is a local address" + (" (and ::1)" if lo.ipv6_loopback else ""),
                        evidence=evidence)]
    return [Finding(ID, Status.ERROR, "no 127.0.0.1 on this host (IPv6-only"
                    + (", ::1 present)" if lo.ipv6_loopback else ", no ::1 either)"),
                    detail="PyTriton's clients and readiness probes connect to localhost / 127.0.0.1.",
                    evidence=evidence,
                    fix=FixHint("ipv4-loopback", "give the host (or container) an IPv4 loopback address",
                                ("sudo ip addr add 127.0.0.1/8 dev lo",
                                 "# docker: do not start with --sysctl net.ipv6... / an IPv6-only network namespace")))]


SIGNATURES = (
    sig(r"--http-address[ =]::\S*.*(?:refused|failed|error)", 37,
        cause="Triton's HTTP frontend lacked IPv6 in 2.21-2.30: on an IPv6-only host use dual stack or IPv4 loopback"),
    sig(r"Cannot assign requested address.*127\.0\.0\.1|127\.0\.0\.1.*Cannot assign requested address", 37,
        cause="the host has no IPv4 loopback address (IPv6-only)"),
)

CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, rows=(37,),
                  summary="an IPv4 loopback address (IPv6-only hosts)")
