"""Fast tier: the `ld-library-path` check (the user's own LD_LIBRARY_PATH entries)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import ld_library_path as check

from tritondoctor.facts.conda import PathEntry
from tritondoctor.snapshot import STUB

CUDA = "/usr/local/cuda/lib64"
BASE_LIB = "/opt/conda/lib"
OTHER_LIB = "/opt/conda/envs/other/lib"


def _path(value: str, *entries: PathEntry, **conda: object) -> sf.Snapshot:
    snap = sf.with_env(sf.base(), LD_LIBRARY_PATH=value)
    return sf.patch(snap, "conda", ld_library_path=value, entries=entries, **conda)


def _stub_loads_from(snap: sf.Snapshot, directory: str, name: str = sf.LIBPYTHON) -> sf.Snapshot:
    """The stub's `name` comes from the LD_LIBRARY_PATH entry `directory`."""
    lib = sf.lib(name, f"{directory or '.'}/{name}", via="ld_library_path", search_dir=directory, needed_by=(sf.STUB_311,))
    return sf.base(**{**_fields(snap), "resolutions": {**snap.resolutions, STUB: sf.tree(sf.STUB_311, lib)}})


def _fields(snap: sf.Snapshot) -> dict[str, object]:
    return {f: getattr(snap, f) for f in ("environ", "conda", "target")}


def test_ok_when_unset() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == "LD_LIBRARY_PATH is not set"


def test_skip_without_conda_facts() -> None:
    sf.one(check, sf.with_env(sf.base(conda=None), LD_LIBRARY_PATH=CUDA), Status.SKIP)


def test_ok_clean_value() -> None:
    found = sf.one(check, _path(CUDA, sf.entry(0, CUDA)), Status.OK)
    assert "(1 entry) has no empty, missing" in found.title


def test_set_but_empty_warns() -> None:
    found = sf.one(check, _path(""), Status.WARN)
    assert "set but empty" in found.title
    assert found.fix is not None and found.fix.id == "venv-hooks"
    assert "# and, for this shell: unset LD_LIBRARY_PATH" in found.fix.commands


def test_set_but_empty_is_an_error_when_a_library_comes_from_the_cwd() -> None:
    found = sf.one(check, _stub_loads_from(_path(""), ""), Status.ERROR)
    assert f"stub loads {sf.LIBPYTHON} from {sf.FAKE}/work" in found.title


def test_trailing_empty_entry_with_its_source() -> None:
    rc = sf.action("export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH", added=(CUDA,))
    snap = _path(f"{CUDA}:", sf.entry(0, CUDA), sf.entry(1, "", kind="empty"), rc_actions=(rc,))
    found = sf.one(check, snap, Status.WARN)
    assert "an empty entry at position 2, which the loader reads as the current directory" in found.title
    assert "Likely source: " in found.detail and ".bashrc line 12" in found.detail
    assert found.fix is not None and any("${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" in c for c in found.fix.commands)
    assert f"export LD_LIBRARY_PATH={CUDA}" in "".join(found.fix.commands)


def test_relative_entry_that_supplies_a_library_is_an_error() -> None:
    snap = _path("lib", sf.entry(0, "lib", kind="relative"))
    found = sf.one(check, _stub_loads_from(snap, "lib"), Status.ERROR)
    assert "from the current directory" in found.title and "the relative entry 'lib'" in found.title


def test_missing_and_unexpanded_directories() -> None:
    gone = sf.entry(0, "/opt/gone", exists=False, is_dir=False, realpath=None)
    raw = sf.entry(1, "$CUDA_HOME/lib64", kind="unexpanded")
    found = sf.one(check, _path("/opt/gone:$CUDA_HOME/lib64", gone, raw), Status.WARN)
    assert "names 2 directories that do not exist" in found.title and "never expanded" in found.title


def test_file_instead_of_directory() -> None:
    odd = sf.entry(0, "/etc/hosts", exists=True, is_dir=False, realpath=None)
    assert "/etc/hosts (not a directory)" in sf.one(check, _path("/etc/hosts", odd), Status.WARN).title


def test_repeated_entry_names_the_start_up_file() -> None:
    rc = sf.action("export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH", added=(CUDA,))
    snap = _path(f"{CUDA}:{CUDA}", sf.entry(0, CUDA), sf.entry(1, CUDA, duplicate_of=0), rc_actions=(rc,))
    found = sf.one(check, snap, Status.WARN)
    assert f"repeats {CUDA} (2 times)" in found.title and ".bashrc line 12 adds it each time" in found.title
    assert found.fix is not None and f"# and, for this shell: export LD_LIBRARY_PATH={CUDA}" in found.fix.commands


def test_base_environment_entry_warns() -> None:
    base = sf.entry(0, BASE_LIB, conda_prefix="/opt/conda", owner="base")
    found = sf.one(check, _path(BASE_LIB, base, base_prefix="/opt/conda"), Status.WARN)
    assert f"entry {BASE_LIB} belongs to the conda base environment (/opt/conda)" in found.title
    assert found.fix is not None and found.fix.id == "venv-hooks"


def test_other_environment_entry_that_shadows_is_an_error() -> None:
    other = sf.entry(0, OTHER_LIB, conda_prefix="/opt/conda/envs/other", owner="other-env",
                     shadows=(sf.copy(sf.LIBPYTHON, OTHER_LIB),))
    snap = _stub_loads_from(_path(OTHER_LIB, other), OTHER_LIB)
    found = sf.one(check, snap, Status.ERROR)
    assert "belongs to another conda environment" in found.title
    assert f"stub loads {sf.LIBPYTHON} from it instead of the target environment's own" in found.title


def test_foreign_entry_that_supplies_other_libraries_says_so() -> None:
    other = sf.entry(0, OTHER_LIB, conda_prefix="/opt/conda/envs/other", owner="other-env")
    found = sf.one(check, _stub_loads_from(_path(OTHER_LIB, other), OTHER_LIB, "libzmq.so.5"), Status.WARN)
    assert "; stub loads libzmq.so.5 from it" in found.title and "install those into" in found.detail


def test_shadowing_entry_outside_conda() -> None:
    shadow = sf.entry(0, CUDA, shadows=(sf.copy("libstdc++.so.6", CUDA),))
    found = sf.one(check, _path(CUDA, shadow), Status.WARN)
    assert f"entry {CUDA} holds other copies of libraries the target environment ships (libstdc++.so.6)" in found.title


def test_shadowing_entry_that_supplies_the_library_is_an_error() -> None:
    shadow = sf.entry(0, CUDA, shadows=(sf.copy(sf.LIBPYTHON, CUDA),))
    found = sf.one(check, _stub_loads_from(_path(CUDA, shadow), CUDA), Status.ERROR)
    assert f"stub loads {sf.LIBPYTHON} from LD_LIBRARY_PATH entry {CUDA}, not the target environment's own" in found.title
