"""Facts read statically from the target environment's installed files (catalog rows 30, 31, 35):
which numpy the stub imports and by which path it arrives, whether PyTriton's stub and python
backend are the files its wheel shipped, and what tritonclient's metadata and generated gRPC code
ask of grpcio and protobuf. Nothing here imports the user's packages.
"""

from __future__ import annotations

import base64
import glob
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Optional

from tritondoctor.cache import USER_CACHE_DIR, JsonCache
from tritondoctor.facts import target as target_facts
from tritondoctor.facts.inputs import EnvReads

if TYPE_CHECKING:
    from tritondoctor.facts.pytriton import PyTritonInstall
    from tritondoctor.facts.target import TargetPython

READS = target_facts.READS | EnvReads(names=frozenset({"HOME"}))


# --- numpy as the stub sees it (row 30) ---------------------------------------------------------

@dataclass(frozen=True)
class NumpyReach:
    directory: str  # the sys.path entry `import numpy` finds it in
    version: Optional[str]
    route: str  # "PYTHONPATH", "user site", ".pth file", "site-packages", "sys.path"
    via: str = ""  # the .pth file, or the PYTHONPATH value


def _numpy_version(directory: str) -> Optional[str]:
    infos = glob.glob(os.path.join(directory, "numpy-*.dist-info"))
    if infos:
        return os.path.basename(infos[0])[len("numpy-"):-len(".dist-info")]
    try:
        with open(os.path.join(directory, "numpy", "version.py"), encoding="utf-8", errors="replace") as fh:
            match = re.search(r"""^(?:full_)?version\s*(?::\s*str\s*)?=\s*['"]([^'"]+)""", fh.read(), re.M)
    except OSError:
        return None
    return match.group(1) if match else None


def _pth_naming(directory: str, sites: list[str]) -> Optional[str]:
    real = os.path.realpath(directory)
    for site in sites:
        for pth in sorted(glob.glob(os.path.join(site, "*.pth"))):
            try:
                with open(pth, encoding="utf-8", errors="replace") as fh:
                    lines = [ln.strip() for ln in fh if ln.strip() and not ln.startswith(("#", "import"))]
            except OSError:
                continue
            if any(os.path.realpath(os.path.join(site, ln)) == real for ln in lines):
                return pth
    return None


