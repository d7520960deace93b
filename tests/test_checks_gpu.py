"""GPU and CUDA checks (cuda-driver, cuda-runtime, gpus) and tritondoctor.facts.gpu.

This machine may have no GPU: the real snapshot must then give exactly one clean warning. The
parsing and the verdicts on real GPUs are tested on text captured from real machines
(tests/data/README.md says where each sample comes from); facts built from them replace the
snapshot's GPU facts, everything else in the snapshot stays real.
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import sys
from pathlib import Path

import pytest

from tritondoctor.checks import cuda_driver, cuda_runtime, gpus
from tritondoctor.facts import gpu as gpu_facts
from tritondoctor.facts.gpu import GpuDevice, GpuFacts
from tritondoctor.findings import Status
from tritondoctor.snapshot import CheckOptions, Snapshot, take_snapshot

DATA = Path(__file__).parent / "data"
HAS_NVIDIA = os.path.exists("/proc/driver/nvidia/version") or any(
    n.startswith("nvidia") for n in os.listdir("/dev"))
no_gpu_here = pytest.mark.skipif(HAS_NVIDIA, reason="this machine has an NVIDIA driver")


def read(name: str) -> str:
    return (DATA / name).read_text()


def smi_list(text: str) -> list[GpuDevice]:
    """Devices from captured `nvidia-smi -L` output (GPU lines, then their MIG lines)."""
    devices: list[GpuDevice] = []
    for line in text.splitlines():
        gpu = re.match(r"^GPU (\d+): (.+) \(UUID: (GPU-[0-9a-f-]+)\)", line)
        mig = re.match(r"^\s+MIG .*\(UUID: (MIG-[0-9a-f-]+)\)", line)
        if gpu:
            devices.append(GpuDevice(index=int(gpu.group(1)), name=gpu.group(2), uuid=gpu.group(3)))
        elif mig and devices:
            devices[-1] = dataclasses.replace(devices[-1], mig_enabled=True, mig_pending=True,
                                              mig_devices=devices[-1].mig_devices + (mig.group(1),))
    return devices


def facts(devices: list[GpuDevice], driver: str, cuda: tuple[int, int] | None = None, **kw) -> GpuFacts:
    """What gather() returns on a healthy machine with these devices (NVML answered)."""
    nodes = tuple(gpu_facts.DeviceNode(f"/dev/nvidia{d.index}", True, True) for d in devices)
    nodes += (gpu_facts.DeviceNode("/dev/nvidiactl", True, True),)
    base = dict(driver_visible=True, kernel_module_version=driver, device_nodes=nodes, nvml_attempted=True,
                nvml_ok=True, driver_version=driver, cuda_driver_version=cuda, devices=tuple(devices))
    base.update(kw)
    return GpuFacts(**base)


@pytest.fixture(scope="module")
def snap(clean_environ_module: dict) -> Snapshot:
    return take_snapshot(python=sys.executable, environ=clean_environ_module)


@pytest.fixture(scope="module")
def clean_environ_module() -> dict:
    drop = {"LD_LIBRARY_PATH", "LD_PRELOAD", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def with_gpu(snap: Snapshot, gpu: GpuFacts, cpu_ok: bool = False) -> Snapshot:
    return dataclasses.replace(snap, gpu=gpu, options=dataclasses.replace(snap.options, cpu_ok=cpu_ok))


def statuses(findings) -> list[Status]:
    return [f.status for f in findings]


# --- this machine, for real -------------------------------------------------------------------

@no_gpu_here
def test_no_gpu_is_one_clean_warning(snap: Snapshot) -> None:
    assert snap.gpu is not None and not snap.gpu.driver_visible and snap.gpu.gather_error is None
    assert not snap.gpu.nvml_attempted  # pynvml is not even imported without a driver
    found = gpus.run(snap)
    assert statuses(found) == [Status.WARN]
    assert "no NVIDIA GPU" in found[0].title and "CPU-only" in found[0].title
    assert found[0].fix is not None and found[0].fix.commands
    assert statuses(cuda_driver.run(snap)) == [Status.SKIP]
    assert statuses(cuda_runtime.run(snap)) == [Status.SKIP]


@no_gpu_here
def test_cpu_ok_turns_no_gpu_into_ok(clean_environ_module: dict) -> None:
    snap = take_snapshot(python=sys.executable, environ=clean_environ_module, options=CheckOptions(cpu_ok=True))
    found = gpus.run(snap)
    assert statuses(found) == [Status.OK]
    assert "--cpu-ok" in found[0].title


def test_cuda_visible_devices_empty_hides_every_gpu(clean_environ_module: dict) -> None:
    snap = take_snapshot(python=sys.executable, environ=dict(clean_environ_module, CUDA_VISIBLE_DEVICES=""))
    assert snap.gpu.cuda_visible_devices == ""
    empty = [f for f in gpus.run(snap) if "CUDA_VISIBLE_DEVICES" in f.title]
    assert len(empty) == 1 and empty[0].status is Status.WARN
    assert "empty string" in empty[0].title and "unset CUDA_VISIBLE_DEVICES" in empty[0].fix.commands
    ok = take_snapshot(python=sys.executable, environ=dict(clean_environ_module, CUDA_VISIBLE_DEVICES=""),
                       options=CheckOptions(cpu_ok=True))
    assert all(f.status is Status.OK for f in gpus.run(ok))


def test_gather_is_fast_and_never_raises(clean_environ_module: dict) -> None:
    import time

    start = time.perf_counter()
    result = gpu_facts.gather(clean_environ_module)
    elapsed = time.perf_counter() - start
    assert isinstance(result, GpuFacts) and result.gather_error is None
    if not HAS_NVIDIA:
        assert elapsed < 0.05, elapsed
    result.to_json()  # serialisable


# --- /proc/driver/nvidia/version, real text ----------------------------------------------------

@pytest.mark.parametrize("name,version", [
    ("proc-driver-nvidia-version-565-open.txt", "565.57.01"),
    ("proc-driver-nvidia-version-525-open.txt", "525.60.11"),
    ("proc-driver-nvidia-version-580-proprietary.txt", "580.173.02"),
])
def test_parse_proc_version(name: str, version: str) -> None:
    parsed, first = gpu_facts.parse_proc_version(read(name))
    assert parsed == version
    assert first.startswith("NVRM version: NVIDIA UNIX")


@no_gpu_here
def test_driver_without_device_nodes_or_libraries(tmp_path: Path, snap: Snapshot) -> None:
    """A container on a GPU host started without GPU access: the host's /proc shows the module,
    /dev has no nvidia nodes, and the driver's user-space libraries are absent (real NVML
    load attempt: NVML_ERROR_LIBRARY_NOT_FOUND on this machine)."""
    import ctypes

    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        pytest.skip("this machine has the NVML library: NVML fails differently here")
    except OSError:
        pass
    proc = tmp_path / "proc/driver/nvidia"
    proc.mkdir(parents=True)
    (proc / "version").write_text(read("proc-driver-nvidia-version-565-open.txt"))
    (tmp_path / "dev").mkdir()
    gathered = gpu_facts.gather({}, root=str(tmp_path))
    assert gathered.driver_visible and gathered.kernel_module_version == "565.57.01"
    assert gathered.nvml_attempted and gathered.nvml_error_code == gpu_facts.NVML_ERROR_LIBRARY_NOT_FOUND
    assert gathered.driver_version == "565.57.01"  # from the module, NVML being unavailable

    s = with_gpu(snap, gathered)
    found = gpus.run(s)
    assert statuses(found) == [Status.WARN]
    assert "no /dev/nvidia<N>" in found[0].title
    driver = cuda_driver.run(s)
    assert any("libnvidia-ml.so.1 is missing" in f.title for f in driver)
    libcuda = [f for f in driver if "libcuda.so.1" in f.title]
    assert libcuda and libcuda[0].status is Status.ERROR  # this machine has no libcuda either
    assert all(f.status is not Status.ERROR for f in cuda_driver.run(with_gpu(snap, gathered, cpu_ok=True)))
    # 565 reports CUDA 12.7; the release-notes table calls it 12.6, which the bundled 12.6 runtime needs
    runtime = cuda_runtime.run(s)
    if snap.pytriton is not None:
        assert statuses(runtime) == [Status.OK] and "natively" in runtime[0].title


@no_gpu_here
def test_stale_device_nodes_without_a_driver(tmp_path: Path, snap: Snapshot) -> None:
    """Real character device nodes with NVIDIA's major number (195) but no driver behind them:
    opening /dev/nvidiactl fails (ENXIO), as after a driver was removed."""
    (tmp_path / "dev").mkdir()
    try:
        for name, minor in (("nvidiactl", 255), ("nvidia0", 0)):
            os.mknod(tmp_path / "dev" / name, stat.S_IFCHR | 0o666, os.makedev(195, minor))
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot mknod here: {exc}")
    gathered = gpu_facts.gather({}, root=str(tmp_path))
    assert gathered.driver_visible
    ctl = [n for n in gathered.device_nodes if n.path.endswith("nvidiactl")][0]
    assert ctl.open_error is not None
    found = gpus.run(with_gpu(snap, gathered))
    assert any(f.status is Status.ERROR and "cannot open the NVIDIA device nodes" in f.title for f in found)


# --- driver/library mismatch (truenas-nvidia-drivers#19) ----------------------------------------

def test_driver_library_mismatch(snap: Snapshot) -> None:
    pynvml = pytest.importorskip("pynvml")
    error = pynvml.NVMLError(pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH)  # the class nvmlInit raises
    module, first = gpu_facts.parse_proc_version(read("proc-driver-nvidia-version-580-proprietary.txt"))
    assert "version mismatch" in read("nvidia-smi-mismatch-580.txt")
    gathered = GpuFacts(driver_visible=True, kernel_module_version=module, proc_version_line=first,
                        device_nodes=(gpu_facts.DeviceNode("/dev/nvidia0", True, True),
                                      gpu_facts.DeviceNode("/dev/nvidiactl", True, True)),
                        nvml_attempted=True, nvml_error=str(error), nvml_error_code=error.value,
                        driver_version=module)
    found = cuda_driver.run(with_gpu(snap, gathered))
    mismatch = [f for f in found if "mismatch" in f.title]
    assert len(mismatch) == 1 and mismatch[0].status is Status.ERROR
    assert "580.173.02" in mismatch[0].title and "NVML/RM version mismatch" in mismatch[0].detail
    assert mismatch[0].fix.commands
    relaxed = cuda_driver.run(with_gpu(snap, gathered, cpu_ok=True))
    assert all(f.status is not Status.ERROR for f in relaxed)
    # the GPU list is unknown without NVML, but the nodes are there: no presence warning
    assert all("CPU-only" not in f.title for f in gpus.run(with_gpu(snap, gathered)))


# --- devices from real nvidia-smi / deviceQuery output -----------------------------------------

def titan_and_ada() -> list[GpuDevice]:
    listed = smi_list(read("nvidia-smi-L-titanv-rtx5880.txt"))
    rows = [r.split(", ") for r in read("nvidia-smi-query-titanv-rtx5880.csv").splitlines()[1:]]
    cc = {int(r[4]): tuple(int(x) for x in r[0].split(".")) for r in rows}
    return [dataclasses.replace(d, compute_capability=cc[d.index]) for d in listed]


def test_two_good_gpus(snap: Snapshot) -> None:
    found = gpus.run(with_gpu(snap, facts(titan_and_ada(), "570.86.15")))
    assert statuses(found) == [Status.OK]
    assert "2 GPUs" in found[0].title and "TITAN V (compute 7.0" in found[0].title
    assert cuda_runtime.cuda_for_driver("570.86.15") == (12, 8)
    if snap.pytriton is not None and snap.runtime.bundled_cudart:
        runtime = cuda_runtime.run(with_gpu(snap, facts(titan_and_ada(), "570.86.15")))
        assert statuses(runtime) == [Status.OK] and "natively" in runtime[0].title


def test_gpu_below_triton_minimum(snap: Snapshot) -> None:
    text = read("devicequery-gtx970.txt")
    name = re.search(r'Device 0: "(.+)"', text).group(1)
    major, minor = re.search(r"Capability Major/Minor version number:\s+(\d+)\.(\d+)", text).groups()
    gtx = GpuDevice(index=0, name=name, compute_capability=(int(major), int(minor)))
    found = gpus.run(with_gpu(snap, facts([gtx], "440.33")))
    assert statuses(found) == [Status.ERROR]  # the only GPU is unusable
    assert "5.2" in found[0].title and "below Triton's minimum 6.0" in found[0].title
    mixed = gpus.run(with_gpu(snap, facts([gtx, dataclasses.replace(titan_and_ada()[0], index=1)], "570.86.15")))
    assert statuses(mixed) == [Status.WARN, Status.OK]


def test_mig_instances_and_cuda_visible_devices(snap: Snapshot) -> None:
    devices = [dataclasses.replace(d, compute_capability=(8, 0)) for d in smi_list(read("nvidia-smi-L-a100-mig.txt"))]
    assert len(devices) == 4 and len(devices[0].mig_devices) == 4 and not devices[1].mig_devices
    found = gpus.run(with_gpu(snap, facts(devices, "535.216.01", (12, 2))))
    assert statuses(found) == [Status.OK] and "MIG: 4 instances" in found[0].title
    assert "MIG-<uuid>" in found[0].detail

    def cvd(value: str):
        return [f for f in gpus.run(with_gpu(snap, facts(devices, "535.216.01", (12, 2),
                                                          cuda_visible_devices=value)))
                if "CUDA_VISIBLE_DEVICES" in f.title][0]

    assert cvd("MIG-ce861fb0").status is Status.OK
    assert cvd("GPU-d8594bd4,3").status is Status.OK
    bad_tail = cvd("0,7,1")
    assert bad_tail.status is Status.WARN and "7, 1 match no GPU" in bad_tail.title
    assert cvd("9").status is Status.WARN and "matches no GPU" in cvd("9").title
    assert cvd("GPU-").status is Status.WARN  # a prefix of every UUID is not unique
    assert gpus.visible_devices("-1,0", tuple(devices)) == ([], ["-1", "0"])


def test_mig_mode_without_instances(snap: Snapshot) -> None:
    a100 = dataclasses.replace(smi_list(read("nvidia-smi-L-a100-mig.txt"))[0], compute_capability=(8, 0),
                               mig_devices=())
    found = gpus.run(with_gpu(snap, facts([a100], "535.216.01", (12, 2))))
    assert any(f.status is Status.WARN and "no MIG instance" in f.title for f in found)


# --- driver vs bundled CUDA runtime ------------------------------------------------------------

def header_versions(text: str) -> tuple[str, tuple[int, int]]:
    match = re.search(r"Driver Version\s*:?\s*([\d.]+)\s.*?CUDA Version\s*:?\s*(\d+)\.(\d+)", text, re.S)
    return match.group(1), (int(match.group(2)), int(match.group(3)))


@pytest.fixture
def with_pytriton(snap: Snapshot) -> Snapshot:
    if snap.pytriton is None or not snap.runtime.bundled_cudart:
        pytest.skip("the test interpreter has no nvidia-pytriton with a bundled libcudart")
    return snap


def test_bundled_cudart_is_read_from_the_wheel(with_pytriton: Snapshot) -> None:
    runtime = with_pytriton.runtime
    assert re.fullmatch(r"\d+\.\d+\.\d+", runtime.bundled_cudart)
    assert os.path.basename(runtime.bundled_cudart_file).startswith("libcudart")
    assert runtime.bundled_cudart_file.endswith(runtime.bundled_cudart)


def test_minor_version_compatibility(with_pytriton: Snapshot) -> None:
    driver, cuda = header_versions(read("nvidia-smi-a100-mig-535.txt"))
    assert (driver, cuda) == ("535.216.01", (12, 2))
    devices = [dataclasses.replace(d, compute_capability=(8, 0)) for d in smi_list(read("nvidia-smi-a100-mig-535.txt"))]
    found = cuda_runtime.run(with_gpu(with_pytriton, facts(devices, driver, cuda)))
    assert statuses(found) == [Status.OK]
    assert "minor-version compatibility" in found[0].title
    if with_pytriton.runtime.bundled_cudart == "12.6.77":
        assert "560.35.03" in found[0].detail


def test_driver_too_old_for_bundled_runtime(with_pytriton: Snapshot) -> None:
    text = read("nvidia-smi-q-k80-418.txt")
    driver, cuda = header_versions(text)
    name = re.search(r"Product Name\s+:\s+(.+)", text).group(1).strip()
    uuid = re.search(r"GPU UUID\s+:\s+(\S+)", text).group(1)
    k80 = GpuDevice(index=0, name=name, uuid=uuid, compute_capability=(3, 7))  # Tesla K80: 3.7 (NVIDIA's CUDA GPU list)
    snap = with_gpu(with_pytriton, facts([k80], driver, cuda))
    found = cuda_runtime.run(snap)
    assert statuses(found) == [Status.ERROR]
    assert "418.40.04" in found[0].title and "525.60.13" in found[0].title
    assert found[0].fix.id == "upgrade-driver"
    assert statuses(cuda_runtime.run(with_gpu(with_pytriton, facts([k80], driver, cuda), cpu_ok=True))) == [Status.WARN]
    # without NVML (only the module version known) the verdict is the same
    no_nvml = dataclasses.replace(facts([k80], driver), nvml_ok=False, cuda_driver_version=None, devices=())
    found = cuda_runtime.run(with_gpu(with_pytriton, no_nvml))
    assert statuses(found) == [Status.ERROR] and "older than CUDA 11.0" in found[0].title


@pytest.mark.parametrize("driver,cuda", [
    ("525.60.11", (12, 0)), ("535.216.01", (12, 2)), ("560.35.03", (12, 6)), ("565.57.01", (12, 6)),
    ("580.173.02", (13, 0)), ("470.57.02", (11, 4)), ("418.40.04", None),
])
def test_cuda_version_of_a_driver(driver: str, cuda) -> None:
    assert cuda_runtime.cuda_for_driver(driver) == cuda


def test_nvml_is_not_imported_without_a_driver(tmp_path: Path) -> None:
    """gather() with no sign of a driver never loads pynvml (cost and side effects)."""
    code = ("import sys; from tritondoctor.facts import gpu; f = gpu.gather({}, root=sys.argv[1]); "
            "print('pynvml' in sys.modules, f.driver_visible)")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_facts_follow_the_environment(snap: Snapshot) -> None:
    moved = snap.gpu.for_environ({"CUDA_VISIBLE_DEVICES": "", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    assert moved.cuda_visible_devices == "" and moved.cuda_device_order == "PCI_BUS_ID"
    assert moved.devices == snap.gpu.devices and moved.driver_visible == snap.gpu.driver_visible


def test_wsl_library_directory_is_a_driver_sign(tmp_path: Path) -> None:
    (tmp_path / "usr/lib/wsl/lib").mkdir(parents=True)
    gathered = gpu_facts.gather({}, root=str(tmp_path))
    assert gathered.driver_visible and gathered.wsl_lib_dir == str(tmp_path / "usr/lib/wsl/lib")
