"""From what a smoke run saw (server log, the model script's events, the stub's mappings) to findings.

The ids are those of `tritondoctor check` (libpython, glibcxx, libs, cuda-driver, cuda-runtime,
ports, shm, python-deps, pytriton, workspace, server-protocol) plus smoke-only ones: model-load,
model-ready, server-signal, server-exit, infer, timeout, smoke. Besides the log, the model script
reports the bound model's own readiness (row 38) and PyTriton's restricted endpoints asked without
and with its token (row 24). Messages that a CPU-only host always prints are explained as harmless.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

from tritondoctor.checks._logs import log_evidence, python_command, short
from tritondoctor.checkspec import LogSignature, Match, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import SMOKE_AREA, Observation
from tritondoctor.smoke import faults

AREA = SMOKE_AREA
FATAL_SIGNALS = {"SIGSEGV", "SIGABRT", "SIGBUS", "SIGFPE", "SIGILL", "SIGKILL", "SIGSYS", "SIGTRAP"}


@dataclass(frozen=True)
class Harmless:
    pattern: re.Pattern[str]
    why: str
    gpu_only_error: bool = False  # an error when the host has a GPU, harmless when it has none
    rows: tuple[int, ...] = (15,)  # catalog rows (../shared/FAILURES.md) it stands for


def _re(text: str) -> re.Pattern[str]:
    return re.compile(text)


# Smoke's own signature: a model that failed to load for a reason no check names.
MODEL_LOAD_ID = "model-load"
MODEL_LOAD = sig(r"failed to load '([^']+)'", cause="the model itself failed to load (its code raised, or a cause above)")


# Smoke's own signatures: what only a running server shows and no check stands for. A catalog
# row lives in one place: the check that detects it carries its signature.
SMOKE_ONLY: tuple[tuple[str, LogSignature], ...] = (
    ("server-signal", sig(r"Signal \((11|6|7|4|8)\) received|exit(?:ed with)? code -(11|6|7|4|8)\b|Segmentation fault", 14,
                          cause="tritonserver crashed on a fatal signal (SIGSEGV, SIGABRT...), which PyTriton reports only as a failed exit")),
)


@lru_cache(maxsize=1)
def signatures() -> tuple[tuple[str, LogSignature], ...]:
    """(id, signature) of every check in report order, then smoke's own; the first id that
    matches a line wins it (the declared order puts the more specific first)."""
    from tritondoctor.registry import all_checks

    pairs = [(spec.id, s) for spec in all_checks() for s in spec.signatures]
    return (*pairs, *SMOKE_ONLY, (MODEL_LOAD_ID, MODEL_LOAD))


HARMLESS: tuple[Harmless, ...] = (
    Harmless(
        _re(r"Unable to allocate pinned system memory"),
        "pinned (page-locked) memory is a CUDA feature; with no NVIDIA driver loaded "
        "('CUDA driver version is insufficient') the server goes without it, and CPU models do not use it",
        gpu_only_error=True,
    ),
    Harmless(
        _re(r"CUDA driver version is insufficient for CUDA runtime version"),
        "tritonserver is built with CUDA and says this whenever no NVIDIA driver is loaded; "
        "a CPU-only host has none, and CPU models do not need it",
        gpu_only_error=True,
    ),
    Harmless(_re(r"CudaDriverHelper has not been initialized"), "the same missing CUDA driver, reported once more at startup", gpu_only_error=True),
    Harmless(_re(r"Failed to initialize NVML"), "NVML only feeds GPU metrics; with no NVIDIA driver there is nothing to measure", gpu_only_error=True),
    Harmless(_re(r"DCGM unable to start"), "DCGM only feeds GPU metrics; tritonserver carries on with CPU metrics"),
    Harmless(_re(r"CUDA memory pool disabled"), "no GPU memory pool without a GPU", gpu_only_error=True),
    Harmless(
        _re(r"Failed to set config modification time: model_config_content_name_ is empty"),
        "PyTriton loads its model with an inline config; Triton notes it has no config file to time-stamp",
        rows=(),
    ),
)


def scan(text: str, gpu_present: bool = False) -> list[Match]:
    """Every line of `text` (and every embedded "\\n" line of a quoted message) that a signature
    names; signatures that mean a problem only with a GPU count only when there is one."""
    table = [(i, s) for i, s in signatures() if gpu_present or not s.gpu_only]
    matches: list[Match] = []
    seen: set[tuple[str, str]] = set()
    for raw in text.splitlines():
        for line in raw.replace("\\n", "\n").splitlines():
            for check_id, signature in table:
                found = signature.pattern.search(line)
                if not found:
                    continue
                key = (check_id, found.group(0))
                if key not in seen:
                    seen.add(key)
                    matches.append(Match(check_id, line.strip()[:400], tuple(g or "" for g in found.groups()), signature))
                break
    return matches


def is_fatal(line: str) -> bool:
    """Whether a single log line already decides that the run has failed: a fast-fail signature
    (after it a load may hang rather than fail, so the runner stops waiting by itself). Called for
    every line the server prints: the table is built once."""
    return any(s.pattern.search(line) for s in _fast_fail())


@lru_cache(maxsize=1)
def _fast_fail() -> tuple[LogSignature, ...]:
    return tuple(s for _, s in signatures() if s.fast_fail)


def harmless_lines(text: str, gpu_present: bool) -> list[tuple[str, str]]:
    """(line, why) for each harmless message, once per kind; GPU-only ones only on a GPU-less host."""
    out: list[tuple[str, str]] = []
    used: set[int] = set()
    for line in text.splitlines():
        for index, item in enumerate(HARMLESS):
            if index in used or (item.gpu_only_error and gpu_present):
                continue
            if item.pattern.search(line):
                used.add(index)
                out.append((_trim_log_prefix(line)[:200], item.why))
                break
    return out


_LOG_PREFIX = re.compile(r'^[IWEF]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "?')


def _trim_log_prefix(line: str) -> str:
    return _LOG_PREFIX.sub("", line.strip()).rstrip('"')


def signal_name(code: int | None) -> str | None:
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


def _model_load(matches: Sequence[Match], obs: Observation) -> Finding:
    error = _error_event(obs)
    message = (error or {}).get("message") or matches[0].line
    title = "the model failed to load: " + short(message)
    fix = FixHint("model-load", "read the server log around the failure", (f"less {obs.log_path}",) if obs.log_path else ())
    return Finding("model-load", Status.ERROR, title, "", log_evidence(matches), fix, AREA)


def _error_event(obs: Observation) -> dict[str, Any] | None:
    return next((e for e in reversed(obs.events) if e.get("ev") == "error"), None)


def from_log(text: str, obs: Observation) -> list[Finding]:
    """Findings for the signatures in `text` (no events needed); one per id, causes first (each
    check's own builder), consequences after, a bare failed load only when nothing explains it."""
    from tritondoctor.checks import pytriton
    from tritondoctor.registry import all_checks

    by_id: dict[str, list[Match]] = {}
    for match in scan(text, obs.gpu_present):
        by_id.setdefault(match.id, []).append(match)
    minor = pytriton.stub_minor(by_id.get("libpython", []))
    if minor and obs.interpreter.minor and minor != obs.interpreter.minor:
        # The stub of another minor asked for its own libpython: the wrong stub is the cause.
        by_id.setdefault(pytriton.ID, []).extend(by_id.pop("libpython"))
    specs = [s for s in all_checks() if s.id in by_id and s.from_log is not None]
    specs.sort(key=lambda s: (s.log_is_consequence, not s.loader))
    findings = [spec.from_log(by_id[spec.id], obs) for spec in specs if spec.from_log is not None]
    if "model-load" in by_id and not findings:
        findings.append(_model_load(by_id["model-load"], obs))
    return findings


_BARE = frozenset({"timeout", "smoke", "server-exit"})  # symptoms that name no cause


def diagnose(obs: Observation, environ: Mapping[str, str] | None = None,
             oom: "faults.OomEvidence | None" = None) -> list[Finding]:
    """Findings for one run. `environ`: the run's environment (names a proxy behind a gRPC
    failure); `oom`: the run's memory cgroup when its OOM killer fired during the run
    (faults.oom_since), named as the cause of a SIGKILL."""
    findings = _diagnose(obs) + _served_model_ready(obs) + endpoint_findings(obs)
    causes = _fault_causes(obs, environ, oom, findings)
    if not causes:
        return findings
    # The named cause replaces the bare symptoms it explains.
    explained = _BARE | ({"infer"} if any(c.id == faults.PROXY_ID for c in causes) else set())
    named = {c.id for c in causes}  # the same id from the log alone says less than the cause
    rest = [f for f in findings if f.id not in named and (f.id not in explained or f.status is not Status.ERROR)]
    return causes + [_oom_signal(f) if oom and f.id == "server-signal" else f for f in rest]


def _fault_causes(obs: Observation, environ: Mapping[str, str] | None, oom: "faults.OomEvidence | None",
                  findings: Sequence[Finding]) -> list[Finding]:
    causes: list[Finding] = []
    if oom is not None and oom.oom_kills:
        causes.append(faults.oom_finding(oom))
    status = obs.first("model-status")
    if status is not None and not status.get("ready"):
        causes.append(model_status_finding(status, obs))
    proxy = faults.proxy_cause(environ, obs.events) if environ is not None else None
    if proxy is not None:
        causes.append(proxy)
    unexplained = all(f.id in _BARE for f in findings if f.status is Status.ERROR)
    killed = obs.script_exit is not None and obs.script_exit < 0  # a signal, not a model that never loaded
    if not causes and unexplained and not killed:
        ready = faults.model_readiness(obs.log, obs.events)
        if ready is not None:
            causes.append(ready)
    return causes


PROTOCOL_ID = "server-protocol"  # the check that carries rows 24 and 38's log signatures
ACCESS_FIX_COMMANDS = (
    "# Python: token = triton.get_access_token(); ModelClient(url, model, access_token=token)",
    "curl -X POST -H 'triton-access-token: <token>' http://127.0.0.1:8000/v2/repository/index",
    "# gRPC metadata: triton-grpc-protocol-triton-access-token: <token>",
    "# or, on a trusted host only: Triton(security_config=TritonSecurityConfig(restricted_endpoints=[]))",
)


def model_status_finding(status: Mapping[str, Any], obs: Observation) -> Finding:
    """The model's own readiness after binding (row 38): OK, or an ERROR naming the model."""
    model, request = status.get("model") or "?", status.get("request") or "GET /v2/models/<model>/ready"
    answer = f"{status.get('status')}" + (f" {status.get('answer')}" if status.get("answer") else "")
    if status.get("ready"):
        return Finding(faults.MODEL_READY_ID, Status.OK, f"model {model} is ready ({request} answered 200)",
                       evidence=dict(status), area=AREA)
    port = obs.ports.get("http", 8000)
    return Finding(faults.MODEL_READY_ID, Status.ERROR,
                   f"model {model} is not ready after binding: {request} answered {answer}",
                   detail=f"The server itself was ready; a model is served only once its own readiness says so "
                          f"(waited {status.get('waited_s')} s).", evidence=dict(status),
                   fix=FixHint(faults.MODEL_READY_ID, "wait for the model's own readiness, and read the log around its loading",
                               (f"curl -s -o /dev/null -w '%{{http_code}}\\n' http://127.0.0.1:{port}/v2/models/{model}/ready",)
                               + ((f"less {obs.log_path}",) if obs.log_path else ())), area=AREA)


def _served_model_ready(obs: Observation) -> list[Finding]:
    """The OK note of a ready model; one that is not ready is a cause (see _fault_causes)."""
    status = obs.first("model-status")
    return [model_status_finding(status, obs)] if status is not None and status.get("ready") else []


def _answer(result: Mapping[str, Any] | None) -> str:
    if not result:
        return "not asked"
    word = "answered" if result.get("allowed") else "refused"
    message = f": {result.get('message')}" if result.get("message") else ""
    return f"{word} ({result.get('status')}{message})"


def _endpoint_line(check: Mapping[str, Any]) -> str:
    name = f"{str(check.get('protocol', '?')).upper()} {check.get('call', '?')}"
    if check.get("error"):
        return f"{name}: could not be asked ({check['error']})"
    return f"{name}: without the token {_answer(check.get('without'))}; with it {_answer(check.get('with'))}"


def _endpoint_status(check: Mapping[str, Any]) -> Status:
    if check.get("error"):
        return Status.WARN
    if not (check.get("with") or {}).get("allowed"):
        return Status.ERROR  # a client holding the token is refused
    return Status.WARN if (check.get("without") or {}).get("allowed") else Status.OK


def endpoint_findings(obs: Observation) -> list[Finding]:
    """PyTriton's restricted endpoints (row 24), asked without and with the token: refused then
    answered is OK; anything else is a finding with the remedy."""
    event = obs.first("endpoints")
    if event is None:
        return []
    if event.get("skipped"):
        return [Finding(PROTOCOL_ID, Status.SKIP, "restricted endpoints: not checked: " + str(event["skipped"]),
                        evidence={"skipped": event["skipped"]}, area=AREA)]
    checks = list(event.get("checks") or [])
    statuses = [_endpoint_status(c) for c in checks]
    status = max(statuses, key=lambda st: st.rank) if statuses else Status.SKIP
    detail = "\n".join(_endpoint_line(c) for c in checks)
    evidence = {k: event.get(k) for k in ("restricted", "header", "checks")}
    version = obs.interpreter.pytriton or "0.7.0"
    if status is Status.OK:
        title = f"restricted endpoints refuse a request without the token, as PyTriton {version} does by default, and answer with it"
        return [Finding(PROTOCOL_ID, Status.OK, title, detail=detail, evidence=evidence, area=AREA)]
    title = ("a restricted endpoint refused PyTriton's own access token" if status is Status.ERROR
             else "a restricted endpoint answered without the access token, or could not be asked")
    fix = FixHint("access-token", "send the 'triton-access-token' header with triton.get_access_token() of this "
                  "start (the token is new at every start), or lift the restriction where that is intended",
                  ACCESS_FIX_COMMANDS)
    return [Finding(PROTOCOL_ID, status, title, detail=detail, evidence=evidence, fix=fix, area=AREA)]



def _oom_signal(finding: Finding) -> Finding:
    fix = FixHint("server-signal", "the OOM killer sent this SIGKILL: raise the memory limit (see above)",
                  ("dmesg | grep -i -E 'killed process|out of memory'",))
    return replace(finding, fix=fix)


def _diagnose(obs: Observation) -> list[Finding]:
    findings: list[Finding] = []
    error = _error_event(obs)
    # Import failures happen before any server: name the package, not a log line.
    if error and error.get("phase") == "import":
        findings.append(_import_failure(error, obs))
    server_exit = obs.first("server-exit")
    text = obs.log
    if error:
        text += "\n" + str(error.get("detail") or "") + "\n" + str(error.get("message") or "")
    log_findings = from_log(text, obs) if not findings else []
    result = obs.first("result")
    if result is not None and not _check_result(result):
        # The model served correct numbers anyway: what the log says did not break this run.
        log_findings = [replace(f, status=Status.WARN, detail=(f.detail + " " if f.detail else "")
                                + "(Seen in the server log; the smoke test worked regardless.)") for f in log_findings]
    findings.extend(log_findings)

    if server_exit is not None or obs.server_vanished:
        findings.extend(_server_exit(server_exit, obs, explained=bool(log_findings)))
    if error and not findings:
        findings.append(_unexplained_error(error, obs))

    if result is not None:
        findings.extend(_check_result(result))
    if obs.timed_out:
        findings.append(_timeout(obs))
    elif result is None and not findings:
        findings.append(_script_ended(obs))
    notes = harmless_lines(obs.log, obs.gpu_present)
    if notes:
        findings.append(Finding(
            "server-log", Status.OK,
            f"{len(notes)} message(s) in the server log are expected here and harmless",
            detail="\n".join(f"{line} — {why}" for line, why in notes),
            evidence={"messages": [line for line, _ in notes]}, area=AREA))
    return findings


def _older_than(minor: str, floor: tuple[int, int]) -> bool:
    try:
        major, second = (int(part) for part in minor.split(".")[:2])
    except ValueError:
        return False
    return (major, second) < floor


def _script_ended(obs: Observation) -> Finding:
    code = obs.script_exit
    last = next((line.strip() for line in reversed(obs.log.splitlines()) if line.strip()), "")
    if obs.first("hello") is None:
        return Finding("smoke", Status.ERROR, f"the smoke test's model script could not run in {obs.interpreter.python or 'this interpreter'}"
                       f" (exit code {code})", detail=short(last, 300),
                       fix=FixHint("python-version", "PyTriton needs Python 3.8 or newer; run the smoke test with that environment's python",
                                   ("tritondoctor smoke --python /path/to/env/bin/python",)), area=AREA)
    fix = _log_fix(obs)
    if code == -signal.SIGKILL:
        fix = FixHint(faults.OOM_ID, "SIGKILL without a word usually means the OOM killer (a container or cgroup memory limit)",
                      ("dmesg | grep -i -E 'killed process|out of memory'", "cat /proc/self/cgroup"))
    return Finding("smoke", Status.ERROR,
                   f"the smoke test's model script ended before finishing (exit code {code}, last step: {obs.last_phase()})",
                   detail=short(last, 300), fix=fix, area=AREA)


def _import_failure(error: dict[str, Any], obs: Observation) -> Finding:
    module = error.get("module") or ""
    message = error.get("message") or ""
    interp = obs.interpreter
    if _older_than(interp.minor, (3, 8)):
        return Finding("pytriton", Status.ERROR, f"Python {interp.version} is too old for PyTriton (it needs 3.8 or newer)",
                       detail=message, fix=FixHint("python-version", "use an environment with Python 3.8 or newer",
                                                   ("tritondoctor smoke --python /path/to/env/bin/python",)), area=AREA)
    if module.split(".")[0] == "pytriton" or (not interp.pytriton and "pytriton" in message):
        return Finding("pytriton", Status.ERROR, f"nvidia-pytriton is not installed for {interp.python or 'this Python'}",
                       detail=message, fix=FixHint("install-pytriton", "install it into this environment",
                                                   (f"{python_command(interp)} -m pip install -U nvidia-pytriton",)), area=AREA)
    if module.split(".")[0] == "_ctypes":
        from tritondoctor.checks import libpython

        return libpython.from_log([Match("libpython", message, ())], obs)
    if module:
        from tritondoctor.checks import python_deps

        return python_deps.from_log([Match("python-deps", message, (module,))], obs)
    return Finding("python-deps", Status.ERROR, "importing PyTriton failed: " + short(message),
                   fix=FixHint("reinstall-pytriton", "reinstall it", (f"{python_command(interp)} -m pip install --force-reinstall nvidia-pytriton",)),
                   area=AREA)


def _server_exit(event: dict[str, Any] | None, obs: Observation, explained: bool) -> list[Finding]:
    code = event.get("code") if event else None
    name = (event or {}).get("signal") or signal_name(code)
    if name is None:
        fatal = re.search(r"Signal \((\d+)\) received", obs.log)
        if fatal and int(fatal.group(1)) not in (signal.SIGINT, signal.SIGTERM):
            name = signal_name(-int(fatal.group(1)))
    if name:
        number = -code if isinstance(code, int) and code < 0 else _signal_number(name)
        title = f"tritonserver was killed by {name}" + (f" (signal {number})" if number else "")
        if name == "SIGKILL":
            fix = FixHint("server-signal", "SIGKILL usually comes from the kernel's out-of-memory killer or another process",
                          ("dmesg | grep -i -E 'killed process|out of memory'",))
        else:
            fix = FixHint("server-signal", "a crash inside tritonserver often comes from a mismatched library on the loader path",
                          ("tritondoctor check", "tritondoctor smoke --verbose"))
        status = Status.ERROR if (name in FATAL_SIGNALS or not explained) else Status.WARN
        return [Finding("server-signal", status, title, "The server died before the smoke test finished.",
                        {"exit_code": code, "signal": name}, fix, AREA)]
    if explained:
        return []
    if event is None:
        title = "tritonserver disappeared before the smoke test finished"
    else:
        title = f"tritonserver exited with code {code} before the smoke test finished"
    return [Finding("server-exit", Status.ERROR, title, fix=_log_fix(obs), evidence={"exit_code": code}, area=AREA)]


def _signal_number(name: str) -> int | None:
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None


def _unexplained_error(error: dict[str, Any], obs: Observation) -> Finding:
    phase = error.get("phase") or "run"
    message = short(str(error.get("message") or "unknown error"))
    if phase == "workspace":
        return Finding("workspace", Status.ERROR, message, fix=FixHint(
            "pytriton-home", "point PYTRITON_HOME at a short, writable, exec-allowed directory",
            ("export PYTRITON_HOME=/tmp/pytriton",)), evidence={"phase": phase}, area=AREA)
    finding_id = {"model-load": "model-load", "infer": "infer", "burst": "infer"}.get(phase, "smoke")
    titles = {"server-start": "the server did not start", "model-load": "the model failed to load",
              "infer": "inference failed", "burst": "concurrent inference failed"}
    return Finding(finding_id, Status.ERROR, f"{titles.get(phase, 'the smoke test failed')}: {message}",
                   fix=_log_fix(obs), evidence={"phase": phase}, area=AREA)


def _check_result(result: dict[str, Any]) -> list[Finding]:
    findings: list[Finding] = []
    for protocol, check in (result.get("checks") or {}).items():
        if not check.get("ok"):
            findings.append(Finding("infer", Status.ERROR,
                                    f"{protocol.upper()} inference returned wrong numbers (max error {check.get('max_error'):.3g})",
                                    evidence=check, area=AREA))
    burst = result.get("burst") or {}
    if burst.get("failed"):
        first = (burst.get("failures") or ["?"])[0]
        findings.append(Finding("infer", Status.ERROR,
                                f"{burst['failed']} of the concurrent requests failed: {short(str(first))}",
                                evidence={"failures": burst.get("failures")}, area=AREA))
    return findings


def _timeout(obs: Observation) -> Finding:
    phase = obs.last_phase()
    return Finding("timeout", Status.ERROR,
                   f"the smoke test did not finish within {obs.timeout_s:g} s (last step reached: {phase})",
                   detail="Everything it started has been stopped.",
                   fix=FixHint("timeout", "look at the log, or allow more time", tuple(
                       ([f"less {obs.log_path}"] if obs.log_path else []) + [f"tritondoctor smoke --timeout {int(obs.timeout_s * 2) or 240}"])),
                   area=AREA)


def _log_fix(obs: Observation) -> FixHint | None:
    if not obs.log_path:
        return None
    return FixHint("log", "read the full log", (f"less {obs.log_path}",))


def explain(findings: Iterable[Finding]) -> str:
    """One line per non-OK finding, for logs."""
    return "\n".join(f"[{f.status.value}] {f.id}: {f.title}" for f in findings if f.status is not Status.OK)
