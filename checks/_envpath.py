"""Helpers of the `ld-library-path` and `conda-prefix` checks (not a check: the leading
underscore hides it from the registry)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping

from tritondoctor import remedies
from tritondoctor.facts.shellvars import ShellAction
from tritondoctor.findings import FixHint

if TYPE_CHECKING:
    from tritondoctor.facts.conda import CondaFacts, PathEntry
    from tritondoctor.snapshot import Snapshot

LD_VAR = "LD_LIBRARY_PATH"


@dataclass(frozen=True)
class Supplied:
    """A library a PyTriton binary gets from one LD_LIBRARY_PATH entry."""

    binaries: tuple[str, ...]  # of "tritonserver", "python_backend", "stub", "libcuda (dlopen)"
    name: str
    path: str

    def to_json(self) -> dict[str, object]:
        return {"binaries": list(self.binaries), "name": self.name, "path": self.path}


def supplied_by_entry(snap: "Snapshot") -> dict[str, list[Supplied]]:
    """LD_LIBRARY_PATH directory (as the loader normalises it, "" = current directory) -> what
    the PyTriton binaries load from it, per the resolutions in the snapshot."""
    libraries = [(key, lib) for key, tree in snap.resolutions.items() for lib in tree.libraries]
    if snap.libcuda is not None:
        libraries.append(("libcuda (dlopen)", snap.libcuda))
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for binary, lib in libraries:
        if lib.via != "ld_library_path" or lib.path is None or lib.search_dir is None:
            continue
        binaries = grouped.setdefault((lib.search_dir, lib.name, lib.path), [])
        if binary not in binaries:
            binaries.append(binary)
    out: dict[str, list[Supplied]] = {}
    for (directory, name, path), binaries in grouped.items():
        out.setdefault(directory, []).append(Supplied(tuple(binaries), name, path))
    return out


def export_without(value: str, drop: Iterable[int]) -> str:
    """The shell command that sets LD_LIBRARY_PATH to `value` minus the entries at `drop`."""
    dropped = set(drop)
    kept = [e for i, e in enumerate(re.split(r"[:;]", value)) if i not in dropped]
    return export_entries(kept)


def export_entries(entries: list[str]) -> str:
    if not entries:
        return f"unset {LD_VAR}"
    return f"export {LD_VAR}={shlex.quote(':'.join(entries))}"


def _python_flag(snap: "Snapshot") -> str | None:
    target = snap.target
    return target.executable if target is not None and target.selected_by == "--python" else None


def hooks_fix(snap: "Snapshot", summary: str, now: Iterable[str] = (), edits: Iterable[str] = ()) -> FixHint:
    """Move LD_LIBRARY_PATH settings where they belong: the target environment's own activation
    hooks (conda's etc/conda/activate.d + deactivate.d, or the venv's activate script)."""
    kind = snap.target.env_kind if snap.target else "system"
    return remedies.hooks_fix(kind, summary, python=_python_flag(snap), now=now, edits=edits)


def loader_path_fix(snap: "Snapshot", directories: list[str], summary: str) -> FixHint:
    """Put `directories` first on LD_LIBRARY_PATH when the environment is active."""
    return hooks_fix(snap, summary, now=[remedies.prepend_export(directories)])


def sources_of(entry: "PathEntry", facts: "CondaFacts", environ: Mapping[str, str]) -> list[ShellAction]:
    """The start-up file lines and activation hooks that can have put this entry on the path."""
    actions = list(facts.rc_actions) + [
        action for hooks in facts.hooks for script in hooks.activate for action in script.ld_library_path
    ]
    return [a for a in actions if a.modifies and a.could_add(entry.directory, environ, entry.conda_prefix)]


def where(action: ShellAction) -> str:
    return f"{action.file} line {action.line}"


def plural(n: int, one: str, many: str | None = None) -> str:
    return one if n == 1 else (many or one + "s")
