"""Facts about the *target* interpreter: the Python whose environment PyTriton will run in.

tritondoctor may itself be installed elsewhere (pipx, another venv), so these facts come from
running a tiny probe in the target interpreter. The probe uses the standard library only and
imports none of the user's packages (versions are read from installed metadata).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tritondoctor.cache import USER_CACHE_DIR, JsonCache
from tritondoctor.errors import UsageError
from tritondoctor.facts.inputs import EnvReads

if TYPE_CHECKING:
    import subprocess

# Distributions whose installed versions checks care about (PEP 503 normalised names).
WATCHED_DISTRIBUTIONS = (
    "nvidia-pytriton", "numpy", "pyzmq", "torch", "tritonclient", "pip", "psutil",
    "grpcio", "protobuf", "sh", "wrapt", "typer", "typing-inspect", "importlib-metadata",
)

_PROBE = r"""
import json, os, sys, sysconfig
out = {
    "executable": sys.executable,
    "version": list(sys.version_info[:3]),
    "version_string": sys.version.split()[0],
    "implementation": sys.implementation.name,
    "abiflags": getattr(sys, "abiflags", ""),
    "prefix": sys.prefix,
    "base_prefix": getattr(sys, "base_prefix", sys.prefix),
    "exec_prefix": sys.exec_prefix,
    "libdir": sysconfig.get_config_var("LIBDIR"),
    "instsoname": sysconfig.get_config_var("INSTSONAME"),
    "ldlibrary": sysconfig.get_config_var("LDLIBRARY"),
    "enable_shared": bool(sysconfig.get_config_var("Py_ENABLE_SHARED")),
    "multiarch": sysconfig.get_config_var("MULTIARCH"),
    "purelib": sysconfig.get_paths().get("purelib"),
    "platlib": sysconfig.get_paths().get("platlib"),
    "sys_path": [p for p in sys.path if p],
}
try:
    import site
    out["site_packages"] = list(site.getsitepackages()) + [site.getusersitepackages()]
except Exception:
    out["site_packages"] = []
dists = {}
try:
    from importlib import metadata
    for name in WATCHED:
        try:
            d = metadata.distribution(name)
        except Exception:
            continue
        files = None
        loc = None
        try:
            loc = str(d.locate_file(""))
        except Exception:
            pass
        requires = [r for r in (d.requires or []) if "extra ==" not in r]
        wheel = d.read_text("WHEEL") or ""
        tags = [l.split(":", 1)[1].strip() for l in wheel.splitlines() if l.startswith("Tag:")]
        dists[name] = {"version": d.version, "location": loc, "requires": requires, "tags": tags}
except Exception as exc:
    out["metadata_error"] = repr(exc)
