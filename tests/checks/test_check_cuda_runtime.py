"""Fast tier: the `cuda-runtime` check (bundled libcudart vs the driver)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import cuda_runtime as check


def _driver(version: str | None, cuda: tuple[int, int] | None) -> sf.Snapshot:
    return sf.patch(sf.base(), "gpu", driver_version=version, kernel_module_version=version, cuda_driver_version=cuda)


def test_skips() -> None:
    assert "not installed" in sf.one(check, sf.without_pytriton(), Status.SKIP).title
    assert "no libcudart in" in sf.one(check, sf.patch(sf.base(), "runtime", bundled_cudart=None), Status.SKIP).title
    assert "no NVIDIA driver to run it on" in sf.one(check, sf.base(gpu=sf.no_gpu()), Status.SKIP).title
    assert "CUDA version is unknown" in sf.one(check, _driver(None, None), Status.SKIP).title


def test_ok_native() -> None:
    found = sf.one(check, sf.base(), Status.OK)
    assert "runs natively on driver 560.35.03 (CUDA 12.6)" in found.title
    assert found.evidence["driver_cuda_from"] == "NVML"


def test_ok_from_the_release_notes_table() -> None:
    found = sf.one(check, _driver("565.57.01", None), Status.OK)
    assert found.evidence["driver_cuda_from"] == "driver version (release-notes table)"


def test_ok_through_minor_version_compatibility() -> None:
    found = sf.one(check, _driver("550.54.14", (12, 4)), Status.OK)
    assert "through minor-version compatibility" in found.title and "560.35.03" in found.detail


def test_driver_too_old() -> None:
    found = sf.one(check, _driver("470.82.01", (11, 4)), Status.ERROR)
    assert "driver 470.82.01 (CUDA 11.4) is too old for the bundled CUDA 12.6.77 runtime: needs driver >= 525.60.13" \
        == found.title
    assert found.fix is not None and found.fix.id == "upgrade-driver" and "nvidia-driver-560" in found.fix.commands[0]


def test_driver_older_than_every_cuda_11_branch() -> None:
    assert "(older than CUDA 11.0)" in sf.one(check, _driver("390.48", None), Status.ERROR).title


def test_cpu_ok_makes_it_a_warning() -> None:
    sf.one(check, sf.with_options(_driver("470.82.01", (11, 4)), cpu_ok=True), Status.WARN)


def test_tables() -> None:
    assert check.cuda_for_driver("525.60.11") == (12, 0)
    assert check.cuda_for_driver("not-a-version") is None
    assert check.native_min_driver("12.6.77") == "560.35.03"
    assert check.native_min_driver("12.4.1") == "550.54.14"
