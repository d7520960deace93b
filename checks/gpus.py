"""Which GPUs will tritonserver see: devices, compute capability, device nodes, MIG and
CUDA_VISIBLE_DEVICES. No GPU at all is a warning (CPU-only), or fine with --cpu-ok."""

from __future__ import annotations

import os
import re

from tritondoctor.checkspec import CheckSpec
from tritondoctor.facts.gpu import GpuDevice, GpuFacts
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "gpus"
AREA = "GPU and CUDA"
ORDER = 62

# Triton's default minimum (build.py --min-compute-capability "6.0", the server option
# --min-supported-compute-capability): GPUs below it are silently left out by tritonserver.
TRITON_MIN_CC = (6, 0)

CPU_ONLY_EFFECT = ("tritonserver starts without GPUs: models configured for KIND_GPU fail to load and Python models "
                   "that use CUDA (torch.cuda, cupy) fail.")


def _no_gpu(snap: Snapshot) -> Status:
    return Status.OK if snap.options.cpu_ok else Status.WARN


def _in_container(snap: Snapshot) -> bool:
    return bool(snap.system.in_container)


def _container_gpu_fix(snap: Snapshot) -> FixHint:
    if snap.system.container == "kubernetes":
        return FixHint("container-gpus", "request GPUs for the pod (NVIDIA device plugin)",
                       ("# in the container spec: resources: {limits: {nvidia.com/gpu: 1}}",))
    return FixHint("container-gpus", "start the container with GPU access (NVIDIA Container Toolkit), "
                   "or pass --cpu-ok if CPU-only is intended",
                   ("docker run --gpus all ...", "# podman: podman run --device nvidia.com/gpu=all ..."))


def _presence(snap: Snapshot, gpu: GpuFacts) -> Finding | None:
    evidence = {"device_nodes": [n.path for n in gpu.device_nodes], "kernel_module": gpu.kernel_module_version,
                "nvidia_visible_devices": gpu.nvidia_visible_devices, "cpu_ok": snap.options.cpu_ok}
    suffix = " (allowed by --cpu-ok)" if snap.options.cpu_ok else ""
    if not gpu.driver_visible:
        fix = _container_gpu_fix(snap) if _in_container(snap) else FixHint(
            "install-driver", "install the NVIDIA driver, or pass --cpu-ok if CPU-only is intended",
            ("# Ubuntu: sudo ubuntu-drivers install && sudo reboot", "tritondoctor check --cpu-ok"))
        return Finding(ID, _no_gpu(snap), f"no NVIDIA GPU or driver: PyTriton will run CPU-only{suffix}",
                       detail="No /proc/driver/nvidia/version, no /dev/nvidia* device nodes and no WSL GPU "
                              "(/dev/dxg, /usr/lib/wsl/lib). " + CPU_ONLY_EFFECT,
                       evidence=evidence, fix=fix)
    if not gpu.gpu_nodes and not gpu.wsl_dxg:
        where = "this container was started without GPU access" if _in_container(snap) else "no /dev/nvidia<N> node exists"
        return Finding(ID, _no_gpu(snap),
                       f"the NVIDIA driver{' ' + gpu.kernel_module_version if gpu.kernel_module_version else ''} is "
                       "loaded but there is no /dev/nvidia<N>: "
                       f"{where}; PyTriton will run CPU-only{suffix}",
                       detail=CPU_ONLY_EFFECT + (f" NVIDIA_VISIBLE_DEVICES={gpu.nvidia_visible_devices!r}."
                                                 if gpu.nvidia_visible_devices is not None else ""),
                       evidence=evidence,
                       fix=_container_gpu_fix(snap) if _in_container(snap) else FixHint(
                           "device-nodes", "create the device nodes (nvidia-modprobe does it as root)",
                           ("sudo nvidia-modprobe -u -c=0", "ls -l /dev/nvidia*")))
    return None


