"""Fast tier: the `libs` check (libraries that do not resolve)."""

from __future__ import annotations

import dataclasses

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import libs as check

from tritondoctor.loader import Rejected
from tritondoctor.snapshot import PYTHON_BACKEND, TRITONSERVER


def _with(tree_key: str, tree: object) -> sf.Snapshot:
    return sf.base(resolutions={**sf.base().resolutions, tree_key: tree})


def test_skip_without_binaries() -> None:
    sf.one(check, sf.without_pytriton(), Status.SKIP)


def test_ok_counts_libraries() -> None:
    assert "all 8 libraries of the PyTriton binaries resolve" in sf.one(check, sf.base(), Status.OK).title


def test_missing_library_with_rejected_candidates() -> None:
    missing = dataclasses.replace(sf.lib("libfoo.so.1", None), rejected=[Rejected("/opt/libfoo.so.1", "wrong ELF class")])
    found = sf.one(check, _with(TRITONSERVER, sf.tree(sf.TRITONSERVER_BIN, missing)), Status.ERROR)
    assert found.title == f"libfoo.so.1 is not found (needed by {sf.TRITONSERVER_BIN})"
    assert "Candidates were rejected: /opt/libfoo.so.1: wrong ELF class" in found.detail
    assert found.fix is not None and found.fix.id == "libs"


def test_same_missing_library_in_two_binaries_is_one_finding() -> None:
    snap = _with(TRITONSERVER, sf.tree(sf.TRITONSERVER_BIN, sf.lib("libfoo.so.1", None)))
    backend = sf.tree(sf.PYTHON_BACKEND_SO, sf.lib("libfoo.so.1", None, needed_by=(sf.PYTHON_BACKEND_SO,)))
    snap = sf.base(resolutions={**snap.resolutions, PYTHON_BACKEND: backend})
    found = sf.one(check, snap, Status.ERROR)
    assert f"needed by {sf.TRITONSERVER_BIN}, {sf.PYTHON_BACKEND_SO}" in found.title
    assert "No directory on the search path holds it." == found.detail


def test_missing_libpython_and_optional_filters_are_left_to_others() -> None:
    optional = dataclasses.replace(sf.lib("libaux.so", None), optional=True)
    snap = _with(TRITONSERVER, sf.tree(sf.TRITONSERVER_BIN, sf.lib(sf.LIBPYTHON, None), optional))
    sf.one(check, snap, Status.OK)


def test_loader_errors_and_warnings() -> None:
    tree = sf.tree(sf.TRITONSERVER_BIN, errors=["x: cannot open shared object file", "x: ELF load command misaligned"],
                   warnings=["RPATH entry /tmp/x is relative"])
    found = sf.run(check, _with(TRITONSERVER, tree))
    assert [(f.status, f.title) for f in found] == [(Status.ERROR, "x: ELF load command misaligned"),
                                                   (Status.WARN, "RPATH entry /tmp/x is relative")]
