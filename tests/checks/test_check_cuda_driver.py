"""Fast tier: the `cuda-driver` check (kernel module, NVML, libcuda.so.1)."""

from __future__ import annotations

import dataclasses

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import cuda_driver as check

from tritondoctor.facts import gpu as gpu_facts


def _nvml(code: int, text: str, **changes: object) -> sf.Snapshot:
    return sf.patch(sf.base(), "gpu", nvml_ok=False, nvml_error=text, nvml_error_code=code, devices=(),
                    driver_version=None, cuda_driver_version=None, **changes)


def _no_libcuda(snap: sf.Snapshot) -> sf.Snapshot:
    return dataclasses.replace(snap, libcuda=sf.lib("libcuda.so.1", None, needed_by=(), how="not found"))


def _container(snap: sf.Snapshot, kind: str = "docker") -> sf.Snapshot:
    return sf.patch(snap, "system", container=kind)


def test_skip_without_facts_or_driver() -> None:
    sf.one(check, sf.base(gpu=None), Status.SKIP)
    assert "no NVIDIA driver" in sf.one(check, sf.base(gpu=sf.no_gpu()), Status.SKIP).title


def test_gather_error_is_a_warning() -> None:
    found = sf.one(check, sf.base(gpu=sf.no_gpu(gather_error="OSError: boom")), Status.WARN)
    assert "could not inspect the NVIDIA driver: OSError: boom" == found.title


def test_ok() -> None:
    found = sf.one(check, sf.base(), Status.OK)
    assert found.title == f"NVIDIA driver 560.35.03 (CUDA 12.6); tritonserver will load {sf.LIBCUDA}"


def test_ok_without_nvml_uses_the_module_version() -> None:
    snap = sf.patch(sf.base(), "gpu", nvml_ok=False, nvml_error="nvidia-ml-py is not importable", driver_version=None,
                    cuda_driver_version=None)
    found = sf.one(check, snap, Status.OK)
    assert found.title.startswith("NVIDIA driver 560.35.03;") and "NVML not asked" in found.detail


def test_driver_library_mismatch_on_a_host_and_in_a_container() -> None:
    snap = _nvml(gpu_facts.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "RM has detected an NVML/RM version mismatch.")
    found = sf.one(check, snap, Status.ERROR)
    assert "version mismatch: kernel module 560.35.03" in found.title
    assert found.fix is not None and found.fix.id == "driver-mismatch" and "sudo reboot" in found.fix.commands
    inside = sf.one(check, _container(snap), Status.ERROR)
    assert inside.fix is not None and "Dockerfile" in inside.fix.commands[0]


def test_cpu_ok_turns_driver_problems_into_warnings() -> None:
    snap = _nvml(gpu_facts.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "mismatch")
    sf.one(check, sf.with_options(snap, cpu_ok=True), Status.WARN)


def test_module_not_loaded() -> None:
    found = sf.one(check, _nvml(gpu_facts.NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"), Status.ERROR)
    assert "kernel module is not loaded" in found.title and found.fix is not None and found.fix.id == "load-driver"


def test_no_permission() -> None:
    found = sf.one(check, _nvml(gpu_facts.NVML_ERROR_NO_PERMISSION, "Insufficient Permissions"), Status.ERROR)
    assert found.fix is not None and found.fix.id == "device-permissions"


def test_nvml_library_missing_is_a_warning_while_libcuda_loads() -> None:
    snap = _nvml(gpu_facts.NVML_ERROR_LIBRARY_NOT_FOUND, "NVML Shared Library Not Found")
    found = sf.one(check, snap, Status.WARN)
    assert "libnvidia-ml.so.1 is missing" in found.title and found.fix is not None and found.fix.id == "driver-capabilities"
    assert "libnvidia-compute-560" in found.fix.commands[0]
    inside = sf.one(check, _container(snap), Status.WARN)
    assert inside.fix is not None and "NVIDIA_DRIVER_CAPABILITIES=compute,utility" in inside.fix.commands[0]


def test_nvml_and_libcuda_both_missing() -> None:
    found = sf.run(check, _no_libcuda(_nvml(gpu_facts.NVML_ERROR_LIBRARY_NOT_FOUND, "not found")))
    assert sf.statuses(found) == [Status.ERROR, Status.ERROR]
    assert sf.fix_ids(found) == ["driver-capabilities", "libcuda"]


def test_other_nvml_error() -> None:
    found = sf.one(check, _nvml(gpu_facts.NVML_ERROR_GPU_IS_LOST, "GPU is lost"), Status.ERROR)
    assert found.title == "NVML cannot talk to the driver: GPU is lost"
    assert found.fix is not None and found.fix.id == "driver-health"


def test_libcuda_not_found_on_a_host() -> None:
    found = sf.one(check, _no_libcuda(sf.base()), Status.ERROR)
    assert "will not find libcuda.so.1" in found.title and found.fix is not None and found.fix.id == "libcuda"
    assert "libnvidia-compute-560" in found.fix.commands[0]


def test_libcuda_not_found_under_wsl_and_in_a_container() -> None:
    wsl = sf.patch(_no_libcuda(sf.base()), "gpu", wsl_lib_dir="/usr/lib/wsl/lib", wsl_dxg=True)
    found = sf.one(check, wsl, Status.ERROR)
    assert found.fix is not None and "WSL 2" in found.fix.summary and "/usr/lib/wsl/lib" in found.fix.commands[0]
    inside = sf.one(check, _container(_no_libcuda(sf.base())), Status.ERROR)
    assert inside.fix is not None and "container" in inside.fix.summary


def test_libcuda_not_searched_says_nothing() -> None:
    sf.one(check, sf.base(libcuda=None), Status.OK)
