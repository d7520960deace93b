"""Faults a smoke run shows only as a timeout or a bare exit code, named from facts around the run.

- A proxy in the environment: gRPC core sends even loopback connections through `grpc_proxy` /
  `https_proxy` / `http_proxy` (lowercase only) unless `no_grpc_proxy` / `no_proxy` exempts the
  host, while tritonclient's HTTP client ignores proxies: HTTP works, gRPC waits until it times
  out (catalog row 25).
- The kernel's OOM killer inside a memory cgroup: the model script or the server dies with
  SIGKILL and says nothing (row 34). The cgroup's own counters say what happened.
- A model that never became ready although the server did (row 38).

The functions that decide are pure; the few that look at the world (`proxy_reachable`,
`oom_evidence`, `model_ready`) are separate and small, for the runner to call.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from tritondoctor.facts import cgroup_memory
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import SMOKE_AREA

PROXY_VARS = ("grpc_proxy", "https_proxy", "http_proxy")  # gRPC core's order; the first set wins
NO_PROXY_VARS = ("no_grpc_proxy", "no_proxy")
LOOPBACK = ("127.0.0.1", "localhost")
PROXY_ID = "grpc-proxy"
OOM_ID = "memory-limit"  # the id of the static check of the same limit
MODEL_READY_ID = "model-ready"


@dataclass(frozen=True)
class GrpcProxy:
    """The proxy gRPC would use for a loopback server, from the environment."""

    variable: str
    url: str
    host: str
    port: int


def grpc_proxy(environ: Mapping[str, str]) -> GrpcProxy | None:
    """The proxy gRPC core would send a connection to 127.0.0.1 through, or None."""
    for name in PROXY_VARS:
        value = (environ.get(name) or "").strip()
        if not value:
            continue
        parts = urlsplit(value if "://" in value else "http://" + value)
        if parts.scheme != "http" or not parts.hostname:
            return None  # gRPC refuses other schemes and then connects directly
        if _loopback_exempt(environ):
            return None
        return GrpcProxy(name, value, parts.hostname, parts.port or 80)
    return None


def _loopback_exempt(environ: Mapping[str, str]) -> bool:
    for name in NO_PROXY_VARS:
        value = environ.get(name)
        if value is None or not value.strip():
            continue
        entries = [e.strip().lower() for e in value.split(",") if e.strip()]
        # gRPC matches a host by suffix; only the first of the two variables that is set counts.
        return any(e == "*" or e in ("127.0.0.1", "127.0.0.0/8") or "127.0.0.1".endswith(e) for e in entries)
    return False


def proxy_reachable(proxy: GrpcProxy, timeout: float = 0.5) -> bool:
    """Whether anything accepts a TCP connection at the proxy's address (impure, fast)."""
    try:
        with socket.create_connection((proxy.host, proxy.port), timeout=timeout):
            return True
    except OSError:
        return False


def proxy_fix(proxy: GrpcProxy) -> FixHint:
    return FixHint(PROXY_ID, "exempt the loopback server from the proxy (or unset the proxy for this process)",
                   ("export no_grpc_proxy=localhost,127.0.0.1",
                    "# or: export no_proxy=localhost,127.0.0.1${no_proxy:+,$no_proxy}",
                    f"# or: unset {proxy.variable}"))


def proxy_preflight(environ: Mapping[str, str], reachable: bool | None = None) -> Finding | None:
    """Before a run: an ERROR when gRPC would go through a proxy nothing answers at (the run can
    only time out: fail now), a WARN when the proxy answers (it would have to connect to its own
    loopback); None when gRPC connects directly. `reachable` None: probe the proxy."""
    proxy = grpc_proxy(environ)
    if proxy is None:
        return None
    if reachable is None:
        reachable = proxy_reachable(proxy)
    where = f"{proxy.variable}={proxy.url}"
    if reachable:
        return Finding(PROXY_ID, Status.WARN, f"gRPC would send the connection to the local server through the proxy ({where})",
                       detail="gRPC honours the proxy even for 127.0.0.1 and no no_grpc_proxy / no_proxy entry exempts it; "
                              "the proxy would have to reach its own loopback, which most refuse.",
                       evidence={"variable": proxy.variable, "proxy": proxy.url, "reachable": True},
                       fix=proxy_fix(proxy), area=SMOKE_AREA)
    return Finding(PROXY_ID, Status.ERROR, f"gRPC would go through a proxy that does not answer ({where})",
                   detail="gRPC sends even connections to 127.0.0.1 through the proxy unless no_grpc_proxy / no_proxy "
                          f"exempts it; nothing accepts connections at {proxy.host}:{proxy.port}, so PyTriton's gRPC "
                          "client would wait until 'Waiting for server to be ready timed out' while HTTP works.",
                   evidence={"variable": proxy.variable, "proxy": proxy.url, "reachable": False},
                   fix=proxy_fix(proxy), area=SMOKE_AREA)


