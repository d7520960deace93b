"""Fast tier: the `stale-workspaces` check (workspace_* left under PYTRITON_HOME)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import stale_workspaces as check

from tritondoctor.facts.workspaces import Workspace, WorkspaceScan


def _ws(name: str, live: bool = False) -> Workspace:
    return Workspace(f"{sf.PYTRITON_HOME}/workspace_{name}", 22 * sf.MiB, 3600.0, live,
                     (4242,) if live else (), "used by pid 4242" if live else "")


def _scan(*workspaces: Workspace) -> sf.Snapshot:
    return sf.base(workspaces=WorkspaceScan(sf.PYTRITON_HOME, workspaces))


def test_skip_without_scan_or_on_error() -> None:
    sf.one(check, sf.base(workspaces=None), Status.SKIP)
    found = sf.one(check, sf.base(workspaces=WorkspaceScan(sf.PYTRITON_HOME, error="PermissionError: x")), Status.SKIP)
    assert found.detail == "PermissionError: x"


def test_ok() -> None:
    assert sf.one(check, sf.base(), Status.OK).title == f"no stale PyTriton workspace under {sf.PYTRITON_HOME}"


def test_live_workspaces_are_only_counted() -> None:
    assert "; 1 live one(s) in use" in sf.one(check, _scan(_ws("live0001", live=True)), Status.OK).title


def test_stale_workspaces() -> None:
    found = sf.one(check, _scan(_ws("aaaaaaaa"), _ws("live0001", live=True)), Status.WARN)
    assert f"1 stale PyTriton workspace(s) under {sf.PYTRITON_HOME} hold 22 MiB; 1 live one(s) in use" == found.title
    assert found.fix is not None and found.fix.id == "workspace-cleanup" and found.fix.commands[0] == "tritondoctor fix"
    assert "workspace_aaaaaaaa" in found.fix.commands[1] and "live0001" not in found.fix.commands[1]


def test_many_stale_workspaces_are_abbreviated() -> None:
    found = sf.one(check, _scan(*(_ws(f"{i:08d}") for i in range(5))), Status.WARN)
    assert found.title.startswith("5 stale") and "110 MiB" in found.title
    assert found.fix is not None and found.fix.commands[1].endswith(" ...")
