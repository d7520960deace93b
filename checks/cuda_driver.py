"""Is the NVIDIA driver whole: kernel module, user-space libraries (NVML), and the libcuda.so.1
that tritonserver will dlopen under the environment PyTriton gives it?"""

from __future__ import annotations

from typing import Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.facts import gpu as gpu_facts
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.snapshot import Snapshot

ID = "cuda-driver"
AREA = "GPU and CUDA"
ORDER = 60


def _gpu_problem(snap: Snapshot) -> Status:
    """A broken GPU stack stops GPU models, not the server: with --cpu-ok it is only a warning."""
    return Status.WARN if snap.options.cpu_ok else Status.ERROR


def _in_container(snap: Snapshot) -> bool:
    return bool(snap.system.in_container)


def _nvml_finding(snap: Snapshot, gpu: gpu_facts.GpuFacts, evidence: dict) -> Finding | None:
    code, text = gpu.nvml_error_code, gpu.nvml_error or ""
    module = gpu.kernel_module_version or "?"
    if code == gpu_facts.NVML_ERROR_LIB_RM_VERSION_MISMATCH:
        if _in_container(snap):
            fix = FixHint("driver-mismatch", "the image carries its own NVIDIA driver libraries: remove them and let "
                          "the NVIDIA Container Toolkit mount the host's (matching) ones",
                          ("# in the Dockerfile: do not install nvidia-driver-*/libnvidia-* packages",
                           "docker run --gpus all ...  # injects the host driver's libcuda/libnvidia-ml"))
        else:
            fix = FixHint("driver-mismatch", "the driver was upgraded but the old kernel module is still loaded: reboot "
                          "(or unload and reload the modules with nothing using the GPU)",
                          ("sudo reboot",
                           "# or: sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia"))
        return Finding(ID, _gpu_problem(snap),
                       f"NVIDIA driver/library version mismatch: kernel module {module}, user-space libraries of another version",
                       detail=f"NVML: {text!r} (nvidia-smi says 'Failed to initialize NVML: Driver/library version "
                              "mismatch'). CUDA fails the same way, so tritonserver sees no GPU.",
                       evidence=evidence, fix=fix)
    if code == gpu_facts.NVML_ERROR_DRIVER_NOT_LOADED:
        return Finding(ID, _gpu_problem(snap), "the NVIDIA driver libraries are installed but the kernel module is not loaded",
                       detail=f"NVML: {text!r}. Common causes: a kernel update without the matching module "
                              "(DKMS), Secure Boot refusing the unsigned module, nouveau holding the GPU.",
                       evidence=evidence,
                       fix=FixHint("load-driver", "load the module and read why it fails, if it does",
                                   ("sudo modprobe nvidia", "sudo dmesg | grep -iE 'nvidia|nvrm' | tail -20")))
    if code == gpu_facts.NVML_ERROR_NO_PERMISSION:
        return Finding(ID, _gpu_problem(snap), "no permission to open the NVIDIA device nodes",
                       detail=f"NVML: {text!r}.", evidence=evidence,
                       fix=FixHint("device-permissions", "give this user access to /dev/nvidia*",
                                   ("ls -l /dev/nvidia*", "sudo usermod -aG video $USER  # then log in again")))
    if code == gpu_facts.NVML_ERROR_LIBRARY_NOT_FOUND:
        # NVML (libnvidia-ml.so.1) is the `utility` half of the driver; CUDA needs `compute`
        # (libcuda.so.1). Without NVML tritonserver only loses GPU metrics; libcuda is judged below.
        return Finding(ID, Status.WARN if (snap.libcuda and snap.libcuda.path) else _gpu_problem(snap),
                       f"NVIDIA kernel module {module} is loaded but its user-space library libnvidia-ml.so.1 is missing",
                       detail="Without NVML tritonserver has no GPU metrics and this check cannot list the GPUs. "
                              "In a container this means the `utility` driver capability was not requested.",
                       evidence=evidence,
                       fix=FixHint("driver-capabilities", "ask for the driver's compute and utility libraries",
                                   ("docker run --gpus all -e NVIDIA_DRIVER_CAPABILITIES=compute,utility ..."
                                    if _in_container(snap) else
                                    "# install the user-space driver matching the module, e.g. on Ubuntu: "
                                    f"sudo apt install nvidia-utils-{module.split('.')[0]} libnvidia-compute-{module.split('.')[0]}",)))
    if code is not None:
        return Finding(ID, _gpu_problem(snap), f"NVML cannot talk to the driver: {text}",
                       detail="tritonserver will not be able to use the GPUs either. 'GPU is lost' and "
                              "'Unknown Error' usually need a GPU reset or a reboot; the kernel log says more.",
                       evidence=evidence,
                       fix=FixHint("driver-health", "look at the kernel log and at nvidia-smi",
                                   ("nvidia-smi", "sudo dmesg | grep -iE 'nvrm|xid' | tail -20")))
    return None  # NVML answered, or nvidia-ml-py is not importable (nothing to conclude)


