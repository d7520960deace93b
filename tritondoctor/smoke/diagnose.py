"""From what a smoke run saw (server log, the model script's events, the stub's mappings) to findings.

The ids are those of `tritondoctor check` (libpython, glibcxx, libs, cuda-driver, cuda-runtime,
ports, shm, python-deps, pytriton, workspace) plus smoke-only ones: model-load, server-signal, server-exit, infer,
timeout, smoke. Messages that a CPU-only host always prints are explained as harmless instead.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable

from tritondoctor import remedies
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.smoke.observation import Interpreter, Observation

AREA = "Smoke test"
FATAL_SIGNALS = {"SIGSEGV", "SIGABRT", "SIGBUS", "SIGFPE", "SIGILL", "SIGKILL", "SIGSYS", "SIGTRAP"}
_PIP_NAMES = {"zmq": "pyzmq", "yaml": "pyyaml", "google": "protobuf", "sh": "sh", "numpy": "numpy"}


@dataclass(frozen=True)
class Match:
    id: str
    line: str  # the log line that matched, trimmed
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Signature:
    id: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class Harmless:
    pattern: re.Pattern[str]
    why: str
    gpu_only_error: bool = False  # an error when the host has a GPU, harmless when it has none


def _re(text: str) -> re.Pattern[str]:
    return re.compile(text)


# Order matters: the first id that matches a line wins it, most specific first.
SIGNATURES: tuple[Signature, ...] = (
    Signature("libpython", _re(r"(libpython3\.\d+[a-z]*\.so(?:\.[\d.]+)?): cannot open shared object file")),
    Signature("libpython", _re(r"'_thread\.RLock' object has no attribute '_recursion_count'")),
    Signature("libpython", _re(r"No module named '_ctypes'")),
    Signature("glibcxx", _re(r"(\S*libstdc\+\+\.so[.\d]*)?:? ?version [`'‘]((?:GLIBCXX|CXXABI)_[\d.]+)['’] not found")),
    Signature("libs", _re(r"([\w.+-]+\.so[\w.]*): cannot open shared object file")),
    Signature("cuda-driver", _re(r"Driver/library version mismatch")),
    Signature("ports", _re(r"Socket '([^']+)' already in use")),
    Signature("ports", _re(r"[Aa]ddress already in use")),
    Signature("shm", _re(r"Unable to initialize shared memory key '([^']*)'.*?No space left on device")),
    Signature("shm", _re(r"Unable to initialize shared memory key '([^']*)'.*?File exists")),
    Signature("shm", _re(r"Stub process '([^']+)' is not healthy")),
    Signature("python-deps", _re(r"missing required packages.*?Missing modules ([\w, ]+)")),
    Signature("python-deps", _re(r"No module named '([\w.]+)'")),
    Signature("pytriton", _re(r"Failed to initialize stub, stub process exited unexpectedly")),
    Signature("workspace", _re(r'ipc path "([^"]+)" is longer than (\d+) characters')),
    Signature("workspace", _re(r"AF_UNIX path too long")),
    Signature("model-load", _re(r"failed to load '([^']+)'")),
)

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
    ),
)


def scan(text: str) -> list[Match]:
    """Every line of `text` (and every embedded "\\n" line of a quoted message) that a signature names."""
    matches: list[Match] = []
    seen: set[tuple[str, str]] = set()
    for raw in text.splitlines():
        for line in raw.replace("\\n", "\n").splitlines():
            for signature in SIGNATURES:
                found = signature.pattern.search(line)
                if not found:
                    continue
                key = (signature.id, found.group(0))
                if key not in seen:
                    seen.add(key)
                    matches.append(Match(signature.id, line.strip()[:400], tuple(g or "" for g in found.groups())))
                break
    return matches


# Signatures after which a load may hang rather than fail (the stub cannot even start), so the
# runner stops waiting by itself; the others come with an error the model script reports.
FAST_FAIL_IDS = frozenset({"libpython", "glibcxx", "libs", "cuda-driver", "ports", "shm", "pytriton", "workspace"})


def is_fatal(line: str) -> bool:
    """Whether a single log line already decides that the run has failed."""
    return any(sig.pattern.search(line) for sig in SIGNATURES if sig.id in FAST_FAIL_IDS)


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


# --- fix hints -----------------------------------------------------------------------------


def loader_path_fix(interp: Interpreter, directory: str, summary: str) -> FixHint:
    """Same remedy as the checks': the environment's activation hooks, or an export."""
    return remedies.hooks_fix(interp.env_kind, summary, now=[remedies.prepend_export([directory])])


def _python(interp: Interpreter) -> str:
    return shlex.quote(interp.python) if interp.python else "python"


# --- per-id builders -----------------------------------------------------------------------


def _libpython(matches: list[Match], obs: Observation) -> Finding:
    interp = obs.interpreter
    first = matches[0]
    wanted = interp.own_libpython
    loaded = {p: v for p, v in obs.stub_libpython.items() if not wanted or not _same(p, wanted)}
    evidence: dict[str, Any] = {"log": [m.line for m in matches[:3]], "interpreter": interp.python,
                                "version": interp.version, "libdir": interp.libdir, "own_libpython": wanted}
    if obs.stub_libpython:
        evidence["stub_loaded"] = obs.stub_libpython
    missing = first.groups[0] if first.groups and first.groups[0].startswith("libpython") else None
    if missing:
        title = f"the Python backend stub cannot find {missing}"
    elif loaded:
        path, version = next(iter(loaded.items()))
        title = f"the Python backend stub loaded {path} ({version or 'unknown version'}) instead of this interpreter's libpython ({interp.version})"
    else:
        title = f"the Python backend stub runs with a libpython that does not match this interpreter ({interp.version})"
    if missing:
        detail = (f"PyTriton's stub links against {missing}; the loader looks on LD_LIBRARY_PATH and in the system's "
                  f"cache, and this interpreter's copy in {interp.libdir or '(unknown)'} is in neither.")
    else:
        detail = ("PyTriton's stub links against libpython; the loader gave it another Python's library, whose "
                  f"build does not fit this interpreter's standard library ({_short(first.line, 160)}).")
    if not interp.enable_shared or not wanted:
        fix = FixHint("python-shared", "this interpreter has no shared libpython: use a Python built with --enable-shared",
                      ("# pyenv: env PYTHON_CONFIGURE_OPTS=--enable-shared pyenv install --force " + (interp.version or "3.X.Y"),))
        return Finding("libpython", Status.ERROR, title, detail, evidence, fix, AREA)
    directory = os.path.dirname(wanted)
    fix = loader_path_fix(interp, directory, f"put {directory} first on the loader path so the stub finds {os.path.basename(wanted)}")
    return Finding("libpython", Status.ERROR, title, detail, evidence, fix, AREA)


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _stub_minor(matches: list[Match]) -> str | None:
    for match in matches:
        found = re.match(r"libpython(3\.\d+)", match.groups[0] if match.groups else "")
        if found:
            return found.group(1)
    return None


def _pytriton_stub(matches: list[Match], obs: Observation, stub_minor: str | None) -> Finding:
    interp = obs.interpreter
    if stub_minor and interp.minor and stub_minor != interp.minor:
        title = f"the server ran the Python backend stub built for Python {stub_minor}, but the interpreter is {interp.minor}"
    else:
        title = "the Python backend stub exited while the model was loading (Failed to initialize stub)"
    detail = ("PyTriton copies the stub for the running Python's minor version; a stub for another minor, or one "
              "that cannot start, makes every model load fail.")
    fix = FixHint("reinstall-pytriton", "reinstall nvidia-pytriton for this interpreter, then re-check",
                  (f"{_python(interp)} -m pip install --force-reinstall --no-deps nvidia-pytriton" + (f"=={interp.pytriton}" if interp.pytriton else ""),
                   "tritondoctor check"))
    return Finding("pytriton", Status.ERROR, title, detail, {"log": [m.line for m in matches[:3]]}, fix, AREA)


def _workspace(matches: list[Match], obs: Observation) -> Finding:
    path, limit = (matches[0].groups + ("", ""))[:2]
    size = f" ({len(path)} > {limit} characters)" if path and limit else ""
    title = f"PyTriton's socket path is too long for a Unix socket{size}"
    detail = "PyTriton puts its zmq sockets under PYTRITON_HOME; a long home makes every model fail."
    fix = FixHint("pytriton-home", "point PYTRITON_HOME at a short, writable directory", ("export PYTRITON_HOME=/tmp/pytriton",))
    return Finding("workspace", Status.ERROR, title, detail, {"log": [m.line for m in matches[:3]]}, fix, AREA)


def _glibcxx(matches: list[Match], obs: Observation) -> Finding:
    first = matches[0]
    library, version = (first.groups + ("", ""))[:2]
    title = f"libstdc++ is too old: {version} not found" + (f" in {library}" if library else "")
    commands = ["tritondoctor check"]
    if obs.interpreter.env_kind == "conda":
        commands.insert(0, "conda install -c conda-forge 'libstdcxx-ng>=12'")
    fix = FixHint("libstdcxx", "load a libstdc++ at least as new as the one tritonserver was built with", tuple(commands))
    detail = "A library earlier on the loader path (often a conda env's or an LD_LIBRARY_PATH entry) shadows the system's newer libstdc++."
    return Finding("glibcxx", Status.ERROR, title, detail, {"log": [m.line for m in matches[:3]]}, fix, AREA)


def _libs(matches: list[Match], obs: Observation) -> Finding:
    names = sorted({m.groups[0] for m in matches if m.groups})
    title = "a shared library could not be found: " + ", ".join(names)
    fix = FixHint("libs", "find which directory should provide it and put that on the loader path",
                  ("tritondoctor check",))
    return Finding("libs", Status.ERROR, title, "", {"log": [m.line for m in matches[:3]]}, fix, AREA)


def _cuda_driver(matches: list[Match], obs: Observation) -> Finding:
    title = "the NVIDIA kernel module and the user-space driver differ (Driver/library version mismatch)"
    fix = FixHint("cuda-driver", "the driver was updated without a reboot: reboot (or reload the nvidia kernel modules)",
                  ("cat /proc/driver/nvidia/version", "nvidia-smi", "sudo reboot"))
    return Finding("cuda-driver", Status.ERROR, title, "", {"log": [m.line for m in matches[:3]]}, fix, AREA)


def _cuda_runtime(matches: list[Match], obs: Observation) -> Finding:
    title = "the NVIDIA driver is too old for the CUDA runtime bundled with tritonserver"
    fix = FixHint("upgrade-driver", "install a driver that supports the bundled CUDA (nvidia-smi shows what the driver supports)",
                  ("nvidia-smi", "tritondoctor check", "# or run on the CPU: export CUDA_VISIBLE_DEVICES="))
    return Finding("cuda-runtime", Status.ERROR, title, "", {"log": [m.line for m in matches[:3]]}, fix, AREA)


def _ports(matches: list[Match], obs: Observation) -> Finding:
    sockets = sorted({m.groups[0] for m in matches if m.groups and m.groups[0]})
    port = sockets[0].rsplit(":", 1)[-1] if sockets else ""
    title = "a server port is already in use" + (f": {', '.join(sockets)}" if sockets else "")
    commands = (f"ss -ltnp 'sport = :{port}'",) if port else ("ss -ltnp",)
    fix = FixHint("ports", "stop the process that holds the port, or give PyTriton other ports "
                           "(TritonConfig(http_port=..., grpc_port=..., metrics_port=...))", commands)
    return Finding("ports", Status.ERROR, title, "", {"log": [m.line for m in matches[:3]], "ports": obs.ports}, fix, AREA)


def _shm(matches: list[Match], obs: Observation) -> Finding:
    evidence = {"log": [m.line for m in matches[:3]]}
    if any("File exists" in m.line for m in matches):
        title = "a shared-memory segment of an earlier, killed server is still there (File exists)"
        fix = FixHint("shm-cleanup", "remove the leftover segments (only those of servers that are gone)",
                      ("tritondoctor check", "ls -la /dev/shm"))
        return Finding("shm", Status.ERROR, title, "", evidence, fix, AREA)
    free = _shm_free_mib()
    if any("No space left" in m.line for m in matches):
        title = "/dev/shm is too small for the Python backend (No space left on device)"
    else:
        title = "the Python backend stub stopped answering (not healthy): in a container this is usually a small /dev/shm"
    title += f"; {free} MiB free" if free is not None else ""
    fix = FixHint("shm-size", "give the container more shared memory (each Python model instance needs some)",
                  ("df -h /dev/shm", "# docker: docker run --shm-size=1g ... (or --ipc=host)"))
    return Finding("shm", Status.ERROR, title, "", evidence, fix, AREA)


def _shm_free_mib() -> int | None:
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return st.f_bavail * st.f_frsize // (1024 * 1024)


def _python_deps(matches: list[Match], obs: Observation) -> Finding:
    modules: list[str] = []
    for match in matches:
        for name in re.split(r"[,\s]+", match.groups[0] if match.groups else ""):
            top = name.split(".")[0]
            if top and top not in modules:
                modules.append(top)
    packages = [_PIP_NAMES.get(m, m) for m in modules]
    title = "Python modules are missing: " + ", ".join(modules) if modules else "Python packages PyTriton needs are missing"
    fix = FixHint("python-deps", "install them into this environment",
                  (f"{_python(obs.interpreter)} -m pip install " + " ".join(packages or ["numpy", "pyzmq"]),))
    return Finding("python-deps", Status.ERROR, title, "", {"log": [m.line for m in matches[:3]]}, fix, AREA)


def _model_load(matches: list[Match], obs: Observation) -> Finding:
    error = _error_event(obs)
    message = (error or {}).get("message") or matches[0].line
    title = "the model failed to load: " + _short(message)
    fix = FixHint("model-load", "read the server log around the failure", (f"less {obs.log_path}",) if obs.log_path else ())
    return Finding("model-load", Status.ERROR, title, "", {"log": [m.line for m in matches[:3]]}, fix, AREA)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


BUILDERS: dict[str, Callable[[list[Match], Observation], Finding]] = {
    "libpython": _libpython,
    "glibcxx": _glibcxx,
    "libs": _libs,
    "cuda-driver": _cuda_driver,
    "cuda-runtime": _cuda_runtime,
    "ports": _ports,
    "shm": _shm,
    "python-deps": _python_deps,
    "model-load": _model_load,
}


def _error_event(obs: Observation) -> dict[str, Any] | None:
    return next((e for e in reversed(obs.events) if e.get("ev") == "error"), None)


def from_log(text: str, obs: Observation) -> list[Finding]:
    """Findings for the signatures in `text` (no events needed); one per id, root causes first."""
    matches = scan(text)
    if obs.gpu_present:
        for line in text.splitlines():
            if "CUDA driver version is insufficient" in line:
                matches.append(Match("cuda-runtime", line.strip()[:400], ()))
                break
    by_id: dict[str, list[Match]] = {}
    for match in matches:
        by_id.setdefault(match.id, []).append(match)
    findings: list[Finding] = []
    stub_minor = _stub_minor(by_id.get("libpython", []))
    wrong_stub = bool(stub_minor and obs.interpreter.minor and stub_minor != obs.interpreter.minor)
    if wrong_stub:
        by_id.setdefault("pytriton", []).extend(by_id.pop("libpython"))
    for finding_id in ("libpython", "glibcxx", "libs", "cuda-driver", "cuda-runtime", "ports", "shm", "python-deps"):
        if finding_id in by_id:
            findings.append(BUILDERS[finding_id](by_id[finding_id], obs))
    if "pytriton" in by_id:
        findings.append(_pytriton_stub(by_id["pytriton"], obs, stub_minor))
    if "workspace" in by_id:
        findings.append(_workspace(by_id["workspace"], obs))
    # A failed load is the consequence of the causes above; say it only when nothing explains it.
    if "model-load" in by_id and not findings:
        findings.append(_model_load(by_id["model-load"], obs))
    return findings


def diagnose(obs: Observation) -> list[Finding]:
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
                       f" (exit code {code})", detail=_short(last, 300),
                       fix=FixHint("python-version", "PyTriton needs Python 3.8 or newer; run the smoke test with that environment's python",
                                   ("tritondoctor smoke --python /path/to/env/bin/python",)), area=AREA)
    return Finding("smoke", Status.ERROR,
                   f"the smoke test's model script ended before finishing (exit code {code}, last step: {obs.last_phase()})",
                   detail=_short(last, 300), fix=_log_fix(obs), area=AREA)


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
                                                   (f"{_python(interp)} -m pip install -U nvidia-pytriton",)), area=AREA)
    if module.split(".")[0] == "_ctypes":
        return _libpython([Match("libpython", message, ())], obs)
    if module:
        return _python_deps([Match("python-deps", message, (module,))], obs)
    return Finding("python-deps", Status.ERROR, "importing PyTriton failed: " + _short(message),
                   fix=FixHint("reinstall-pytriton", "reinstall it", (f"{_python(interp)} -m pip install --force-reinstall nvidia-pytriton",)),
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
    message = _short(str(error.get("message") or "unknown error"))
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
                                f"{burst['failed']} of the concurrent requests failed: {_short(str(first))}",
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