out["distributions"] = dists
print(json.dumps(out))
"""


MAX_CACHED_PROBES = 32

# How long the probe may take: a cold interpreter on a slow network file system with a large
# site-packages takes seconds, not tens of them. TRITONDOCTOR_PROBE_TIMEOUT overrides it (tests).
PROBE_TIMEOUT_ENV = "TRITONDOCTOR_PROBE_TIMEOUT"
DEFAULT_PROBE_TIMEOUT_S = 20.0
MAX_PROBE_TIMEOUT_S = 600.0

# The variables that shape what the probe reports (its cache key); the probe runs with the whole
# environment, but nothing else in it changes sys.path, site-packages or sysconfig.
PROBE_ENV = ("PYTHONPATH", "PYTHONHOME", "PYTHONNOUSERSITE", "PYTHONUSERBASE", "_PYTHON_SYSCONFIGDATA_NAME")
READS = EnvReads(names=frozenset(PROBE_ENV))
# What choose_interpreter reads when no --python is given.
CHOOSE_READS = EnvReads(names=frozenset({"PATH", "VIRTUAL_ENV", "CONDA_PREFIX"}))


class TargetError(Exception):
    """The target interpreter could not be found or probed; the message is one line for the user."""


@dataclass(frozen=True)
class Distribution:
    name: str
    version: str
    location: str | None
    requires: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetPython:
    executable: str
    version: tuple[int, int, int]
    version_string: str
    implementation: str
    abiflags: str
    prefix: str
    base_prefix: str
    exec_prefix: str
    libdir: str | None
    instsoname: str | None
    ldlibrary: str | None
    enable_shared: bool
    multiarch: str | None
    purelib: str | None
    platlib: str | None
    sys_path: tuple[str, ...]
    site_packages: tuple[str, ...] = ()  # site.getsitepackages() + the user site, as PyTriton asks
    distributions: Mapping[str, Distribution] = field(default_factory=dict)
    selected_by: str = ""  # why this interpreter: "--python", "CONDA_PREFIX", "VIRTUAL_ENV", "PATH"

    @property
    def minor(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def in_venv(self) -> bool:
        return os.path.realpath(self.prefix) != os.path.realpath(self.base_prefix)

    @property
    def is_conda(self) -> bool:
        return os.path.isdir(os.path.join(self.prefix, "conda-meta"))

    @property
    def env_kind(self) -> str:
        if self.is_conda:
            return "conda"
        if self.in_venv:
            return "venv"
        return "system"

    def to_json(self) -> dict[str, Any]:
        return {
            "python": self.executable,
            "version": self.version_string,
            "prefix": self.prefix,
            "base_prefix": self.base_prefix,
            "env_kind": self.env_kind,
            "selected_by": self.selected_by,
            "libdir": self.libdir,
            "instsoname": self.instsoname,
            "enable_shared": self.enable_shared,
            "pytriton": self.distributions["nvidia-pytriton"].version
            if "nvidia-pytriton" in self.distributions
            else None,
        }


def choose_interpreter(environ: Mapping[str, str], python: str | None) -> tuple[str, str]:
    """Which interpreter is the user's environment, and why (see issue 3: not necessarily ours)."""
    if python:
        found = python if os.sep in python else shutil.which(python, path=environ.get("PATH"))
        if not found:
            raise TargetError(f"--python {python!r}: no such file or command")
        return found, "--python"
    # A venv activated inside a conda env (or the reverse): the one activated last is the one
    # whose bin/ comes first on PATH.
    path_dirs = [os.path.realpath(d) for d in environ.get("PATH", "").split(os.pathsep) if d]

    def rank(var: str) -> int:
        bin_dir = os.path.realpath(os.path.join(environ[var], "bin"))
        return path_dirs.index(bin_dir) if bin_dir in path_dirs else len(path_dirs)

    active = sorted((v for v in ("VIRTUAL_ENV", "CONDA_PREFIX") if environ.get(v)), key=rank)
    for var in active:
        candidate = os.path.join(environ[var], "bin", "python")
        if os.access(candidate, os.X_OK):
            return candidate, var
    for name in ("python", "python3"):
        found = shutil.which(name, path=environ.get("PATH"))
        if found:
            return found, "PATH"
    raise TargetError("no Python found: activate your environment or pass --python PATH")


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


_probe_cache = JsonCache(USER_CACHE_DIR, "probe-v2.json", MAX_CACHED_PROBES)


def _cache() -> JsonCache:
    return _probe_cache


def _cache_key(executable: str, environ: Mapping[str, str]) -> str:
    knobs = [environ.get(k, "") for k in PROBE_ENV]
    return json.dumps([os.path.abspath(executable), knobs, WATCHED_DISTRIBUTIONS])


def _cached_probe(key: str) -> dict[str, Any] | None:
    """A previous probe of the same interpreter, valid while none of the files and directories it
    depends on changed (installing or removing a package changes its site-packages directory).
    An entry of another shape (an older tritondoctor, a damaged file) is a miss."""
    entry = _cache().get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("watch"), dict):
        return None
    if any(_stamp(p) != stamp for p, stamp in entry["watch"].items()):
        return None
    data = entry.get("data")
    return data if isinstance(data, dict) and _invalid_field(data) is None else None