def numpy_reach(target: "TargetPython", environ: Mapping[str, str]) -> Optional[NumpyReach]:
    """The first sys.path entry holding a numpy package: the one the stub's `import numpy` gets
    (the stub inherits the server's environment, PYTHONPATH and the user site included)."""
    sites = [s for s in target.site_packages if s]
    user_site = sites[-1] if sites else ""
    env_sites = {os.path.realpath(s) for s in sites[:-1]} | {os.path.realpath(p) for p in (target.purelib, target.platlib) if p}
    pythonpath = [os.path.realpath(p) for p in environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    for entry in target.sys_path:
        if not os.path.isfile(os.path.join(entry, "numpy", "__init__.py")):
            continue
        real = os.path.realpath(entry)
        version = _numpy_version(entry)
        if real in pythonpath:
            return NumpyReach(entry, version, "PYTHONPATH", environ.get("PYTHONPATH", ""))
        if user_site and real == os.path.realpath(user_site):
            return NumpyReach(entry, version, "user site")
        if real in env_sites:
            return NumpyReach(entry, version, "site-packages")
        pth = _pth_naming(entry, sites)
        return NumpyReach(entry, version, ".pth file" if pth else "sys.path", pth or "")
    return None


# --- the stub and python backend against the wheel's RECORD (row 31) -----------------------------

@dataclass(frozen=True)
class ForeignBinary:
    path: str
    recorded_sha256: str
    actual_sha256: Optional[str]


def _record(install: "PyTritonInstall") -> dict[str, str]:
    site = os.path.dirname(install.package_dir)
    out: dict[str, str] = {}
    for record in glob.glob(os.path.join(site, f"nvidia_pytriton-{install.version}.dist-info", "RECORD")):
        with open(record, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.rstrip("\n").rsplit(",", 2)
                if len(parts) == 3 and parts[1].startswith("sha256="):
                    out[os.path.normpath(os.path.join(site, parts[0]))] = parts[1][len("sha256="):]
    return out


MAX_CACHED_DIGESTS = 64
_RECORD_SHA256 = re.compile(r"[A-Za-z0-9_-]{43}")  # urlsafe base64 of 32 bytes, unpadded
_digest_cache = JsonCache(USER_CACHE_DIR, "digests-v1.json", MAX_CACHED_DIGESTS)


def _content_identity(st: os.stat_result) -> str:
    # ctime too: any write (or a copy with the old mtime kept) changes it, and it cannot be set back
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"


def _sha256_b64(path: str) -> Optional[str]:
    """The file's sha256 as RECORD writes it; remembered by file identity, so a second `check`
    does not read the megabytes of the python backend again."""
    try:
        with open(path, "rb") as fh:
            key = _content_identity(os.fstat(fh.fileno()))
            hit = _digest_cache.get(key)
            if isinstance(hit, dict) and isinstance(hit.get("sha256"), str) and _RECORD_SHA256.fullmatch(hit["sha256"]):
                return hit["sha256"]  # anything else in the file (damaged, another version's) is a miss
            import hashlib  # only when a file's hash is not remembered

            digest = hashlib.sha256()
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    actual = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    _digest_cache.put(key, {"sha256": actual})
    return actual


def foreign_binaries(install: "PyTritonInstall", minor: Optional[str]) -> tuple[ForeignBinary, ...]:
    """The stub for `minor` and libtriton_python.so when they differ from what the wheel's RECORD
    says it installed: a custom build dropped in, perhaps from another python_backend branch."""
    record = _record(install)
    paths = [install.python_backend] + ([install.stubs[minor]] if minor in install.stubs else [])
    out = []
    for path in paths:
        wanted = record.get(os.path.normpath(path))
        if wanted is None or not os.path.isfile(path):
            continue
        actual = _sha256_b64(path)
        if actual != wanted:
            out.append(ForeignBinary(path, wanted, actual))
    return tuple(out)


# --- tritonclient against grpcio / protobuf (row 35) ---------------------------------------------

@dataclass(frozen=True)
class ClientDeps:
    tritonclient: str
    requires: tuple[str, ...] = ()  # Requires-Dist lines naming grpcio / protobuf (extras grpc, all)
    grpc_generated: Optional[str] = None  # GRPC_GENERATED_VERSION of its *_pb2_grpc.py
    protobuf_gencode: Optional[str] = None  # the protobuf runtime its *_pb2.py validates against
    installed: Mapping[str, Optional[str]] = field(default_factory=dict)  # grpcio / protobuf -> version


def _metadata_requires(dist_info: str) -> tuple[str, ...]:
    try:
        with open(os.path.join(dist_info, "METADATA"), encoding="utf-8", errors="replace") as fh:
            lines = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("Requires-Dist:")]
    except OSError:
        return ()
    wanted = re.compile(r"^(grpcio|protobuf)\b", re.I)
    return tuple(dict.fromkeys(ln for ln in lines if wanted.match(ln)
                               and (";" not in ln or re.search(r"extra\s*==\s*['\"](grpc|all)['\"]", ln))))


def _grep(path: str, pattern: str) -> Optional[re.Match[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return re.search(pattern, fh.read(8192))
    except OSError:
        return None


def client_deps(target: "TargetPython") -> Optional[ClientDeps]:
    dist = target.distributions.get("tritonclient")
    if dist is None or not dist.location:
        return None
    site = dist.location
    infos = glob.glob(os.path.join(site, f"tritonclient-{dist.version}.dist-info"))
    grpc_dir = os.path.join(site, "tritonclient", "grpc")
    gen = _grep(os.path.join(grpc_dir, "service_pb2_grpc.py"), r"GRPC_GENERATED_VERSION\s*=\s*['\"]([\d.]+)")
    pb = _grep(os.path.join(grpc_dir, "service_pb2.py"),
               r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+)")
    installed = {n: (target.distributions[n].version if n in target.distributions else None) for n in ("grpcio", "protobuf")}
    return ClientDeps(dist.version, _metadata_requires(infos[0]) if infos else (), gen.group(1) if gen else None,
                      ".".join(pb.groups()) if pb else None, installed)


# --- together ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PackageFiles:
    numpy: Optional[NumpyReach] = None
    foreign: tuple[ForeignBinary, ...] = ()
    client: Optional[ClientDeps] = None
    error: Optional[str] = None


def gather(target: "TargetPython | None", install: "PyTritonInstall | None", environ: Mapping[str, str]) -> PackageFiles:
    if target is None:
        return PackageFiles()
    try:
        foreign = foreign_binaries(install, target.minor) if install is not None else ()
        return PackageFiles(numpy_reach(target, environ), foreign, client_deps(target))
    except Exception as exc:  # never raise from a fact
        return PackageFiles(error=f"{exc.__class__.__name__}: {exc}")