def grpc_failed_http_ok(events: Sequence[Mapping[str, Any]]) -> bool:
    """HTTP inference worked and gRPC's did not (failed, or an error while it was being tried)."""
    infers = {e.get("protocol"): e for e in events if e.get("ev") == "infer"}
    http = infers.get("http")
    if not http or not http.get("ok"):
        return False
    grpc = infers.get("grpc")
    if grpc is not None:
        return not grpc.get("ok")
    return any(e.get("ev") == "error" and e.get("phase") == "infer" for e in events)


def proxy_cause(environ: Mapping[str, str], events: Sequence[Mapping[str, Any]]) -> Finding | None:
    """After a run: the proxy as the cause of a gRPC failure while HTTP worked (pure)."""
    proxy = grpc_proxy(environ)
    if proxy is None or not grpc_failed_http_ok(events):
        return None
    error = next((e for e in reversed(events) if e.get("ev") == "error"), {})
    return Finding(PROXY_ID, Status.ERROR,
                   f"gRPC failed and HTTP worked: gRPC went through the proxy in {proxy.variable} ({proxy.url})",
                   detail="gRPC core honours grpc_proxy / https_proxy / http_proxy even for 127.0.0.1, and no "
                          "no_grpc_proxy / no_proxy entry exempts it; tritonclient's HTTP client ignores proxies.",
                   evidence={"variable": proxy.variable, "proxy": proxy.url, "error": error.get("message")},
                   fix=proxy_fix(proxy), area=SMOKE_AREA)


# --- the OOM killer in a memory cgroup ---------------------------------------------------------

@dataclass(frozen=True)
class OomEvidence:
    """A memory cgroup's counters: how many processes its OOM killer ended, under which limit."""

    cgroup: str  # the cgroup's directory
    version: int  # 1 or 2
    oom_kills: int
    limit_bytes: int | None  # None: no limit ("max" / the v1 "unlimited" value)
    failcnt: int | None = None  # v1: how often usage hit the limit
    peak_bytes: int | None = None


def read_cgroup(directory: str) -> OomEvidence | None:
    """The counters of one memory cgroup directory (v2 `memory.events`, v1 `memory.oom_control`)."""
    for version in (2, 1):
        events = cgroup_memory.read_text(os.path.join(directory, cgroup_memory.EVENTS_FILE[version]))
        if events is not None:
            break
    else:
        return None
    kills = cgroup_memory.counters(events).get("oom_kill", 0)
    limit = cgroup_memory.limit_bytes(directory, version)
    if version == 2:
        return OomEvidence(directory, 2, kills, limit, peak_bytes=_value(directory, "memory.peak"))
    return OomEvidence(directory, 1, kills, limit, failcnt=_value(directory, "memory.failcnt"),
                       peak_bytes=_value(directory, "memory.max_usage_in_bytes"))


def _value(directory: str, name: str) -> int | None:
    return cgroup_memory.as_int(cgroup_memory.read_text(os.path.join(directory, name)))


def memory_cgroup_dir(pid: int, proc: str = "/proc", root: str = "/sys/fs/cgroup") -> str | None:
    """The memory cgroup directory of a process: the v1 `memory` hierarchy, else the v2 one."""
    v2, v1 = cgroup_memory.cgroup_paths(cgroup_memory.read_text(os.path.join(proc, str(pid), "cgroup")))
    if v1 is not None:
        return os.path.join(root, "memory", v1.lstrip("/"))
    return os.path.join(root, v2.lstrip("/")) if v2 is not None else None


def oom_evidence(cgroup_dir_or_pid: "str | int") -> OomEvidence | None:
    """The OOM evidence of a memory cgroup (a directory, or the cgroup of a live pid): the nearest
    cgroup up the tree whose OOM killer fired, else the tightest limit on the way up; None when
    there is no memory cgroup to read."""
    leaf = memory_cgroup_dir(cgroup_dir_or_pid) if isinstance(cgroup_dir_or_pid, int) else cgroup_dir_or_pid
    levels: list[OomEvidence] = []
    directory = leaf
    while directory:
        found = read_cgroup(directory)
        if found is None:
            break
        levels.append(found)
        parent = os.path.dirname(directory.rstrip("/"))
        directory = parent if parent != directory else None
    if not levels:
        return None
    killed = next((e for e in levels if e.oom_kills), None)
    if killed is not None:
        return killed if killed.limit_bytes is not None else _with_limit(killed, levels)
    limited = [e for e in levels if e.limit_bytes is not None]
    return min(limited, key=lambda e: e.limit_bytes or 0) if limited else levels[0]


def _with_limit(evidence: OomEvidence, levels: Sequence[OomEvidence]) -> OomEvidence:
    limits = [e.limit_bytes for e in levels if e.limit_bytes is not None]
    return evidence if not limits else OomEvidence(evidence.cgroup, evidence.version, evidence.oom_kills, min(limits),
                                                   evidence.failcnt, evidence.peak_bytes)


