"""The report as Markdown to paste under a GitHub / GitLab issue: a summary table, every finding
with its id and status, the library resolutions, then the long parts folded in <details>."""

from __future__ import annotations

from typing import Any, Callable

STATUS_MARK = {"error": "❌ error", "warn": "⚠️ warn", "ok": "✅ ok", "skip": "➖ skip"}
STATUS_ORDER = {"error": 0, "warn": 1, "ok": 2, "skip": 3}


def render(data: dict[str, Any], redaction_line: str) -> str:
    sections: list[Callable[[dict[str, Any]], list[str]]] = [
        _overview, _findings, _libraries, _resolutions, _gpu, _resources, _packages, _environment, _smoke_log,
    ]
    lines = ["## tritondoctor report", "", _headline(data), "", f"> {redaction_line}", ""]
    for section in sections:
        part = section(data)
        if part:
            lines += part + [""]
    return "\n".join(lines).rstrip() + "\n"


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    text = _cell(value)
    return f"`{text}`" if text and "`" not in text else text


def _headline(data: dict[str, Any]) -> str:
    summary = data.get("summary") or {}
    errors, warnings = summary.get("errors", 0), summary.get("warnings", 0)
    state = f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
    return f"tritondoctor {data.get('tool_version')} · {state} · generated {data.get('generated_at')}"


def _overview(data: dict[str, Any]) -> list[str]:
    system = (data.get("target") or {}).get("system") or {}
    python, triton, gpu, host = data.get("python") or {}, data.get("triton") or {}, data.get("gpu") or {}, data.get("host") or {}
    os_line = (f"{system.get('os')}, {system.get('machine')}, kernel {system.get('kernel')}"
               f"{', WSL' if system.get('wsl') else ''}{', in a container' if system.get('container') else ''}")
    rows = [
        ("OS", os_line),
        ("glibc", system.get("glibc")),
        ("Host", _host_text(host)),
        ("Python", _python_text(python)),
        ("nvidia-pytriton", triton.get("nvidia_pytriton") or "not installed"),
        ("Triton", _triton_text(triton)),
        ("Driver / CUDA", _driver_text(gpu)),
    ]
    return ["| | |", "|---|---|"] + [f"| {name} | {_cell(value)} |" for name, value in rows]


def _host_text(host: dict[str, Any]) -> str:
    parts = [str(host.get("name") or "?")]
    if host.get("machine_id"):
        parts.append(f"machine id {host['machine_id']}")
    if host.get("node_id"):
        parts.append(f"node {host['node_id']} (from {host.get('node_id_from')})")
    return ", ".join(parts)


def _python_text(python: dict[str, Any]) -> str:
    if "error" in python:
        return f"not found: {python['error']}"
    return (f"{python.get('version')} at {python.get('executable')} ({python.get('env_kind')}, "
            f"chosen by {python.get('selected_by')}; shared libpython: {'yes' if python.get('enable_shared') else 'no'})")


def _triton_text(triton: dict[str, Any]) -> str:
    if not triton.get("installed"):
        return "—"
    parts = [f"bundled with nvidia-pytriton {triton.get('nvidia_pytriton')}"]
    if triton.get("libtritonserver"):
        parts.append(str(triton["libtritonserver"]))
    if triton.get("cuda_runtime_bundled"):
        parts.append(f"CUDA runtime {triton['cuda_runtime_bundled']}")
    return ", ".join(parts)


def _driver_text(gpu: dict[str, Any]) -> str:
    if not gpu.get("driver_visible"):
        return "no NVIDIA driver"
    devices = gpu.get("devices") or []
    names = ", ".join(f"{d.get('index')}: {d.get('name')} (cc {d.get('compute_capability')})" for d in devices)
    text = f"driver {gpu.get('driver_version')}, CUDA {gpu.get('cuda_driver_version')}; {len(devices)} GPU(s)"
    text += f": {names}" if names else ""
    return text + (f"; NVML: {gpu['nvml_error']}" if gpu.get("nvml_error") else "")


def _findings(data: dict[str, Any]) -> list[str]:
    findings = sorted(data.get("findings") or [], key=lambda f: STATUS_ORDER.get(f.get("status"), 9))
    lines = ["### Findings", "", "| status | id | finding |", "|---|---|---|"]
    lines += [f"| {STATUS_MARK.get(f['status'], f['status'])} | `{f['id']}` | {_cell(f['title'])} |" for f in findings]
    for finding in findings:
        if finding["status"] in ("error", "warn"):
            lines += [""] + _finding_detail(finding)
    return lines


def _finding_detail(finding: dict[str, Any]) -> list[str]:
    lines = [f"**`{finding['id']}`** — {finding['title']}"]
    if finding.get("detail"):
        lines += ["", finding["detail"]]
    fix = finding.get("fix")
    if fix:
        lines += ["", f"Fix: {fix.get('summary')}"]
        if fix.get("commands"):
            lines += ["```sh", *fix["commands"], "```"]
    return lines


