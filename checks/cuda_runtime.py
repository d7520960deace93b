"""Can the CUDA runtime bundled in the wheel run on this driver?

The runtime version is read statically from the file auditwheel put in `nvidia_pytriton.libs`
(`libcudart-<hash>.so.12.6.77` in 0.7.0): no CUDA call is made.
"""

from __future__ import annotations

from typing import Sequence

from tritondoctor.checks._logs import AREA as SMOKE_AREA
from tritondoctor.checks._logs import log_evidence
from tritondoctor.checkspec import CheckSpec, Match, sig
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.observation import Observation
from tritondoctor.snapshot import Snapshot
from tritondoctor.versions import numeric

ID = "cuda-runtime"
AREA = "GPU and CUDA"
ORDER = 61

Version = tuple[int, ...]

# Source of every number below: NVIDIA CUDA Toolkit Release Notes
# (https://docs.nvidia.com/cuda/cuda-toolkit-release-notes/), section "CUDA Driver":
#  - table "CUDA Toolkit and Corresponding Driver Versions", Linux x86_64 column, GA rows;
#  - table "Driver Range for Minor Version Compatibility": 11.x >= 450.80.02 (footnote),
#    12.x >= 525, 13.x >= 580;
#  - for 13.1+ only the driver branch is listed ("CUDA 13.1 | R590", ...), so the branch is used.
# Driver 565 reports CUDA 12.7 but no 12.7 toolkit exists; this table calls it 12.6 (safe side).
TOOLKIT_MIN_DRIVER: tuple[tuple[tuple[int, int], str], ...] = (
    ((11, 0), "450.36.06"),  # CUDA 11.0.1 RC (11.0.2 GA: 450.51.05)
    ((11, 1), "455.23"),
    ((11, 2), "460.27.03"),
    ((11, 3), "465.19.01"),
    ((11, 4), "470.42.01"),
    ((11, 5), "495.29.05"),
    ((11, 6), "510.39.01"),
    ((11, 7), "515.43.04"),
    ((11, 8), "520.61.05"),
    ((12, 0), "525.60.13"),
    ((12, 1), "530.30.02"),
    ((12, 2), "535.54.03"),
    ((12, 3), "545.23.06"),
    ((12, 4), "550.54.14"),
    ((12, 5), "555.42.02"),
    ((12, 6), "560.28.03"),
    ((12, 8), "570.26"),
    ((12, 9), "575.51.03"),
    ((13, 0), "580.65.06"),
    ((13, 1), "590"),
    ((13, 2), "595"),
    ((13, 3), "610"),
    ((13, 4), "615"),
)
# Minimum driver for CUDA minor-version compatibility, per runtime major version: the
# "Driver Range for Minor Version Compatibility" table gives branches (12.x ">= 525", 13.x
# ">= 580"), its footnote the exact 11.x number. The first release of each branch is named in
# remedies (CUDA 12.0 GA: 525.60.13, 13.0 GA: 580.65.06).
MINOR_COMPAT_MIN_DRIVER = {11: "450.80.02", 12: "525", 13: "580"}
FIRST_RELEASE = {"525": "525.60.13", "580": "580.65.06"}
# Runtimes whose update needs more than the GA row: cudart 12.6.77 ships in CUDA 12.6 Update 2
# (>= 560.35.03; Update 3 repackages the same cudart and lists >= 560.35.05).
CUDART_NATIVE_MIN = {"12.6.68": "560.35.03", "12.6.77": "560.35.03"}


def parse_version(text: str | None) -> Version | None:
    return numeric(text)


def cuda_for_driver(driver: str | None) -> tuple[int, int] | None:
    """The CUDA version a driver reports, from its branch (525.x -> 12.0, 560.x -> 12.6): what
    NVML would say, for when NVML cannot be asked. Branch-level because pre-GA drivers of a
    branch (e.g. 525.60.11) already report that branch's CUDA version."""
    version = parse_version(driver)
    if version is None:
        return None
    best = None
    for cuda, minimum in TOOLKIT_MIN_DRIVER:
        if version[0] >= parse_version(minimum)[0]:  # type: ignore[index]
            best = cuda
    return best


def native_min_driver(cudart: str) -> str | None:
    if cudart in CUDART_NATIVE_MIN:
        return CUDART_NATIVE_MIN[cudart]
    key = tuple(parse_version(cudart) or ())[:2]
    return dict(TOOLKIT_MIN_DRIVER).get(key)  # type: ignore[arg-type]


