"""What differs between two diagnoses (`check --json` or `report --json` files), most relevant
first: findings whose status changed (errors first), the libraries that decide whether PyTriton
starts (libpython, libstdc++, CUDA), package versions, environment variables, driver and devices.

Both formats are read into one `Side`; a `check --json` file carries fewer facts, so those are
taken from the findings' evidence (which is where `check` puts them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

STATUS_RANK = {"skip": 0, "ok": 1, "warn": 2, "error": 3}
LIBRARY_ORDER = ("libpython", "libstdc++", "cudart", "libcuda")
# Variables listed first when they differ: the ones that decide how the binaries resolve.
ENV_FIRST = ("LD_LIBRARY_PATH", "LD_PRELOAD", "CONDA_PREFIX", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH",
             "PYTRITON_HOME", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "PATH")
# Categories in order of relevance; a difference in any of these "matters" (exit 1).
CATEGORIES = ("finding", "library", "package", "environment", "driver", "device")


class DiffInputError(ValueError):
    """The document is not a tritondoctor check / report JSON."""


@dataclass
class Side:
    label: str
    findings: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (worst status, titles)
    libraries: dict[str, dict[str, Any]] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    environment: Optional[dict[str, Optional[str]]] = None  # None: the file does not say
    environment_partial: bool = False  # a check --json file: only the variables it names are known
    driver: dict[str, Any] = field(default_factory=dict)
    devices: Optional[list[str]] = None
    about: dict[str, Any] = field(default_factory=dict)  # host and target: context, not a difference


@dataclass(frozen=True)
class Difference:
    category: str
    name: str
    a: Any
    b: Any
    matters: bool = True
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"category": self.category, "name": self.name, "a": self.a, "b": self.b,
                "matters": self.matters, "note": self.note}


def read_side(doc: Any, label: str) -> Side:
    if not isinstance(doc, dict) or not isinstance(doc.get("findings"), list):
        raise DiffInputError("not a tritondoctor `check --json` or `report --json` document (no findings list)")
    findings = _findings(doc["findings"])
    by_id = {f.get("id"): f for f in doc["findings"] if isinstance(f, dict)}
    report = "libraries" in doc
    return Side(
        label=label,
        findings=findings,
        libraries=_report_libraries(doc) if report else _evidence_libraries(by_id),
        packages=_report_packages(doc) if report else _evidence_packages(doc, by_id),
        environment=_environment(doc, by_id),
        environment_partial=not isinstance(doc.get("environment"), dict),
        driver=_report_driver(doc) if report else _evidence_driver(by_id),
        devices=_report_devices(doc) if report else None,
        about=_about(doc),
    )


def _findings(items: list[Any]) -> dict[str, tuple[str, list[str]]]:
    out: dict[str, tuple[str, list[str]]] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise DiffInputError("a finding without an id")
        status, titles = out.get(item["id"], ("skip", []))
        new = str(item.get("status", "skip"))
        worst = new if STATUS_RANK.get(new, 0) > STATUS_RANK.get(status, 0) else status
        out[item["id"]] = (worst, titles + [str(item.get("title", ""))])
    return out


def _evidence(by_id: dict[Any, Any], check: str) -> dict[str, Any]:
    finding = by_id.get(check) or {}
    evidence = finding.get("evidence") if isinstance(finding, dict) else None
    return evidence if isinstance(evidence, dict) else {}


def _lib(path: Any, version: Any = None, how: Any = None) -> dict[str, Any]:
    return {"path": path, "version": version, "how": how}


def _evidence_libraries(by_id: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    py = _evidence(by_id, "libpython")
    if py.get("needed"):
        out["libpython"] = _lib(py.get("resolved"), py.get("resolved_version"), py.get("how"))
    cxx = _evidence(by_id, "glibcxx")
    paths = cxx.get("libstdcxx") or ([cxx["provider"]] if cxx.get("provider") else [])
    if paths:
        out["libstdc++"] = _lib(", ".join(map(str, paths)), ", ".join(map(str, cxx.get("missing") or [])) or None,
                                cxx.get("how"))
    rt = _evidence(by_id, "cuda-runtime")
    if rt.get("cudart"):
        out["cudart"] = _lib(rt.get("file"), rt.get("cudart"))
    drv = _evidence(by_id, "cuda-driver")
    if "libcuda" in drv:
        out["libcuda"] = _lib(drv.get("libcuda"))
    return out


def _report_libraries(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    libs = doc.get("libraries") or {}
    out: dict[str, dict[str, Any]] = {}
    if libs.get("libpython"):
        py = libs["libpython"]
        out["libpython"] = _lib(py.get("resolved"), py.get("resolved_version"), py.get("how"))
    cxx = libs.get("libstdc++") or {}
    if cxx.get("resolved"):
        paths = ", ".join(str(r.get("path")) for r in cxx["resolved"])
        missing = ", ".join(cxx.get("missing") or []) or None
        out["libstdc++"] = _lib(paths, missing, ", ".join(str(r.get("how")) for r in cxx["resolved"]))
    if libs.get("cudart"):
        out["cudart"] = _lib(libs["cudart"].get("path"), libs["cudart"].get("version"))
    if libs.get("libcuda"):
        out["libcuda"] = _lib(libs["libcuda"].get("path"), None, libs["libcuda"].get("how"))
    return out


def _python_version(doc: dict[str, Any]) -> dict[str, str]:
    version = (doc.get("target") or {}).get("version")
    return {"python": str(version)} if version else {}


def _evidence_packages(doc: dict[str, Any], by_id: dict[Any, Any]) -> dict[str, str]:
    out = _python_version(doc)
    install = (doc.get("target") or {}).get("pytriton_install") or {}
    if install.get("version"):
        out["nvidia-pytriton"] = str(install["version"])
    for item in _evidence(by_id, "python-deps").get("checked") or []:
        name, _, version = str(item).partition(" ")
        out[name] = version
    return out


def _report_packages(doc: dict[str, Any]) -> dict[str, str]:
    out = _python_version(doc)
    out.update({str(k): str(v) for k, v in (doc.get("packages") or {}).items()})
    return out


def _environment(doc: dict[str, Any], by_id: dict[Any, Any]) -> Optional[dict[str, Optional[str]]]:
    env = doc.get("environment")
    if isinstance(env, dict):
        return {str(k): None if v is None else str(v) for k, v in env.items()}
    if "ld-library-path" not in by_id:
        return None
    # check --json: the ld-library-path finding carries the value, and omits it when unset.
    value = _evidence(by_id, "ld-library-path").get("ld_library_path")
    return {"LD_LIBRARY_PATH": value}


def _evidence_driver(by_id: dict[Any, Any]) -> dict[str, Any]:
    drv = _evidence(by_id, "cuda-driver")
    return {k: drv.get(k) for k in ("driver_version", "cuda_driver_version", "nvml_error") if k in drv}


def _report_driver(doc: dict[str, Any]) -> dict[str, Any]:
    gpu = doc.get("gpu") or {}
    return {k: gpu.get(k) for k in ("driver_version", "cuda_driver_version", "nvml_error", "cuda_visible_devices")}


def _report_devices(doc: dict[str, Any]) -> list[str]:
    devices = (doc.get("gpu") or {}).get("devices") or []
    return [f"{d.get('index')}: {d.get('name')} (cc {d.get('compute_capability')})" for d in devices]


def _about(doc: dict[str, Any]) -> dict[str, Any]:
    target, host = doc.get("target") or {}, doc.get("host") or {}
    return {"host": host.get("name"), "machine_id": host.get("machine_id"), "node_id": host.get("node_id"),
            "python": target.get("python"), "env_kind": target.get("env_kind"),
            "errors": (doc.get("summary") or {}).get("errors")}


def compare(a: Side, b: Side) -> list[Difference]:
    """Every difference, most relevant first; those with matters=False are context only."""
    diffs = _finding_diffs(a, b) + _library_diffs(a, b) + _package_diffs(a, b) + _environment_diffs(a, b)
    diffs += _driver_diffs(a, b)
    return sorted(diffs, key=lambda d: (not d.matters, CATEGORIES.index(d.category)))


def _finding_diffs(a: Side, b: Side) -> list[Difference]:
    changed: list[tuple[int, Difference]] = []
    context: list[Difference] = []
    for check in _ordered_keys(a.findings, b.findings):
        status_a, titles_a = a.findings.get(check, (None, []))
        status_b, titles_b = b.findings.get(check, (None, []))
        if status_a != status_b:
            rank = max(STATUS_RANK.get(status_a or "", 0), STATUS_RANK.get(status_b or "", 0))
            # The title of the worse side says what is wrong.
            worse = titles_a if STATUS_RANK.get(status_a or "", 0) >= STATUS_RANK.get(status_b or "", 0) else titles_b
            title = (worse or titles_a or titles_b or [""])[0]
            changed.append((-rank, Difference("finding", check, status_a, status_b, note=title)))
        elif titles_a != titles_b:
            context.append(Difference("finding", check, "; ".join(titles_a), "; ".join(titles_b), matters=False,
                                      note=f"{status_a} in both, reads differently"))
    return [d for _, d in sorted(changed, key=lambda item: item[0])] + context


def _library_diffs(a: Side, b: Side) -> list[Difference]:
    out = []
    for name in sorted(set(a.libraries) | set(b.libraries), key=_library_rank):
        lib_a, lib_b = a.libraries.get(name), b.libraries.get(name)
        if _lib_key(lib_a) != _lib_key(lib_b):
            out.append(Difference("library", name, lib_a, lib_b))
    return out


def _library_rank(name: str) -> tuple[int, str]:
    return (LIBRARY_ORDER.index(name) if name in LIBRARY_ORDER else len(LIBRARY_ORDER), name)


def _lib_key(lib: Optional[dict[str, Any]]) -> Any:
    return None if lib is None else (lib.get("path"), lib.get("version"))


def _package_diffs(a: Side, b: Side) -> list[Difference]:
    first = ("python", "nvidia-pytriton")
    names = sorted(set(a.packages) | set(b.packages), key=lambda n: (n not in first, first.index(n) if n in first else 0, n))
    return [Difference("package", n, a.packages.get(n), b.packages.get(n))
            for n in names if a.packages.get(n) != b.packages.get(n)]


def _environment_diffs(a: Side, b: Side) -> list[Difference]:
    if a.environment is None or b.environment is None:
        return []
    # A variable missing from a report is unset; missing from a check --json file, unknown.
    partial = [side.environment for side in (a, b) if side.environment_partial and side.environment is not None]
    names = set().union(*partial) if partial else set(a.environment) | set(b.environment)
    ordered = sorted(names, key=lambda n: (ENV_FIRST.index(n) if n in ENV_FIRST else len(ENV_FIRST), n))
    # Compared as recorded, shown redacted: two different tokens differ, and neither is shown.
    out = []
    for name in ordered:
        if a.environment.get(name) != b.environment.get(name):
            shown_a, shown_b = _redacted(name, a.environment.get(name), b.environment.get(name))
            out.append(Difference("environment", name, shown_a, shown_b))
    return out


def _redacted(name: str, a: Optional[str], b: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """Secrets hidden (a `check --json` file is not redacted); paths and names kept, since they
    are what differs."""
    from tritondoctor.share.redact import Redactor, secret_rules

    redactor = Redactor(secret_rules({}))
    shown = [None if v is None else redactor.walk({name: v})[name] for v in (a, b)]
    return shown[0], shown[1]


def _driver_diffs(a: Side, b: Side) -> list[Difference]:
    out = [Difference("driver", k, a.driver.get(k), b.driver.get(k))
           for k in _ordered_keys(a.driver, b.driver) if a.driver.get(k) != b.driver.get(k)]
    if a.devices is not None and b.devices is not None and a.devices != b.devices:
        out.append(Difference("device", "GPUs", a.devices, b.devices))
    return out


def _ordered_keys(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys([*a, *b]))


def diff_json(a: Side, b: Side, diffs: list[Difference]) -> dict[str, Any]:
    return {
        "a": {"file": a.label, **a.about},
        "b": {"file": b.label, **b.about},
        "matters": sum(d.matters for d in diffs),
        "differences": [d.to_json() for d in diffs],
    }


def render_text(a: Side, b: Side, diffs: list[Difference]) -> str:
    lines = [f"tritondoctor diff  A: {a.label}  B: {b.label}", f"  A: {_about_text(a.about)}",
             f"  B: {_about_text(b.about)}", ""]
    matters = [d for d in diffs if d.matters]
    context = [d for d in diffs if not d.matters]
    if matters:
        lines.append(f"{len(matters)} difference{'s' * (len(matters) != 1)} that matter, most relevant first:")
        lines += [f"  {i}. {_difference_text(d)}" for i, d in enumerate(matters, 1)]
    else:
        lines.append("No differences that matter.")
    if context:
        lines += ["", "Also different (context):"] + [f"  - {_difference_text(d)}" for d in context]
    return "\n".join(lines) + "\n"


def _about_text(about: dict[str, Any]) -> str:
    host = about.get("host") or "?"
    node = f" node {about['node_id']}" if about.get("node_id") else ""
    return f"host {host}{node}, Python {about.get('python')} ({about.get('env_kind')}), {about.get('errors')} error(s)"


def _difference_text(d: Difference) -> str:
    if d.category == "finding" and d.matters:
        return f"finding {d.name}: {d.a or 'absent'} → {d.b or 'absent'} ({d.note})"
    if d.category == "finding":
        return f"finding {d.name} ({d.note}): {d.a!r} → {d.b!r}"
    if d.category == "library":
        return f"{d.name}: {_lib_text(d.a)} → {_lib_text(d.b)}"
    if d.category == "environment":
        return f"{d.name}: {_value(d.a)} → {_value(d.b)}"
    return f"{d.category} {d.name}: {_value(d.a)} → {_value(d.b)}"


def _lib_text(lib: Optional[dict[str, Any]]) -> str:
    if lib is None:
        return "not recorded"
    text = str(lib.get("path") or "not found")
    if lib.get("version"):
        text += f" ({lib['version']})"
    return text + (f" via {lib['how']}" if lib.get("how") else "")


def _value(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)
