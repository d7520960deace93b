"""Fast tier: the `gpus` check (devices, device nodes, MIG, CUDA_VISIBLE_DEVICES)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import gpus as check

from tritondoctor.facts.gpu import DeviceNode


def _gpu(**changes: object) -> sf.Snapshot:
    return sf.patch(sf.base(), "gpu", **changes)


def _visible(value: str, **changes: object) -> sf.Snapshot:
    return _gpu(cuda_visible_devices=value, **changes)


def test_skip_without_facts() -> None:
    sf.one(check, sf.base(gpu=None), Status.SKIP)


def test_ok_lists_devices() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == "1 GPU: 0: NVIDIA A100-SXM4-80GB (compute 8.0, 80 GiB)"


def test_no_driver_warns_or_passes_with_cpu_ok() -> None:
    found = sf.one(check, sf.base(gpu=sf.no_gpu()), Status.WARN)
    assert "no NVIDIA GPU or driver" in found.title and found.fix is not None and found.fix.id == "install-driver"
    allowed = sf.one(check, sf.with_options(sf.base(gpu=sf.no_gpu()), cpu_ok=True), Status.OK)
    assert "(allowed by --cpu-ok)" in allowed.title


def test_no_driver_in_containers() -> None:
    docker = sf.patch(sf.base(gpu=sf.no_gpu()), "system", container="docker")
    found = sf.one(check, docker, Status.WARN)
    assert found.fix is not None and found.fix.id == "container-gpus" and "docker run --gpus all ..." in found.fix.commands
    pod = sf.patch(docker, "system", container="kubernetes")
    assert "nvidia.com/gpu" in sf.one(check, pod).fix.commands[0]  # type: ignore[union-attr]


def test_driver_without_gpu_nodes() -> None:
    found = sf.one(check, _gpu(device_nodes=sf.device_nodes("nvidiactl")), Status.WARN)
    assert "there is no /dev/nvidia<N>: no /dev/nvidia<N> node exists" in found.title
    assert found.fix is not None and found.fix.id == "device-nodes"
    inside = sf.patch(_gpu(device_nodes=(), nvidia_visible_devices="void"), "system", container="docker")
    found = sf.one(check, inside, Status.WARN)
    assert "this container was started without GPU access" in found.title and "NVIDIA_VISIBLE_DEVICES='void'" in found.detail


def test_inaccessible_device_nodes() -> None:
    nodes = (DeviceNode("/dev/nvidia0", True, False), DeviceNode("/dev/nvidiactl", True, True, "Operation not permitted (errno 1)"))
    found = sf.run(check, _gpu(device_nodes=nodes))
    denied = sf.titled(found, "cannot open the NVIDIA device nodes")
    assert denied.status is Status.ERROR and denied.fix is not None and denied.fix.id == "device-permissions"
    assert "/dev/nvidia0 (no read/write permission)" in denied.title and "Operation not permitted" in denied.title
    assert sf.titled(sf.run(check, sf.with_options(_gpu(device_nodes=nodes), cpu_ok=True)), "cannot open").status is Status.WARN


def test_driver_reports_no_gpu() -> None:
    found = sf.one(check, _gpu(devices=()), Status.WARN)
    assert "reports no GPU" in found.title and found.fix is not None and found.fix.id == "gpu-missing"


def test_old_compute_capability() -> None:
    old = sf.gpu_device(0, name="Tesla K80", compute_capability=(3, 7))
    found = sf.one(check, _gpu(devices=(old,)), Status.ERROR)
    assert "GPU 0 (Tesla K80) has compute capability 3.7, below Triton's minimum 6.0" in found.title
    assert found.fix is not None and found.fix.id == "old-gpu"
    found = sf.run(check, _gpu(devices=(old, sf.gpu_device(1))))
    assert sf.statuses(found) == [Status.WARN, Status.OK] and found[1].title.startswith("1 GPU: 1:")


def test_mig_without_instances_and_pending_change() -> None:
    empty = sf.gpu_device(0, mig_enabled=True, mig_pending=True)
    pending = sf.gpu_device(1, mig_enabled=False, mig_pending=True)
    found = sf.run(check, _gpu(devices=(empty, pending)))
    assert sf.titled(found, "in MIG mode with no MIG instance").fix.id == "mig"  # type: ignore[union-attr]
    assert sf.titled(found, "MIG mode change pending").fix.id == "mig-reset"  # type: ignore[union-attr]


def test_mig_with_instances_explains_selection() -> None:
    mig = sf.gpu_device(0, mig_enabled=True, mig_pending=True, mig_devices=("MIG-1111",))
    found = sf.one(check, _gpu(devices=(mig,)), Status.OK)
    assert "MIG: 1 instance" in found.title and "CUDA_VISIBLE_DEVICES=MIG-<uuid>" in found.detail


def test_cuda_visible_devices() -> None:
    assert "set to an empty string" in sf.titled(sf.run(check, _visible(" ")), "empty").title
    sf.titled(sf.run(check, _visible("")), "CUDA_VISIBLE_DEVICES is set to an empty string")
    none = sf.titled(sf.run(check, _visible("5")), "matches no GPU")
    assert none.status is Status.WARN and none.fix is not None and none.fix.id == "cuda-visible-devices"
    partly = sf.titled(sf.run(check, _visible("0,7,1")), "are ignored")
    assert "7, 1 match no GPU" in partly.title and "CUDA will use 0." in partly.detail
    ok = sf.titled(sf.run(check, _visible("GPU-00000000", cuda_device_order="PCI_BUS_ID")), "selects 1 GPU(s)")
    assert ok.status is Status.OK and ok.detail == ""


def test_cuda_visible_devices_not_judged_without_nvml() -> None:
    found = sf.one(check, _visible("5", nvml_ok=False, devices=(), nvml_error="Unknown Error"), Status.OK)
    assert found.title == "NVIDIA driver 560.35.03, GPU device nodes: nvidia0"
    assert found.detail == "NVML gave no device list (Unknown Error)."


def test_wsl_without_device_nodes() -> None:
    found = sf.one(check, _gpu(device_nodes=(), wsl_dxg=True, nvml_ok=False, devices=()), Status.OK)
    assert "GPU device nodes: WSL /dev/dxg" in found.title


def test_visible_devices_reads_like_cuda() -> None:
    devices = (sf.gpu_device(0), sf.gpu_device(1, uuid="GPU-00000001-x"))
    assert check.visible_devices("1,0", devices) == (["1", "0"], [])
    assert check.visible_devices("GPU-0000000", devices) == ([], ["GPU-0000000"])  # ambiguous prefix
    assert check.visible_devices("-1,0", devices) == ([], ["-1", "0"])