def _access(snap: Snapshot, gpu: GpuFacts) -> list[Finding]:
    needed = [n for n in gpu.device_nodes if re.fullmatch(r"nvidia(\d+|ctl|-uvm)", os.path.basename(n.path))]
    bad = [n for n in needed if not n.accessible or n.open_error]
    if not bad:
        return []
    status = Status.WARN if snap.options.cpu_ok else Status.ERROR
    text = ", ".join(f"{n.path} ({n.open_error or 'no read/write permission'})" for n in bad)
    fix = _container_gpu_fix(snap) if _in_container(snap) else FixHint(
        "device-permissions", "let this user open the device nodes",
        ("ls -l /dev/nvidia*", "sudo usermod -aG video $USER  # then log in again"))
    return [Finding(ID, status, f"cannot open the NVIDIA device nodes: {text}",
                    detail="CUDA opens /dev/nvidiactl and /dev/nvidia<N>; when it cannot, tritonserver sees no GPU. In "
                           "a container, a device cgroup that does not allow them gives 'Operation not permitted'.",
                    evidence={"nodes": [n.path for n in bad], "errors": [n.open_error for n in bad]}, fix=fix)]


def _devices(snap: Snapshot, gpu: GpuFacts) -> list[Finding]:
    if not gpu.nvml_ok:
        return []
    if not gpu.devices:
        return [Finding(ID, _no_gpu(snap), "the NVIDIA driver reports no GPU: PyTriton will run CPU-only",
                        detail=CPU_ONLY_EFFECT, evidence={"driver": gpu.driver_version},
                        fix=FixHint("gpu-missing", "check that the GPU is seen by the driver", ("nvidia-smi -L",)))]
    findings = []
    low = [d for d in gpu.devices if d.compute_capability and d.compute_capability < TRITON_MIN_CC]
    for dev in low:
        findings.append(Finding(
            ID, Status.WARN if len(low) < len(gpu.devices) or snap.options.cpu_ok else Status.ERROR,
            f"GPU {dev.index} ({dev.name}) has compute capability {dev.cc_text}, below Triton's minimum 6.0: "
            "tritonserver will not use it",
            detail="tritonserver skips GPUs under --min-supported-compute-capability (default 6.0); "
                   "the bundled CUDA 12 runtime itself needs 5.0.",
            evidence={"index": dev.index, "name": dev.name, "compute_capability": dev.cc_text},
            fix=FixHint("old-gpu", "use a GPU of compute capability 6.0 or newer (Pascal+), or run CPU-only",
                        ("tritondoctor check --cpu-ok",)),
        ))
    for dev in gpu.devices:
        if dev.mig_enabled and not dev.mig_devices:
            findings.append(Finding(
                ID, Status.WARN, f"GPU {dev.index} ({dev.name}) is in MIG mode with no MIG instance: CUDA sees nothing on it",
                detail="With MIG enabled, CUDA exposes only MIG instances, never the whole GPU.",
                evidence={"index": dev.index, "uuid": dev.uuid},
                fix=FixHint("mig", "create an instance, or leave MIG mode",
                            (f"sudo nvidia-smi mig -i {dev.index} -cgi 1g.10gb -C  # see: nvidia-smi mig -lgip",
                             f"# or: sudo nvidia-smi -i {dev.index} -mig 0 && reset the GPU"))))
        elif dev.mig_pending is not None and dev.mig_enabled is not None and dev.mig_pending != dev.mig_enabled:
            findings.append(Finding(
                ID, Status.WARN, f"GPU {dev.index} ({dev.name}) has a MIG mode change pending until the GPU is reset",
                evidence={"index": dev.index, "mig_enabled": dev.mig_enabled, "mig_pending": dev.mig_pending},
                fix=FixHint("mig-reset", "reset the GPU (nothing may be using it) or reboot",
                            (f"sudo nvidia-smi -i {dev.index} -r",))))
    usable = [d for d in gpu.devices if d not in low]
    if usable:
        described = "; ".join(_describe(d) for d in usable)
        findings.append(Finding(ID, Status.OK, f"{len(usable)} GPU{'s' * (len(usable) != 1)}: {described}",
                                detail="A CUDA process uses one MIG instance only: select it with "
                                       "CUDA_VISIBLE_DEVICES=MIG-<uuid>." if any(d.mig_devices for d in usable) else "",
                                evidence={"devices": [_device_json(d) for d in gpu.devices]}))
    return findings


def _describe(dev: GpuDevice) -> str:
    memory = f", {dev.memory_total / 2**30:.0f} GiB" if dev.memory_total else ""
    mig = f", MIG: {len(dev.mig_devices)} instance{'s' * (len(dev.mig_devices) != 1)}" if dev.mig_enabled else ""
    return f"{dev.index}: {dev.name} (compute {dev.cc_text}{memory}{mig})"