def _libcuda_finding(snap: Snapshot, gpu: gpu_facts.GpuFacts, evidence: dict) -> Finding | None:
    lib = snap.libcuda
    if lib is None or lib.path is not None:
        return None
    if gpu.wsl_lib_dir:
        commands: tuple[str, ...] = (f"export LD_LIBRARY_PATH={gpu.wsl_lib_dir}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}",
                                     f"# or make it permanent: echo {gpu.wsl_lib_dir} | sudo tee /etc/ld.so.conf.d/ld.wsl.conf && sudo ldconfig")
        summary = "WSL 2 keeps libcuda.so.1 in /usr/lib/wsl/lib: put it on the loader path"
    elif _in_container(snap):
        commands = ("docker run --gpus all -e NVIDIA_DRIVER_CAPABILITIES=compute,utility ...",)
        summary = "start the container with the GPU driver's compute libraries mounted"
    else:
        branch = (gpu.kernel_module_version or "").split(".")[0] or "<branch>"
        commands = (f"# Ubuntu/Debian: sudo apt install libnvidia-compute-{branch}",
                    "ldconfig -p | grep libcuda.so.1")
        summary = "install the driver's CUDA library (libcuda.so.1), matching the kernel module"
    return Finding(ID, _gpu_problem(snap),
                   "tritonserver will not find libcuda.so.1 (the CUDA driver library): it will run without GPUs",
                   detail=f"Searched the way tritonserver dlopens it, under the environment PyTriton gives it: {lib.how}.",
                   evidence=dict(evidence, libcuda=lib.to_json()),
                   fix=FixHint("libcuda", summary, commands))


def run(snap: Snapshot) -> list[Finding]:
    gpu = snap.gpu
    if gpu is None:
        return [Finding(ID, Status.SKIP, "GPU facts were not gathered")]
    if gpu.gather_error:
        return [Finding(ID, Status.WARN, f"could not inspect the NVIDIA driver: {gpu.gather_error}",
                        detail="This is a tritondoctor bug; please report it with `tritondoctor check --json`.")]
    evidence = {
        "kernel_module": gpu.kernel_module_version,
        "proc_version": gpu.proc_version_line,
        "driver_version": gpu.driver_version,
        "cuda_driver_version": ".".join(map(str, gpu.cuda_driver_version)) if gpu.cuda_driver_version else None,
        "nvml_error": gpu.nvml_error,
        "nvml_error_code": gpu.nvml_error_code,
        "device_nodes": [n.path for n in gpu.device_nodes],
        "wsl_lib_dir": gpu.wsl_lib_dir,
        "libcuda": snap.libcuda.path if snap.libcuda else None,
    }
    if not gpu.driver_visible:
        return [Finding(ID, Status.SKIP, "no NVIDIA driver on this machine",
                        detail="No /proc/driver/nvidia/version, no /dev/nvidia* and no WSL GPU; "
                               "the `gpus` check says what that means for PyTriton.",
                        evidence=evidence)]
    findings = [f for f in (_nvml_finding(snap, gpu, evidence), _libcuda_finding(snap, gpu, evidence)) if f]
    if not findings:
        version = gpu.driver_version or gpu.kernel_module_version or "?"
        cuda = f" (CUDA {evidence['cuda_driver_version']})" if evidence["cuda_driver_version"] else ""
        where = f"; tritonserver will load {snap.libcuda.path}" if snap.libcuda and snap.libcuda.path else ""
        findings.append(Finding(ID, Status.OK, f"NVIDIA driver {version}{cuda}{where}",
                                detail=("NVML answered." if gpu.nvml_ok else
                                        f"NVML not asked ({gpu.nvml_error}); version from the kernel module."),
                                evidence=evidence))
    return findings


SIGNATURES = (
    sig(r"Driver/library version mismatch", 17, fast_fail=True,
        cause="the NVIDIA kernel module and the user-space driver libraries are of different versions"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    title = "the NVIDIA kernel module and the user-space driver differ (Driver/library version mismatch)"
    fix = FixHint("driver-mismatch", "the driver was updated without a reboot: reboot (or reload the nvidia kernel modules)",
                  ("cat /proc/driver/nvidia/version", "nvidia-smi", "sudo reboot"))
    return Finding(ID, Status.ERROR, title, "", log_evidence(matches), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, from_log=from_log, rows=(15, 17, 18),
                  summary="driver and NVML, WSL's libcuda")
