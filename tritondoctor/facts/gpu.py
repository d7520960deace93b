"""NVIDIA driver and GPU facts: what tritonserver will find when it initialises CUDA.

Sources, cheapest first:
- `/proc/driver/nvidia/version` (or `/sys/module/nvidia/version`): the *kernel module* version;
- `/dev/nvidia*` (and `/dev/dxg` + `/usr/lib/wsl/lib` on WSL 2): whether this process (this
  container) was given the GPUs at all;
- NVML through nvidia-ml-py (`pynvml`), asked only when some sign of a driver exists: driver
  and CUDA driver versions, devices, and the init error when the user-space libraries do not
  match the kernel module ("Driver/library version mismatch").

Nothing here raises: a failure becomes a field of GpuFacts. NVML is loaded the way pynvml loads
it (`libnvidia-ml.so.1` through this process's loader path), initialised, read and shut down.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from dataclasses import dataclass
from typing import Any, Mapping

from tritondoctor.facts.inputs import EnvReads

PROC_VERSION = "proc/driver/nvidia/version"
SYS_VERSION = "sys/module/nvidia/version"
WSL_LIB_DIR = "usr/lib/wsl/lib"

# Only these variables: NVML itself is machine state (asked once, reused by Snapshot.derive).
ENV_VARS = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "NVIDIA_VISIBLE_DEVICES", "NVIDIA_DRIVER_CAPABILITIES")
READS = EnvReads(names=frozenset(ENV_VARS), files=("/" + PROC_VERSION, "/" + SYS_VERSION, "/dev/nvidia*", "/dev/dxg",
                                                   "/" + WSL_LIB_DIR))

# "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 ..." (proprietary) and
# "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  565.57.01  Release Build ..." (open).
_PROC_RE = re.compile(r"Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)")

# NVML return codes (nvml.h) that the checks tell apart.
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_UNKNOWN = 999


@dataclass(frozen=True)
class GpuDevice:
    index: int  # NVML index (PCI bus order), not necessarily the CUDA ordinal
    name: str
    uuid: str | None = None
    memory_total: int | None = None  # bytes
    compute_capability: tuple[int, int] | None = None
    mig_enabled: bool | None = None  # None: MIG not supported by this GPU
    mig_pending: bool | None = None
    mig_devices: tuple[str, ...] = ()  # MIG-… UUIDs of the instances that exist
    pci_bus_id: str | None = None

    @property
    def cc_text(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}" if self.compute_capability else "?"


@dataclass(frozen=True)
class DeviceNode:
    path: str
    is_char_device: bool
    accessible: bool  # read+write for this user (os.access; root passes unless the fs says no)
    open_error: str | None = None  # only tried for nvidiactl: what open(O_RDWR) said


@dataclass(frozen=True)
class GpuFacts:
    driver_visible: bool  # any sign of an NVIDIA driver: /proc, /sys, /dev nodes, WSL
    kernel_module_version: str | None = None
    proc_version_line: str | None = None
    device_nodes: tuple[DeviceNode, ...] = ()
    wsl_lib_dir: str | None = None
    wsl_dxg: bool = False
    nvml_attempted: bool = False
    nvml_ok: bool = False
    nvml_error: str | None = None  # NVML's own text, e.g. "RM has detected an NVML/RM version mismatch."
    nvml_error_code: int | None = None
    driver_version: str | None = None  # NVML's, else the kernel module's
    cuda_driver_version: tuple[int, int] | None = None  # from NVML (e.g. 12040 -> (12, 4))
    devices: tuple[GpuDevice, ...] = ()
    cuda_visible_devices: str | None = None  # None: unset
    cuda_device_order: str | None = None
    nvidia_visible_devices: str | None = None
    nvidia_driver_capabilities: str | None = None
    gather_error: str | None = None

    @property
    def gpu_nodes(self) -> tuple[DeviceNode, ...]:
        return tuple(n for n in self.device_nodes if re.fullmatch(r"nvidia\d+", os.path.basename(n.path)))

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def for_environ(self, environ: Mapping[str, str]) -> "GpuFacts":
        """The same machine seen from another environment (Snapshot.derive): only the variables
        change, NVML is not asked again."""
        return dataclasses.replace(self, **_environment(environ))


def parse_proc_version(text: str) -> tuple[str | None, str | None]:
    """(kernel module version, first line) from /proc/driver/nvidia/version text."""
    first = next((line.strip() for line in text.splitlines() if line.strip()), None)
    match = _PROC_RE.search(text)
    return (match.group(1) if match else None), first


def cuda_version_from_int(value: int) -> tuple[int, int] | None:
    """NVML/CUDA integer version (12040) -> (12, 4)."""
    if not isinstance(value, int) or value <= 0:
        return None
    return value // 1000, (value % 1000) // 10


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return None


def _device_nodes(dev_dir: str) -> tuple[DeviceNode, ...]:
    try:
        names = sorted(n for n in os.listdir(dev_dir) if n.startswith("nvidia"))
    except OSError:
        return ()
    nodes = []
    for name in names:
        path = os.path.join(dev_dir, name)
        try:
            is_chr = stat.S_ISCHR(os.stat(path).st_mode)
        except OSError:
            continue
        if not is_chr:  # /dev/nvidia-caps is a directory of MIG capability nodes
            continue
        open_error = None
        if name == "nvidiactl":
            try:
                fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
                os.close(fd)
            except OSError as exc:
                open_error = f"{exc.strerror or exc} (errno {exc.errno})"
        nodes.append(DeviceNode(path, True, os.access(path, os.R_OK | os.W_OK), open_error))
    return tuple(nodes)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _ask_nvml() -> dict[str, Any]:
    """Everything NVML says, as plain values; never raises."""
    out: dict[str, Any] = {"nvml_attempted": True}
    try:
        import pynvml  # nvidia-ml-py
    except Exception as exc:  # ImportError, or a broken install
        out["nvml_error"] = f"nvidia-ml-py is not importable ({exc.__class__.__name__}: {exc})"
        return out
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        out["nvml_error"] = str(exc)
        out["nvml_error_code"] = getattr(exc, "value", None)
        return out
    except Exception as exc:
        out["nvml_error"] = f"{exc.__class__.__name__}: {exc}"
        return out

    def attempt(fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:
            return None

    try:
        out["nvml_ok"] = True
        version = attempt(pynvml.nvmlSystemGetDriverVersion)
        out["driver_version"] = _text(version) if version is not None else None
        cuda = attempt(pynvml.nvmlSystemGetCudaDriverVersion)
        out["cuda_driver_version"] = cuda_version_from_int(cuda) if cuda is not None else None
        devices = []
        for index in range(attempt(pynvml.nvmlDeviceGetCount) or 0):
            handle = attempt(pynvml.nvmlDeviceGetHandleByIndex, index)
            if handle is None:
                devices.append(GpuDevice(index=index, name="(NVML could not open this GPU)"))
                continue
            name = attempt(pynvml.nvmlDeviceGetName, handle)
            uuid = attempt(pynvml.nvmlDeviceGetUUID, handle)
            memory = attempt(pynvml.nvmlDeviceGetMemoryInfo, handle)
            cc = attempt(pynvml.nvmlDeviceGetCudaComputeCapability, handle)
            pci = attempt(pynvml.nvmlDeviceGetPciInfo, handle)
            mig = attempt(pynvml.nvmlDeviceGetMigMode, handle)
            mig_devices: list[str] = []
            if mig and mig[0] == 1:
                for slot in range(attempt(pynvml.nvmlDeviceGetMaxMigDeviceCount, handle) or 0):
                    mig_handle = attempt(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, handle, slot)
                    mig_uuid = attempt(pynvml.nvmlDeviceGetUUID, mig_handle) if mig_handle is not None else None
                    if mig_uuid:
                        mig_devices.append(_text(mig_uuid))
            devices.append(GpuDevice(
                index=index,
                name=_text(name) if name is not None else "?",
                uuid=_text(uuid) if uuid is not None else None,
                memory_total=int(memory.total) if memory is not None else None,
                compute_capability=(int(cc[0]), int(cc[1])) if cc else None,
                mig_enabled=bool(mig[0]) if mig else None,
                mig_pending=bool(mig[1]) if mig else None,
                mig_devices=tuple(mig_devices),
                pci_bus_id=_text(pci.busId) if pci is not None else None,
            ))
        out["devices"] = tuple(devices)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass
    return out


def _environment(environ: Mapping[str, str]) -> dict[str, Any]:
    return {
        "cuda_visible_devices": environ.get("CUDA_VISIBLE_DEVICES"),
        "cuda_device_order": environ.get("CUDA_DEVICE_ORDER"),
        "nvidia_visible_devices": environ.get("NVIDIA_VISIBLE_DEVICES"),
        "nvidia_driver_capabilities": environ.get("NVIDIA_DRIVER_CAPABILITIES"),
    }


def gather(environ: Mapping[str, str], root: str = "/") -> GpuFacts:
    """GPU facts for a process started with `environ`. `root` re-roots the file reads (tests);
    NVML is asked only when `root` shows a driver."""
    env = _environment(environ)
    try:
        proc_text = _read(os.path.join(root, PROC_VERSION))
        module_version, first_line = parse_proc_version(proc_text) if proc_text else (None, None)
        if module_version is None:
            sys_text = (_read(os.path.join(root, SYS_VERSION)) or "").strip()
            module_version = sys_text or None
        nodes = _device_nodes(os.path.join(root, "dev"))
        wsl_dir = os.path.join(root, WSL_LIB_DIR)
        wsl_lib_dir = wsl_dir if os.path.isdir(wsl_dir) else None
        wsl_dxg = os.path.exists(os.path.join(root, "dev", "dxg"))
        visible = bool(proc_text or module_version or nodes or wsl_dxg or wsl_lib_dir)
        nvml: dict[str, Any] = _ask_nvml() if visible else {}
        driver_version = nvml.pop("driver_version", None) or module_version
        return GpuFacts(
            driver_visible=visible,
            kernel_module_version=module_version,
            proc_version_line=first_line,
            device_nodes=nodes,
            wsl_lib_dir=wsl_lib_dir,
            wsl_dxg=wsl_dxg,
            driver_version=driver_version,
            **nvml,
            **env,
        )
    except Exception as exc:  # never raise: a bug here must not cost the whole report
        return GpuFacts(driver_visible=False, gather_error=f"{exc.__class__.__name__}: {exc}", **env)