def _device_json(dev: GpuDevice) -> dict:
    return {"index": dev.index, "name": dev.name, "uuid": dev.uuid, "compute_capability": dev.cc_text,
            "memory_total": dev.memory_total, "mig_enabled": dev.mig_enabled, "mig_devices": list(dev.mig_devices)}


def visible_devices(value: str, devices: tuple[GpuDevice, ...]) -> tuple[list[str], list[str]]:
    """CUDA's reading of CUDA_VISIBLE_DEVICES: (entries that select a device, entries ignored).
    Entries are indices or (unique prefixes of) GPU-/MIG- UUIDs; CUDA stops at the first entry
    that matches nothing, so it and every later entry are ignored."""
    entries = [e.strip() for e in value.split(",")]
    uuids = [d.uuid for d in devices if d.uuid] + [m for d in devices for m in d.mig_devices]
    selected: list[str] = []
    for position, entry in enumerate(entries):
        ok = False
        if entry.lstrip("-").isdigit():
            ok = 0 <= int(entry) < len(devices)
        elif entry.startswith(("GPU-", "MIG-")):
            ok = len([u for u in uuids if u.startswith(entry)]) == 1
        if not ok:
            return selected, entries[position:]
        selected.append(entry)
    return selected, []


def _visible(snap: Snapshot, gpu: GpuFacts) -> list[Finding]:
    value = gpu.cuda_visible_devices
    if value is None:
        return []
    evidence = {"CUDA_VISIBLE_DEVICES": value, "CUDA_DEVICE_ORDER": gpu.cuda_device_order}
    unset = FixHint("cuda-visible-devices", "unset it, or list the GPUs to use (indices or GPU-/MIG- UUIDs)",
                    ("unset CUDA_VISIBLE_DEVICES", "# or e.g.: export CUDA_VISIBLE_DEVICES=0"))
    if not value.strip():
        return [Finding(ID, _no_gpu(snap), "CUDA_VISIBLE_DEVICES is set to an empty string: CUDA, and so tritonserver, "
                        "sees no GPU", detail=CPU_ONLY_EFFECT, evidence=evidence, fix=unset)]
    if not gpu.nvml_ok:
        return []  # nothing to match the entries against; the presence finding says why
    selected, ignored = visible_devices(value, gpu.devices)
    order = ("" if gpu.cuda_device_order == "PCI_BUS_ID" else
             " CUDA numbers GPUs fastest-first unless CUDA_DEVICE_ORDER=PCI_BUS_ID, so an index may not be the "
             "nvidia-smi index.")
    if not selected:
        return [Finding(ID, _no_gpu(snap), f"CUDA_VISIBLE_DEVICES={value!r} matches no GPU: CUDA sees none",
                        detail=f"This machine has {len(gpu.devices)} GPU(s), indices 0-{len(gpu.devices) - 1}." + order,
                        evidence=evidence, fix=unset)]
    if ignored:
        return [Finding(ID, Status.WARN, f"CUDA_VISIBLE_DEVICES={value!r}: {', '.join(ignored)} match no GPU and are "
                        "ignored (CUDA stops at the first bad entry)",
                        detail=f"CUDA will use {', '.join(selected)}." + order, evidence=evidence, fix=unset)]
    return [Finding(ID, Status.OK, f"CUDA_VISIBLE_DEVICES={value!r} selects {len(selected)} GPU(s)",
                    detail=order.strip(), evidence=evidence)]


def run(snap: Snapshot) -> list[Finding]:
    gpu = snap.gpu
    if gpu is None:
        return [Finding(ID, Status.SKIP, "GPU facts were not gathered")]
    presence = _presence(snap, gpu)
    findings = [presence] if presence else _access(snap, gpu) + _devices(snap, gpu)
    findings += _visible(snap, gpu)
    if not findings:
        version = gpu.driver_version or gpu.kernel_module_version or "?"
        nodes = ", ".join(os.path.basename(n.path) for n in gpu.gpu_nodes) or "WSL /dev/dxg"
        findings.append(Finding(ID, Status.OK, f"NVIDIA driver {version}, GPU device nodes: {nodes}",
                                detail=f"NVML gave no device list ({gpu.nvml_error})." if gpu.nvml_error else ""))
    return findings


CHECK = CheckSpec(ID, AREA, run, rows=(15,),
                  summary="devices, MIG and CUDA_VISIBLE_DEVICES")
