"""Will gRPC to PyTriton's own server on loopback go through a proxy? (catalog row 25)

gRPC core reads `grpc_proxy`, `https_proxy` and `http_proxy` even for localhost, and exempts a
host only through `no_grpc_proxy` or `no_proxy` naming it (measured here with grpcio 1.85.4: only
the lower-case names count, and an exemption for 127.0.0.1 does not cover "localhost"). PyTriton
and tritonclient connect to `localhost:8001` / `127.0.0.1:8001`, so a proxy without that
exemption makes every gRPC call UNAVAILABLE while HTTP works.
"""

from __future__ import annotations

import re
from typing import Mapping, Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.remedies import fix_command
from tritondoctor.snapshot import Snapshot

ID = "grpc-proxy"
AREA = "Environment variables"
ORDER = 45

PROXY_VARS = ("grpc_proxy", "https_proxy", "http_proxy")  # gRPC core's order
EXEMPT_VARS = ("no_grpc_proxy", "no_proxy")
LOOPBACK = ("localhost", "127.0.0.1")
EXPORT = "export no_grpc_proxy=localhost,127.0.0.1"


def redact(url: str) -> str:
    """A proxy URL with its credentials hidden: http://user:pw@host:3128 -> http://***@host:3128."""
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)?[^/@\s]*@", lambda m: (m.group(1) or "") + "***@", url)


def exempted(environ: Mapping[str, str]) -> tuple[str, set[str]]:
    """(the exemption variable gRPC reads, the loopback names it covers)."""
    for name in EXEMPT_VARS:
        value = environ.get(name)
        if value is None:
            continue
        hosts = {h.strip().lower().split(":")[0] for h in value.split(",") if h.strip()}
        if "*" in hosts:
            return name, set(LOOPBACK)
        return name, {h for h in LOOPBACK if h in hosts}
    return "", set()


def _fix(snap: Snapshot) -> FixHint:
    kind = snap.target.env_kind if snap.target else "system"
    python = snap.target.executable if snap.target and snap.target.selected_by == "--python" else None
    if kind in ("conda", "venv"):
        return FixHint("grpc-proxy-hooks", "exempt loopback from the proxy for gRPC in the environment's activation "
                       "hooks", (fix_command(python), f"# and, for this shell: {EXPORT}"))
    return FixHint("no-grpc-proxy", "exempt loopback from the proxy for gRPC where PyTriton runs", (EXPORT,))


def run(snap: Snapshot) -> list[Finding]:
    env = snap.environ
    used = next((n for n in PROXY_VARS if env.get(n)), None)
    upper = [n.upper() for n in PROXY_VARS if env.get(n.upper())]
    if used is None:
        note = (f" ({', '.join(upper)} set, but gRPC reads only the lower-case names)" if upper else "")
        return [Finding(ID, Status.OK, "no proxy variable gRPC would use" + note, evidence={"upper_case": upper})]
    value = redact(env[used])
    var, covered = exempted(env)
    evidence = {"variable": used, "value": value, "exemption": var or None, "exempted": sorted(covered)}
    if covered == set(LOOPBACK):
        return [Finding(ID, Status.OK, f"{used}={value} is set; {var} exempts localhost and 127.0.0.1 for gRPC",
                        evidence=evidence)]
    missing = [h for h in LOOPBACK if h not in covered]
    status = Status.ERROR if not covered else Status.WARN
    title = (f"{used}={value} sends gRPC to {' and '.join(missing)} through the proxy"
             + (f" ({var} covers only {', '.join(sorted(covered))})" if covered else ": no no_grpc_proxy / no_proxy "
                "exempts loopback"))
    detail = ("gRPC core honours grpc_proxy/https_proxy/http_proxy even for loopback; PyTriton's and tritonclient's "
              "gRPC calls to localhost:8001 fail with UNAVAILABLE 'failed to connect to all addresses' while HTTP "
              "works, and PyTriton waits until 'Waiting for server to be ready timed out'.")
    return [Finding(ID, status, title, detail=detail, evidence=evidence, fix=_fix(snap))]


SIGNATURES = (
    sig(r"failed to connect to all addresses", 25,
        cause="gRPC could not reach the server; with a proxy variable set and no no_grpc_proxy, gRPC sends even "
              "loopback calls to the proxy"),
    sig(r"Waiting for server to be ready timed out", 25,
        cause="PyTriton's readiness probe never got an answer; a proxy variable without a loopback exemption "
              "is the usual cause when the server itself started"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    title = "gRPC could not reach the local server (failed to connect / readiness timed out): check proxy variables"
    detail = ("gRPC core sends even localhost calls to http_proxy / https_proxy / grpc_proxy unless no_grpc_proxy "
              "or no_proxy names localhost and 127.0.0.1.")
    fix = FixHint("no-grpc-proxy", "exempt loopback from the proxy for gRPC", (EXPORT, "tritondoctor check"))
    return Finding(ID, Status.ERROR, title, detail, log_evidence(matches), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, from_log=from_log, rows=(25,),
                  summary="proxy variables gRPC would use for loopback, and the no_grpc_proxy exemption")