def _store_probe(key: str, executable: str, data: dict[str, Any]) -> None:
    watched = [executable, os.path.realpath(executable), os.path.join(data["prefix"], "pyvenv.cfg"), *data["sys_path"]]
    _cache().put(key, {"watch": {p: _stamp(p) for p in watched}, "data": data})


def probe_timeout() -> float:
    """Seconds the probe may take: TRITONDOCTOR_PROBE_TIMEOUT (0 < s <= 600), else the default."""
    text = os.environ.get(PROBE_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_PROBE_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_PROBE_TIMEOUT_S):
        raise UsageError(f"{PROBE_TIMEOUT_ENV}={text!r}: expected a number of seconds above 0 "
                         f"and at most {MAX_PROBE_TIMEOUT_S:g}")
    return value


def probe(executable: str, environ: Mapping[str, str], selected_by: str = "") -> TargetPython:
    if not os.path.exists(executable):
        raise TargetError(f"{executable}: no such file")
    if not os.access(executable, os.X_OK) or os.path.isdir(executable):
        raise TargetError(f"{executable}: not an executable file")
    key = _cache_key(executable, environ)
    data = _cached_probe(key)
    if data is None:
        data = _run_probe(executable, environ, probe_timeout())
        _store_probe(key, executable, data)
    return _from_probe(data, executable, selected_by)


def probe_script() -> str:
    """The Python source the probe runs in the target interpreter (`python -c`)."""
    return f"WATCHED = {list(WATCHED_DISTRIBUTIONS)!r}\n" + _PROBE


def _run_probe(executable: str, environ: Mapping[str, str], timeout: float) -> dict[str, Any]:
    script = probe_script()
    # The user's environment as is (PYTHONPATH, PYTHONHOME and the user site shape what PyTriton
    # sees, so no -I / -E), less the one knob that would leave the probe at an interactive prompt.
    env = {k: v for k, v in environ.items() if k != "PYTHONINSPECT"}
    returncode, stdout, stderr = _run_in_own_group([executable, "-c", script], env, timeout)
    if returncode is None:
        raise TargetError(f"{executable} did not answer the interpreter probe within {timeout:g} s; "
                          "is it a Python interpreter?")
    return _parse_answer(executable, returncode, stdout, stderr)


def _run_in_own_group(
    argv: list[str], env: Mapping[str, str], timeout: float
) -> tuple[int | None, bytes, bytes]:
    """Run argv in a session of its own; (exit status or None on timeout, stdout, stderr).

    Whatever happens (an answer, the timeout, Ctrl-C or SIGTERM raised as Interrupted, any other
    exception), the whole group is killed before this returns: a target that is not Python may
    start children of its own, and they must not outlive tritondoctor under PID 1."""
    import subprocess  # only on a probe-cache miss: check's warm start-up does not pay for it

    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=dict(env), start_new_session=True)
    except OSError as exc:
        raise TargetError(f"{argv[0]}: cannot run it as Python ({_one_line(str(exc))})") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
        return proc.returncode, stdout, stderr
    except subprocess.TimeoutExpired:
        return None, b"", b""
    finally:
        _end_group(proc)


def _end_group(proc: "subprocess.Popen[bytes]") -> None:
    # The session leader's pid is the group's id, which the kernel does not hand out again while
    # any member lives; a group already empty (a Python that answered) is ESRCH.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()  # a member that left the group may still hold the write end: do not read on
    proc.wait()


