"""Conda activation hooks (etc/conda/{activate,deactivate}.d) and shell start-up files, read
statically for what they do to LD_LIBRARY_PATH (parsed by `shellvars`, never run)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from tritondoctor.facts.shellvars import ShellAction, parse_ld_library_path

# Shell start-up files (relative to $HOME) that people put `export LD_LIBRARY_PATH=...` into.
RC_FILES = (
    ".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".zshenv", ".zprofile",
    ".config/fish/config.fish", ".cshrc", ".tcshrc",
)

# What conda runs from etc/conda/{activate,deactivate}.d, by extension (conda's activate.py).
HOOK_SHELLS = {".sh": "sh", ".fish": "fish", ".csh": "csh", ".xsh": "xsh", ".bat": "bat", ".ps1": "ps1"}


MAX_SCRIPT_BYTES = 256 * 1024


@dataclass(frozen=True)
class HookScript:
    path: str
    phase: str  # "activate" | "deactivate"
    shell: str  # "sh", "fish", "csh", "xsh", "bat", "ps1", or "other" (conda runs no such file)
    ld_library_path: tuple[ShellAction, ...] = ()

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def modifies(self) -> bool:
        return any(a.modifies for a in self.ld_library_path)

    @property
    def restores(self) -> bool:
        return any(a.restores or a.modifies for a in self.ld_library_path)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "phase": self.phase,
            "shell": self.shell,
            "ld_library_path": [a.to_json() for a in self.ld_library_path],
        }


@dataclass(frozen=True)
class EnvHooks:
    """The etc/conda/activate.d and deactivate.d scripts of one environment."""

    prefix: str
    activate: tuple[HookScript, ...] = ()
    deactivate: tuple[HookScript, ...] = ()

    def touching_ld_library_path(self) -> list[HookScript]:
        return [s for s in self.activate + self.deactivate if s.ld_library_path]

    def unrestored(self) -> list[HookScript]:
        """Activate scripts that change LD_LIBRARY_PATH with no deactivate script for the same
        shell that touches it: the change outlives `conda deactivate`."""
        restoring_shells = {s.shell for s in self.deactivate if s.restores}
        return [s for s in self.activate if s.modifies and s.shell not in restoring_shells]

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "activate": [s.to_json() for s in self.activate],
            "deactivate": [s.to_json() for s in self.deactivate],
        }


class ScriptReader:
    """Reads hook scripts and start-up files; what could not be read goes to `errors`."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors

    def hooks(self, prefix: str) -> EnvHooks:
        phases: dict[str, tuple[HookScript, ...]] = {}
        for phase in ("activate", "deactivate"):
            directory = os.path.join(prefix, "etc", "conda", f"{phase}.d")
            try:
                names = sorted(os.listdir(directory))
            except FileNotFoundError:
                names = []
            except OSError as exc:
                self.errors.append(f"{directory}: {exc.strerror or exc}")
                names = []
            scripts = []
            for name in names:
                path = os.path.join(directory, name)
                if not os.path.isfile(path):
                    continue
                shell = HOOK_SHELLS.get(os.path.splitext(name)[1], "other")
                actions: tuple[ShellAction, ...] = ()
                if shell in ("sh", "fish", "csh"):
                    text = self._read(path)
                    actions = tuple(parse_ld_library_path(text, path, shell, conda_prefix=prefix)) if text else ()
                scripts.append(HookScript(path=path, phase=phase, shell=shell, ld_library_path=actions))
            phases[phase] = tuple(scripts)
        return EnvHooks(prefix=prefix, activate=phases["activate"], deactivate=phases["deactivate"])

    def rc_actions(self, home: str | None) -> tuple[ShellAction, ...]:
        if not home:
            return ()
        actions: list[ShellAction] = []
        for rel in RC_FILES:
            path = os.path.join(home, rel)
            if not os.path.isfile(path):
                continue
            shell = "fish" if rel.endswith(".fish") else "csh" if "csh" in rel else "sh"
            text = self._read(path)
            if text:
                actions += parse_ld_library_path(text, path, shell, conda_prefix=None)
        return tuple(actions)

    def _read(self, path: str) -> str:
        try:
            with open(path, "rb") as fh:
                return fh.read(MAX_SCRIPT_BYTES).decode("utf-8", errors="replace")
        except OSError as exc:
            self.errors.append(f"{path}: {exc.strerror or exc}")
            return ""