def run(snap: Snapshot) -> list[Finding]:
    runtime, gpu = snap.runtime, snap.gpu
    if snap.pytriton is None:
        return [Finding(ID, Status.SKIP, "nvidia-pytriton is not installed: no bundled CUDA runtime to compare")]
    cudart = runtime.bundled_cudart if runtime else None
    if not cudart:
        return [Finding(ID, Status.SKIP, f"no libcudart in {snap.pytriton.libs_dir}: nothing to compare with the driver",
                        evidence={"libs_dir": snap.pytriton.libs_dir})]
    rt = parse_version(cudart) or (0,)
    rt_minor = (rt[0], rt[1] if len(rt) > 1 else 0)
    if gpu is None or not gpu.driver_visible:
        return [Finding(ID, Status.SKIP, f"CUDA runtime {cudart} bundled; no NVIDIA driver to run it on",
                        evidence={"cudart": cudart, "file": runtime.bundled_cudart_file if runtime else None})]
    driver = gpu.driver_version or gpu.kernel_module_version
    driver_cuda = gpu.cuda_driver_version or cuda_for_driver(driver)
    if driver_cuda is None and parse_version(driver):
        driver_cuda = (0, 0)  # older than every CUDA 11+ driver branch
    native = native_min_driver(cudart)
    compat = MINOR_COMPAT_MIN_DRIVER.get(rt[0])
    evidence = {
        "cudart": cudart,
        "cudart_file": runtime.bundled_cudart_file if runtime else None,
        "driver": driver,
        "driver_cuda": ".".join(map(str, driver_cuda)) if driver_cuda else None,
        "driver_cuda_from": "NVML" if gpu.cuda_driver_version else "driver version (release-notes table)",
        "native_min_driver": native,
        "minor_compat_min_driver": compat,
    }
    if driver_cuda is None:
        return [Finding(ID, Status.SKIP, f"CUDA runtime {cudart} bundled; the driver's CUDA version is unknown",
                        evidence=evidence)]
    cuda_text = f"CUDA {driver_cuda[0]}.{driver_cuda[1]}" if driver_cuda != (0, 0) else "older than CUDA 11.0"
    if driver_cuda >= rt_minor:
        return [Finding(ID, Status.OK, f"bundled CUDA runtime {cudart} runs natively on driver {driver} ({cuda_text})",
                        evidence=evidence)]
    driver_v = parse_version(driver)
    if driver_cuda[0] == rt[0] and compat and driver_v and driver_v >= parse_version(compat):  # type: ignore[operator]
        return [Finding(ID, Status.OK,
                        f"bundled CUDA runtime {cudart} runs on driver {driver} ({cuda_text}) through minor-version compatibility",
                        detail=f"CUDA {rt[0]}.x runtimes run on any driver >= {compat}; what needs a newer driver "
                               "(PTX JIT of newer code, a few new APIs) fails with cudaErrorCallRequiresNewerDriver "
                               "or CUDA_ERROR_UNSUPPORTED_PTX_VERSION. "
                               f"Driver >= {native} runs it natively.",
                        evidence=evidence)]
    need = FIRST_RELEASE.get(compat or "", compat) or native or "a newer driver"
    status = Status.WARN if snap.options.cpu_ok else Status.ERROR
    return [Finding(
        ID, status,
        f"driver {driver} ({cuda_text}) is too old for the bundled CUDA {cudart} runtime: needs driver >= {need}",
        detail=f"nvidia-pytriton {snap.pytriton.version} ships CUDA runtime {cudart}. A CUDA {rt[0]}.x runtime needs a "
               f"driver >= {need} (minor-version compatibility) and >= {native} to run natively; with driver {driver} "
               "cudaGetDeviceCount fails ('CUDA driver version is insufficient for CUDA runtime version') and "
               "tritonserver runs without GPUs.",
        evidence=evidence,
        fix=FixHint("upgrade-driver", f"install NVIDIA driver {native} or newer (at least {need})",
                    ("# Ubuntu: sudo apt install nvidia-driver-" + (native or "560").split(".")[0] + " && sudo reboot",
                     "# data-center GPUs may instead use the CUDA forward-compatibility package: "
                     f"sudo apt install cuda-compat-{rt[0]}-{rt_minor[1]} and put /usr/local/cuda-{rt[0]}.{rt_minor[1]}/compat "
                     "first on LD_LIBRARY_PATH")),
    )]


SIGNATURES = (
    sig(r"CUDA driver version is insufficient for CUDA runtime version", 16, gpu_only=True,
        cause="the NVIDIA driver is older than the CUDA runtime tritonserver was built with "
              "(on a host without a GPU the server prints this harmlessly)"),
)


def from_log(matches: Sequence[Match], obs: Observation) -> Finding:
    title = "the NVIDIA driver is too old for the CUDA runtime bundled with tritonserver"
    fix = FixHint("upgrade-driver", "install a driver that supports the bundled CUDA (nvidia-smi shows what the driver supports)",
                  ("nvidia-smi", "tritondoctor check", "# or run on the CPU: export CUDA_VISIBLE_DEVICES="))
    return Finding(ID, Status.ERROR, title, "", log_evidence(matches), fix, SMOKE_AREA)


CHECK = CheckSpec(ID, AREA, run, signatures=SIGNATURES, from_log=from_log, rows=(16,),
                  summary="the bundled CUDA runtime vs the driver")