def _parse_answer(executable: str, returncode: int, stdout: bytes, stderr: bytes) -> dict[str, Any]:
    if returncode != 0:
        why = _last_line(stderr) or _exit_words(returncode)
        raise TargetError(f"{executable}: not a working Python interpreter ({why})")
    lines = stdout.strip().splitlines()
    if not lines:
        raise TargetError(f"{executable}: not a working Python interpreter (it printed nothing)")
    try:
        # The probe prints json.dumps' default output, which is ASCII; anything before its line
        # (a sitecustomize that prints) is not ours to decode.
        data = json.loads(lines[-1].decode("ascii"))
    except UnicodeDecodeError:
        raise TargetError(f"{executable} answered the interpreter probe with bytes that are not text; "
                          "is it a Python interpreter?") from None
    except ValueError:
        raise TargetError(f"{executable}: not a working Python interpreter "
                          "(its answer to the probe is not JSON)") from None
    if not isinstance(data, dict):
        raise TargetError(f"{executable}: not a working Python interpreter "
                          "(its answer to the probe is not a JSON object)")
    bad = _invalid_field(data)
    if bad is not None:
        raise TargetError(f"{executable} answered the interpreter probe without a valid {bad!r}; "
                          "is it a Python interpreter?")
    return data


def _one_line(text: str, limit: int = 200) -> str:
    printable = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(printable.split())[:limit]


def _last_line(stderr: bytes) -> str:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    return _one_line(lines[-1]) if lines else ""


def _exit_words(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit status {returncode}"


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_version(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value))


def _is_distribution(value: Any) -> bool:
    return (isinstance(value, dict) and _is_str(value.get("version")) and _is_opt_str(value.get("location"))
            and _is_str_list(value.get("requires", [])) and _is_str_list(value.get("tags", [])))


def _is_distributions(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and _is_distribution(v) for k, v in value.items())


# What the probe answers, field by field: each is required, of exactly this shape.
_ANSWER_SHAPE: dict[str, Callable[[Any], bool]] = {
    "executable": _is_opt_str,  # sys.executable is empty or None in some embedded interpreters
    "version": _is_version,
    "version_string": _is_str,
    "implementation": _is_str,
    "abiflags": _is_str,
    "prefix": _is_str,
    "base_prefix": _is_str,
    "exec_prefix": _is_str,
    "libdir": _is_opt_str,
    "instsoname": _is_opt_str,
    "ldlibrary": _is_opt_str,
    "enable_shared": lambda v: isinstance(v, bool),
    "multiarch": _is_opt_str,
    "purelib": _is_opt_str,
    "platlib": _is_opt_str,
    "sys_path": _is_str_list,
    "site_packages": _is_str_list,
    "distributions": _is_distributions,
}


def _invalid_field(data: dict[str, Any]) -> str | None:
    """The first field of the probe's answer that is missing or of the wrong shape, else None."""
    for name, valid in _ANSWER_SHAPE.items():
        if name not in data or not valid(data[name]):
            return name
    return None


def _from_probe(data: dict[str, Any], executable: str, selected_by: str) -> TargetPython:
    return TargetPython(
        executable=data["executable"] or executable,
        version=tuple(data["version"]),  # type: ignore[arg-type]
        version_string=data["version_string"],
        implementation=data["implementation"],
        abiflags=data["abiflags"],
        prefix=data["prefix"],
        base_prefix=data["base_prefix"],
        exec_prefix=data["exec_prefix"],
        libdir=data["libdir"],
        instsoname=data["instsoname"],
        ldlibrary=data["ldlibrary"],
        enable_shared=data["enable_shared"],
        multiarch=data["multiarch"],
        purelib=data["purelib"],
        platlib=data["platlib"],
        sys_path=tuple(data["sys_path"]),
        site_packages=tuple(data["site_packages"]),
        distributions={
            name: Distribution(
                name=name,
                version=d["version"],
                location=d.get("location"),
                requires=tuple(d.get("requires") or ()),
                tags=tuple(d.get("tags") or ()),
            )
            for name, d in data["distributions"].items()
        },
        selected_by=selected_by,
    )
