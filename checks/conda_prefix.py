"""Conda's shell state against the environment PyTriton will run in: CONDA_PREFIX, the
CONDA_SHLVL / CONDA_PREFIX_N stack, the target environment's activation hooks, and start-up files
that derive LD_LIBRARY_PATH from $CONDA_PREFIX.

The classic failure: ~/.bashrc has `export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:$LD_LIBRARY_PATH`;
the file is sourced again after conda's init block re-activated base, so CONDA_PREFIX (and the new
LD_LIBRARY_PATH entry) now point at base while the Python in use belongs to another environment.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from tritondoctor.checks._envpath import hooks_fix, plural, where
from tritondoctor.checkspec import CheckSpec
from tritondoctor.facts.conda import CondaFacts, HookScript
from tritondoctor.facts.shellvars import ShellAction
from tritondoctor.findings import Finding, FixHint, Status
from tritondoctor.snapshot import Snapshot

ID = "conda-prefix"
AREA = "Environment variables"
ORDER = 51

_VERBS = {
    "set": "replaces LD_LIBRARY_PATH with",
    "prepend": "prepends",
    "append": "appends",
    "wrap": "adds around LD_LIBRARY_PATH",
    "computed": "sets LD_LIBRARY_PATH from a command",
}


def run(snap: Snapshot) -> list[Finding]:
    facts = snap.conda
    if facts is None:
        return [Finding(ID, Status.SKIP, "conda state was not inspected (no environment facts)")]
    rc_from_prefix = [a for a in facts.rc_actions if a.modifies and a.uses_conda_prefix]
    if not facts.in_use and not rc_from_prefix:
        return [Finding(ID, Status.SKIP, "conda is not in use: no CONDA_* variables and the target is not a conda env")]
    findings = [
        *_prefix_vs_target(snap, facts),
        *_shell_level(facts),
        *_target_hooks(snap, facts),
        *_rc_from_conda_prefix(snap, facts, rc_from_prefix),
    ]
    if not any(f.status in (Status.WARN, Status.ERROR) for f in findings):
        findings.insert(0, Finding(ID, Status.OK, _healthy_title(facts), evidence=_state(facts)))
    return findings


def _healthy_title(facts: CondaFacts) -> str:
    if facts.conda_prefix and facts.target_is_conda_env:
        return f"the active conda environment ({facts.conda_prefix}) is the one the target Python belongs to"
    if facts.target_is_conda_env:
        return f"the target is the conda environment {facts.target_prefix}; conda's shell state is consistent"
    return "conda's shell state is consistent"


def _prefix_vs_target(snap: Snapshot, facts: CondaFacts) -> list[Finding]:
    active, target = facts.conda_prefix, facts.target_prefix
    if target is None:
        return []
    if active is None:
        return _not_activated(snap, facts)
    if not facts.conda_prefix_exists:
        return [Finding(
            ID, Status.WARN,
            f"CONDA_PREFIX points to {active}, which does not exist (a removed environment?)",
            detail="Anything derived from $CONDA_PREFIX refers to a directory that is gone.",
            evidence=_state(facts),
            fix=FixHint("conda-activate", f"activate the environment of {target} again",
                        ("conda deactivate", _activate_command(facts))),
        )]
    if facts.same_prefix(active, target) or facts.same_prefix(active, facts.target_base_conda_env):
        return []
    on_path = [e.raw for e in facts.entries if e.duplicate_of is None and facts.same_prefix(e.conda_prefix, active)]
    active_hooks = facts.hooks_for(active)
    hook_scripts = [s.name for s in active_hooks.activate if s.modifies] if active_hooks else []
    evidence = {**_state(facts), "ld_library_path_entries_from_conda_prefix": on_path,
                "conda_prefix_hooks_touching_ld_library_path": hook_scripts}
    consequences = ""
    if on_path:
        consequences += f" LD_LIBRARY_PATH holds {', '.join(on_path)} from it (see the ld-library-path findings)."
    if hook_scripts:
        consequences += f" Its activation hooks ({', '.join(hook_scripts)}) changed LD_LIBRARY_PATH."
    if facts.target_is_conda_env:
        return [Finding(
            ID, Status.WARN,
            f"CONDA_PREFIX is {active} but the Python in use belongs to the conda environment {target}",
            detail=f"conda activated {active}, so its activation hooks ran and {target}'s did not; anything derived "
                   f"from $CONDA_PREFIX (e.g. `export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:...` in ~/.bashrc, read "
                   f"again after conda's init block activated base) points at the wrong environment." + consequences,
            evidence=evidence,
            fix=FixHint("conda-activate", f"activate {target} before starting PyTriton", (_activate_command(facts),)),
        )]
    kind = "venv" if snap.target is not None and snap.target.in_venv else "Python"
    if not on_path and not hook_scripts:
        return [Finding(
            ID, Status.OK,
            f"the conda environment {active} is active, but the target is the {kind} {target}; nothing of "
            f"{active} is on LD_LIBRARY_PATH",
            evidence=evidence,
        )]
    return [Finding(
        ID, Status.WARN,
        f"the conda environment {active} is still active under the {kind} {target}, and its libraries are on "
        f"LD_LIBRARY_PATH" if on_path else f"the conda environment {active} is still active under the {kind} {target}, "
        f"and its activation hooks changed LD_LIBRARY_PATH",
        detail=f"{active} was activated (by hand or by conda's init block in ~/.bashrc) and stays active under the "
               f"{kind}: its settings apply to PyTriton too." + consequences,
        evidence=evidence,
        fix=FixHint("conda-deactivate", f"deactivate {active} before activating {target}",
                    ("conda deactivate", f"source {shlex.quote(os.path.join(target, 'bin', 'activate'))}",
                     "# to stop conda activating base in every new shell: conda config --set auto_activate_base false")),
    )]


def _not_activated(snap: Snapshot, facts: CondaFacts) -> list[Finding]:
    """The target is a conda env used without `conda activate`: its hooks never ran."""
    hooks = facts.target_hooks
    scripts = [s for s in hooks.activate if s.modifies] if hooks else []
    if not facts.target_is_conda_env or not scripts:
        return []
    return [Finding(
        ID, Status.WARN,
        f"the conda environment {facts.target_prefix} is not activated, so its activate.d "
        f"{plural(len(scripts), 'hook')} ({', '.join(s.name for s in scripts)}) did not set LD_LIBRARY_PATH",
        detail="Running the environment's python by path skips conda's activation; PyTriton then starts without "
               "the library settings the environment's packages install for themselves.",
        evidence={**_state(facts), "hooks": [s.to_json() for s in scripts]},
        fix=FixHint("conda-activate", f"activate {facts.target_prefix} before starting PyTriton",
                    (_activate_command(facts),)),
    )]


def _shell_level(facts: CondaFacts) -> list[Finding]:
    raw, level = facts.shlvl_raw, facts.shlvl
    if raw is None:
        return []
    reset = FixHint("conda-reset", "start from a clean shell and activate once",
                    ("# open a new terminal (or: exec bash -l), then:", _activate_command(facts)))
    if level is None:
        return [Finding(ID, Status.WARN, f"CONDA_SHLVL is {raw!r}, not a number",
                        detail="conda cannot track activations; `conda activate`/`deactivate` fail or misbehave.",
                        evidence=_state(facts), fix=reset)]
    if level > 0 and not facts.conda_prefix:
        return [Finding(
            ID, Status.WARN, f"CONDA_SHLVL is {level} but CONDA_PREFIX is not set",
            detail="conda's variables were half cleared (by `env -u`, sudo, an IDE or a script): the shell believes "
                   "an environment is active but nothing says which, so `conda deactivate` restores nonsense.",
            evidence=_state(facts), fix=reset)]
    if level == 0 and facts.conda_prefix:
        return [Finding(
            ID, Status.WARN, f"CONDA_SHLVL is 0 but CONDA_PREFIX is set ({facts.conda_prefix})",
            detail="conda believes nothing is active, yet CONDA_PREFIX was left (or exported by hand).",
            evidence=_state(facts), fix=reset)]
    expected = set(range(1, max(level, 0)))
    missing = sorted(expected - set(facts.prefix_chain))
    extra = sorted(set(facts.prefix_chain) - expected)
    gone = [p for k, p in facts.prefix_chain.items() if k in expected and facts.exists(p) is False]
    if not missing and not extra and not gone:
        return []
    problems = []
    if missing:
        problems.append("missing " + ", ".join(f"CONDA_PREFIX_{k}" for k in missing))
    if extra:
        problems.append("left over " + ", ".join(f"CONDA_PREFIX_{k}={facts.prefix_chain[k]}" for k in extra))
    if gone:
        problems.append("pointing to removed environments: " + ", ".join(gone))
    return [Finding(
        ID, Status.WARN,
        f"conda's activation stack does not match CONDA_SHLVL={level}: {'; '.join(problems)}",
        detail=f"Each `conda activate` saves the previous CONDA_PREFIX as CONDA_PREFIX_<level>; with CONDA_SHLVL="
               f"{level} exactly CONDA_PREFIX_1..{level - 1} should exist. A broken stack comes from a shell that "
               f"inherited conda's variables (tmux, an IDE terminal, `bash` inside an activated shell) and ran "
               f"conda's init again: `conda deactivate` will then return to the wrong environment.",
        evidence=_state(facts), fix=reset,
    )]


def _target_hooks(snap: Snapshot, facts: CondaFacts) -> list[Finding]:
    hooks = facts.target_hooks
    if hooks is None:
        return []
    findings: list[Finding] = []
    unrestored = hooks.unrestored()
    for script in unrestored:
        findings.append(Finding(
            ID, Status.WARN,
            f"{script.path} {_what(script)}, and no deactivate.d script restores LD_LIBRARY_PATH",
            detail="The change outlives `conda deactivate` and switching environments: the next environment runs "
                   f"with {hooks.prefix}'s libraries on LD_LIBRARY_PATH (and re-activating adds them again).",
            evidence={"prefix": hooks.prefix, "script": script.to_json(),
                      "deactivate": [s.to_json() for s in hooks.deactivate]},
            fix=hooks_fix(snap, "pair the activate.d hook with a deactivate.d script that restores LD_LIBRARY_PATH"),
        ))
    restored = [s for s in hooks.activate if s.modifies and s not in unrestored]
    if restored:
        restorers = [s for s in hooks.deactivate if s.restores]
        findings.append(Finding(
            ID, Status.OK,
            f"{hooks.prefix}'s activation hooks change LD_LIBRARY_PATH and undo it on deactivation: "
            + "; ".join(f"activate.d/{s.name} {_what(s)}" for s in restored)
            + f" (restored by {', '.join('deactivate.d/' + s.name for s in restorers)})",
            evidence={"prefix": hooks.prefix, "activate": [s.to_json() for s in restored],
                      "deactivate": [s.to_json() for s in restorers]},
        ))
    return findings


def _rc_from_conda_prefix(snap: Snapshot, facts: CondaFacts, actions: list[ShellAction]) -> list[Finding]:
    if not actions:
        return []
    first = actions[0]
    return [Finding(
        ID, Status.WARN,
        f"{where(first)} derives LD_LIBRARY_PATH from $CONDA_PREFIX: it adds the lib directory of whichever "
        f"environment is active when the file is read",
        detail="Start-up files run before and again after conda's init block, in every nested shell, and on every "
               "`source ~/.bashrc`: the entry then points at base (or another environment) and piles up. The place "
               "for an environment's own LD_LIBRARY_PATH is its activation hooks (etc/conda/activate.d and "
               "deactivate.d), which conda runs with the right CONDA_PREFIX and undoes on deactivation.",
        evidence={"lines": [a.to_json() for a in actions]},
        fix=hooks_fix(snap, "move the LD_LIBRARY_PATH setting into the environment's activation hooks",
                      edits=[f"delete {where(a)}: `{a.text}`" for a in actions]),
    )]


def _activate_command(facts: CondaFacts) -> str:
    return f"conda activate {shlex.quote(facts.target_prefix)}" if facts.target_prefix else "conda activate <env>"


def _what(script: HookScript) -> str:
    """What the script does to LD_LIBRARY_PATH, by its first change: "prepends /a:/b"."""
    changes = [a for a in script.ld_library_path if a.modifies]
    if not changes:
        return "changes LD_LIBRARY_PATH"
    added: list[str] = []
    for action in changes:
        added += [d for d in action.added if d not in added]
    return f"{_VERBS.get(changes[0].kind, changes[0].kind)} {':'.join(added)}".rstrip()


def _state(facts: CondaFacts) -> dict[str, Any]:
    return {
        "conda_prefix": facts.conda_prefix,
        "conda_shlvl": facts.shlvl_raw,
        "conda_default_env": facts.default_env,
        "prefix_chain": {f"CONDA_PREFIX_{k}": v for k, v in facts.prefix_chain.items()},
        "target_prefix": facts.target_prefix,
        "target_is_conda_env": facts.target_is_conda_env,
        "base_prefix": facts.base_prefix,
        "base_source": facts.base_source,
    }


CHECK = CheckSpec(ID, AREA, run,
                  summary="CONDA_PREFIX vs the target, CONDA_SHLVL, activate.d scripts that touch LD_LIBRARY_PATH")
