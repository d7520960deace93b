"""Conda facts: which conda environments the shell has activated, what their activation hooks
do to LD_LIBRARY_PATH, and what each LD_LIBRARY_PATH entry is.

Everything here is read statically (hook scripts and shell start-up files are parsed by
`shellvars`, never run) and all filesystem access happens in `gather`, so checks stay pure.
`gather` never raises: what could not be read is listed in `CondaFacts.errors`. The hooks and
start-up files are read by facts/conda_hooks.py, the LD_LIBRARY_PATH entries described by
facts/conda_entries.py.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping

from tritondoctor.facts.conda_entries import (  # noqa: F401 - re-exported
    CORE_RUNTIME_LIBRARIES,
    SAME_CONTENT_PROBE,
    SHARED_PREFIXES,
    EntryReader,
    LibraryCopy,
    PathEntry,
)
from tritondoctor.facts.conda_hooks import (  # noqa: F401 - re-exported
    HOOK_SHELLS,
    MAX_SCRIPT_BYTES,
    RC_FILES,
    EnvHooks,
    HookScript,
    ScriptReader,
)
from tritondoctor.facts.conda_prefixes import is_conda_prefix as _is_conda_prefix
from tritondoctor.facts.conda_prefixes import real as _real
from tritondoctor.facts.conda_prefixes import unique_existing as _unique_existing
from tritondoctor.facts.inputs import EnvReads
from tritondoctor.facts.shellvars import LD_VAR, ShellAction, parse_ld_library_path
from tritondoctor.facts.shellvars import normalise as _normalise
from tritondoctor.facts.target import TargetPython

READS = EnvReads(
    names=frozenset({"CONDA_PREFIX", "CONDA_SHLVL", "CONDA_DEFAULT_ENV", "CONDA_EXE", "MAMBA_EXE",
                     "MAMBA_ROOT_PREFIX", LD_VAR, "HOME"}),
    prefixes=("CONDA_PREFIX_",),
    files=tuple(f"$HOME/{rc}" for rc in RC_FILES) + ("<prefix>/etc/conda/activate.d", "<prefix>/etc/conda/deactivate.d"),
)

# ---------------------------------------------------------------------------------------------
# The facts
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CondaFacts:
    conda_prefix: str | None = None
    conda_prefix_exists: bool | None = None
    shlvl_raw: str | None = None
    shlvl: int | None = None  # None when unset or not an integer
    default_env: str | None = None
    prefix_chain: Mapping[int, str] = field(default_factory=dict)  # CONDA_PREFIX_N by N
    conda_exe: str | None = None
    mamba_exe: str | None = None
    mamba_root_prefix: str | None = None
    base_prefix: str | None = None
    base_source: str = ""  # how base_prefix was found
    target_prefix: str | None = None
    target_is_conda_env: bool = False
    # A venv target made from a conda env's python: that env (None otherwise).
    target_base_conda_env: str | None = None
    hooks: tuple[EnvHooks, ...] = ()
    ld_library_path: str | None = None
    entries: tuple[PathEntry, ...] = ()
    target_lib_dirs: tuple[str, ...] = ()
    rc_actions: tuple[ShellAction, ...] = ()  # LD_LIBRARY_PATH statements in ~/.bashrc & co.
    # Every prefix named above -> its realpath (None: does not exist), so checks compare
    # prefixes without touching the filesystem.
    realpaths: Mapping[str, str | None] = field(default_factory=dict)
    errors: tuple[str, ...] = ()

    def same_prefix(self, a: str | None, b: str | None) -> bool:
        if not a or not b:
            return False
        return (self.realpaths.get(a) or _normalise(a)) == (self.realpaths.get(b) or _normalise(b))

    def exists(self, prefix: str) -> bool | None:
        return (self.realpaths.get(prefix) is not None) if prefix in self.realpaths else None

    @property
    def in_use(self) -> bool:
        return bool(
            self.conda_prefix or self.shlvl_raw or self.prefix_chain or self.target_is_conda_env
            or self.target_base_conda_env
        )

    def hooks_for(self, prefix: str | None) -> EnvHooks | None:
        return next((h for h in self.hooks if self.same_prefix(h.prefix, prefix)), None)

    @property
    def target_hooks(self) -> EnvHooks | None:
        return self.hooks_for(self.target_prefix) if self.target_is_conda_env else None

    def to_json(self) -> dict[str, Any]:
        return {
            "conda_prefix": self.conda_prefix,
            "conda_prefix_exists": self.conda_prefix_exists,
            "conda_shlvl": self.shlvl_raw,
            "conda_default_env": self.default_env,
            "prefix_chain": {str(k): v for k, v in sorted(self.prefix_chain.items())},
            "conda_exe": self.conda_exe,
            "mamba_exe": self.mamba_exe,
            "mamba_root_prefix": self.mamba_root_prefix,
            "base_prefix": self.base_prefix,
            "base_source": self.base_source,
            "target_prefix": self.target_prefix,
            "target_is_conda_env": self.target_is_conda_env,
            "target_base_conda_env": self.target_base_conda_env,
            "hooks": [h.to_json() for h in self.hooks],
            "ld_library_path": self.ld_library_path,
            "entries": [e.to_json() for e in self.entries],
            "target_lib_dirs": list(self.target_lib_dirs),
            "rc_actions": [a.to_json() for a in self.rc_actions],
            "realpaths": dict(self.realpaths),
            "errors": list(self.errors),
        }


def gather(environ: Mapping[str, str], target: TargetPython | None) -> CondaFacts:
    try:
        return _gather(environ, target)
    except Exception as exc:  # a fact gatherer must never take the snapshot down
        return CondaFacts(
            conda_prefix=environ.get("CONDA_PREFIX"),
            shlvl_raw=environ.get("CONDA_SHLVL"),
            ld_library_path=environ.get(LD_VAR),
            errors=(f"conda facts: {exc.__class__.__name__}: {exc}",),
        )


@dataclass(frozen=True)
class _Prefixes:
    """The conda prefixes the environment and the target name."""

    conda_prefix: str | None
    chain: Mapping[int, str]
    target_prefix: str | None
    target_is_conda: bool
    target_base_env: str | None
    base_prefix: str | None
    base_source: str


def _prefixes(env: Mapping[str, str], target: TargetPython | None) -> _Prefixes:
    conda_prefix = env.get("CONDA_PREFIX") or None
    chain = _prefix_chain(env)
    target_prefix = target.prefix if target else None
    target_base_env = None
    if target and target.in_venv and _is_conda_prefix(target.base_prefix):
        target_base_env = target.base_prefix
    base_prefix, base_source = _base_prefix(env, conda_prefix, env.get("CONDA_SHLVL"), chain, target_prefix)
    return _Prefixes(
        conda_prefix=conda_prefix,
        chain=chain,
        target_prefix=target_prefix,
        target_is_conda=bool(target_prefix) and _is_conda_prefix(target_prefix),
        target_base_env=target_base_env,
        base_prefix=base_prefix,
        base_source=base_source,
    )


def _gather(env: Mapping[str, str], target: TargetPython | None) -> CondaFacts:
    errors: list[str] = []
    p = _prefixes(env, target)
    reader = EntryReader(target, errors)
    target_lib_dirs = reader.target_lib_dirs()
    entries = reader.entries(env.get(LD_VAR), p.target_prefix, p.target_base_env, p.base_prefix, target_lib_dirs)

    scripts = ScriptReader(errors)
    hook_prefixes = [p.target_prefix if p.target_is_conda else None, p.conda_prefix, *p.chain.values(), p.base_prefix]
    hook_prefixes += [e.conda_prefix for e in entries]
    hooks = tuple(scripts.hooks(x) for x in _unique_existing(hook_prefixes) if _is_conda_prefix(x))

    named = [p.conda_prefix, *p.chain.values(), p.target_prefix, p.target_base_env, p.base_prefix]
    named += [e.conda_prefix for e in entries] + [h.prefix for h in hooks]
    realpaths = {x: (_real(x) if os.path.isdir(x) else None) for x in named if x}
    shlvl_raw = env.get("CONDA_SHLVL")
    return CondaFacts(
        conda_prefix=p.conda_prefix,
        conda_prefix_exists=os.path.isdir(p.conda_prefix) if p.conda_prefix else None,
        shlvl_raw=shlvl_raw,
        shlvl=_int_or_none(shlvl_raw),
        default_env=env.get("CONDA_DEFAULT_ENV"),
        prefix_chain=p.chain,
        conda_exe=env.get("CONDA_EXE") or None,
        mamba_exe=env.get("MAMBA_EXE") or None,
        mamba_root_prefix=env.get("MAMBA_ROOT_PREFIX") or None,
        base_prefix=p.base_prefix,
        base_source=p.base_source,
        target_prefix=p.target_prefix,
        target_is_conda_env=p.target_is_conda,
        target_base_conda_env=p.target_base_env,
        hooks=hooks,
        ld_library_path=env.get(LD_VAR),
        entries=entries,
        target_lib_dirs=target_lib_dirs,
        rc_actions=scripts.rc_actions(env.get("HOME")),
        realpaths=realpaths,
        errors=tuple(errors),
    )


def _base_prefix(
    env: Mapping[str, str], conda_prefix: str | None, shlvl_raw: str | None, chain: Mapping[int, str],
    target_prefix: str | None,
) -> tuple[str | None, str]:
    for var in ("CONDA_EXE", "MAMBA_EXE"):
        exe = env.get(var)
        if exe:
            # <base>/bin/conda or <base>/condabin/conda
            prefix = os.path.dirname(os.path.dirname(exe))
            if _is_conda_prefix(prefix):
                return prefix, var
    root = env.get("MAMBA_ROOT_PREFIX")
    if root and os.path.isdir(root):
        return root, "MAMBA_ROOT_PREFIX"
    shlvl = _int_or_none(shlvl_raw) or 0
    candidates = [chain.get(1) if shlvl > 1 else None, conda_prefix, *chain.values(), target_prefix]
    candidates += [_envs_root(p) for p in (conda_prefix, target_prefix, *chain.values())]
    for prefix in _unique_existing(candidates):
        if _looks_like_base(prefix):
            return prefix, "markers (conda-meta/history and condabin/)"
    for prefix in _unique_existing([_envs_root(p) for p in (conda_prefix, target_prefix, *chain.values())]):
        if _is_conda_prefix(prefix):
            return prefix, "parent of envs/"
    if shlvl > 1 and chain.get(1):
        return chain[1], "CONDA_PREFIX_1"
    return None, ""


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


def _prefix_chain(environ: Mapping[str, str]) -> dict[int, str]:
    chain: dict[int, str] = {}
    for key, value in environ.items():
        if key.startswith("CONDA_PREFIX_") and key[len("CONDA_PREFIX_"):].isdigit() and value:
            chain[int(key[len("CONDA_PREFIX_"):])] = value
    return dict(sorted(chain.items()))


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def _looks_like_base(prefix: str) -> bool:
    return os.path.isfile(os.path.join(prefix, "conda-meta", "history")) and os.path.isdir(
        os.path.join(prefix, "condabin")
    )


def _envs_root(prefix: str | None) -> str | None:
    """/x/envs/name -> /x (where conda keeps named environments of the installation at /x)."""
    if not prefix:
        return None
    parent = os.path.dirname(prefix.rstrip("/"))
    return os.path.dirname(parent) if os.path.basename(parent) == "envs" else None


__all__ = ["CondaFacts", "EnvHooks", "HookScript", "LibraryCopy", "PathEntry", "ShellAction", "gather",
           "parse_ld_library_path"]