def _libraries(data: dict[str, Any]) -> list[str]:
    libs = data.get("libraries") or {}
    if not libs:
        return []
    lines = ["### Libraries", ""]
    py = libs.get("libpython")
    if py:
        lines.append(f"- **libpython**: the stub needs {_code(py.get('needed'))} → {_code(py.get('resolved'))} "
                     f"(Python {py.get('resolved_version')}, {py.get('how')}); the interpreter's own: "
                     f"{_code(py.get('own'))} (Python {py.get('own_version')})")
    lines += _libstdcxx_lines(libs.get("libstdc++"))
    cuda = libs.get("libcuda")
    if cuda:
        where = f"{_code(cuda['path'])} ({cuda.get('how')})" if cuda.get("path") else "not found"
        lines.append(f"- **libcuda** (as tritonserver would dlopen it): {where}")
    if libs.get("cudart"):
        lines.append(f"- **CUDA runtime** (bundled): {libs['cudart'].get('version')}")
    return lines


def _libstdcxx_lines(info: dict[str, Any] | None) -> list[str]:
    if not info:
        return []
    lines = []
    for provider in info.get("resolved") or []:
        provides = ", ".join(provider.get("provides") or []) or "?"
        lines.append(f"- **libstdc++**: {_code(provider['path'])} ({provider.get('how')}), provides up to {provides}")
    for path, versions in (info.get("needed_by") or {}).items():
        lines.append(f"  - {_code(path)} needs {', '.join(versions)}")
    lines += [f"  - missing: {_code(message)}" for message in info.get("missing") or []]
    return lines


def _resolutions(data: dict[str, Any]) -> list[str]:
    resolutions = data.get("resolutions") or {}
    if not resolutions:
        return []
    lines = ["<details><summary>How the PyTriton binaries resolve</summary>", ""]
    for key, tree in resolutions.items():
        state = "resolves" if tree.get("ok") else "does NOT resolve"
        lines.append(f"- **{key}** {_code(tree.get('file'))}: {state}")
        lines += [f"  - {lib['name']} → {_code(lib.get('path') or 'not found')} ({lib.get('how')})" for lib in tree.get("notable") or []]
        lines += [f"  - missing: {name}" for name in tree.get("missing") or []]
        lines += [f"  - {_code(message)}" for message in (tree.get("version_errors") or []) + (tree.get("errors") or [])]
    return lines + ["", "</details>"]


def _gpu(data: dict[str, Any]) -> list[str]:
    gpu = data.get("gpu") or {}
    if not gpu:
        return []
    visible = _code(gpu.get("cuda_visible_devices") or "unset")
    nodes = ", ".join(gpu.get("device_nodes") or []) or "none"
    return ["### Driver and devices", "", f"- {_driver_text(gpu)}",
            f"- CUDA_VISIBLE_DEVICES: {visible}; device nodes: {nodes}"]


def _resources(data: dict[str, Any]) -> list[str]:
    res = data.get("resources") or {}
    if not res:
        return []
    lines = ["### Resources", ""]
    ws = res.get("workspace")
    if ws:
        lines.append(f"- workspace {_code(ws.get('home'))}: {'writable' if ws.get('writable') else 'NOT writable'}, "
                     f"{'noexec' if ws.get('noexec') else 'exec allowed'}, {_gib(ws.get('free_bytes'))} free ({ws.get('fstype')})")
    shm = res.get("shm")
    if shm:
        lines.append(f"- {_code(shm.get('path'))}: {_gib(shm.get('free'))} free of {_gib(shm.get('total'))}")
    ports = res.get("ports") or {}
    if ports:
        lines.append("- ports: " + ", ".join(f"{p} {state}" for p, state in ports.items()))
    if res.get("stale_servers"):
        lines.append(f"- tritonserver processes already running: {', '.join(map(str, res['stale_servers']))}")
    return lines


def _gib(value: Any) -> str:
    return f"{value / 2**30:.1f} GiB" if isinstance(value, (int, float)) else "?"


def _packages(data: dict[str, Any]) -> list[str]:
    packages = data.get("packages") or {}
    if not packages:
        return []
    return ["### Packages", "", ", ".join(f"{name} {version}" for name, version in packages.items())]


def _environment(data: dict[str, Any]) -> list[str]:
    env = data.get("environment") or {}
    if not env:
        return []
    return ["<details><summary>Environment variables</summary>", "", "```sh",
            *[f"{name}={value}" for name, value in env.items()], "```", "", "</details>"]


def _smoke_log(data: dict[str, Any]) -> list[str]:
    log = data.get("smoke_log")
    if not log:
        return []
    tail = [str(line) for line in log.get("tail") or []]
    fence = _fence(tail)
    return [f"<details><summary>Smoke log: last {len(tail)} lines of {log.get('file')}</summary>",
            "", f"{fence}text", *tail, fence, "", "</details>"]


def _fence(lines: list[str]) -> str:
    """A code fence longer than any run of backticks in the lines, so a log cannot close it."""
    import re

    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)