def oom_since(before: OomEvidence | None, after: OomEvidence | None) -> OomEvidence | None:
    """`after` when its OOM killer fired during the run (more kills than `before`), else None."""
    if after is None or not after.oom_kills:
        return None
    base = before.oom_kills if before is not None and before.cgroup == after.cgroup else 0
    if after.oom_kills <= base:
        return None
    return OomEvidence(after.cgroup, after.version, after.oom_kills - base, after.limit_bytes, after.failcnt, after.peak_bytes)


def mib(size: int | None) -> str:
    if size is None:
        return "no limit"
    return f"{size / (1 << 20):.0f} MiB" if size >= 1 << 20 else f"{size} bytes"


def oom_finding(evidence: OomEvidence) -> Finding:
    counter = "memory.events oom_kill" if evidence.version == 2 else "memory.oom_control oom_kill"
    limit = mib(evidence.limit_bytes)
    title = (f"the kernel's OOM killer ended {evidence.oom_kills} process(es) of the smoke test: the memory cgroup's "
             f"limit is {limit}")
    detail = (f"cgroup {evidence.cgroup} (v{evidence.version}): {counter} = {evidence.oom_kills}"
              + (f", failcnt {evidence.failcnt}" if evidence.failcnt is not None else "")
              + (f", peak usage {mib(evidence.peak_bytes)}" if evidence.peak_bytes is not None else "")
              + ". A process killed this way dies with SIGKILL (exit code -9) and prints nothing.")
    knob = "memory.max" if evidence.version == 2 else "memory.limit_in_bytes"
    fix = FixHint(OOM_ID, f"raise the memory limit ({limit} now): tritonserver, the stub and the model need more",
                  (f"cat {os.path.join(evidence.cgroup, knob)}", "dmesg | grep -i -E 'killed process|out of memory'",
                   "# Docker: docker run --memory 2g ...; Kubernetes: resources.limits.memory"))
    return Finding(OOM_ID, Status.ERROR, title, detail,
                   {"cgroup": evidence.cgroup, "cgroup_version": evidence.version, "oom_kills": evidence.oom_kills,
                    "limit_bytes": evidence.limit_bytes, "failcnt": evidence.failcnt}, fix, SMOKE_AREA)


# --- model readiness, per model -----------------------------------------------------------------

_LIFECYCLE = (
    (re.compile(r"loading: ([^:\s\"']+):\d+"), "LOADING"),
    (re.compile(r"successfully loaded '([^']+)'"), "READY"),
    (re.compile(r"failed to load '([^']+)'"), "UNAVAILABLE"),
    (re.compile(r"successfully unloaded '([^']+)'"), "UNLOADED"),
)


def model_states(log: str) -> dict[str, str]:
    """Each model's last state as tritonserver's model lifecycle lines tell it, in log order."""
    states: dict[str, str] = {}
    for line in log.splitlines():
        for pattern, state in _LIFECYCLE:
            found = pattern.search(line)
            if found:
                states[found.group(1)] = state
                break
    return states


def _reached(events: Sequence[Mapping[str, Any]], phase: str) -> bool:
    return any(e.get("ev") == "phase" and e.get("name") == phase for e in events)


def model_readiness(log: str, events: Sequence[Mapping[str, Any]]) -> Finding | None:
    """The server said it was ready and the model never did: name each model that was not READY
    (the server's readiness says nothing of a model's). None when the model became ready or the
    server never did."""
    if not _reached(events, "server-ready") or _reached(events, "model-ready"):
        return None
    # A model that loaded and was then unloaded (the run ending) was ready once.
    waiting = {m: s for m, s in model_states(log).items() if s not in ("READY", "UNLOADED")}
    if not waiting:
        title = "the server was ready, but the model never became ready (tritonserver never started loading it)"
    else:
        title = "the server was ready, but not the model: " + ", ".join(f"{m} {s}" for m, s in waiting.items())
    return Finding(MODEL_READY_ID, Status.ERROR, title,
                   "Server readiness (/v2/health/ready) is reported before PyTriton's model is bound; clients must "
                   "wait for /v2/models/<model>/ready.", {"models": waiting},
                   FixHint(MODEL_READY_ID, "probe the model's own readiness, and read the log around its loading",
                           ("curl -s -o /dev/null -w '%{http_code}\\n' http://127.0.0.1:8000/v2/models/<model>/ready",)),
                   SMOKE_AREA)


def model_ready(port: int, model: str, timeout: float = 2.0, host: str = "127.0.0.1") -> bool | None:
    """Ask the server whether one model is ready (impure): True/False, None when no answer. Goes
    direct: urllib would honour http_proxy even for loopback."""
    from urllib.error import HTTPError, URLError
    from urllib.parse import quote
    from urllib.request import ProxyHandler, build_opener

    opener = build_opener(ProxyHandler({}))
    try:
        with opener.open(f"http://{host}:{port}/v2/models/{quote(model, safe='')}/ready", timeout=timeout) as answer:
            return 200 <= answer.status < 300
    except HTTPError:
        return False
    except (URLError, OSError):
        return None
