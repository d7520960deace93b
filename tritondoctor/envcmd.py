"""`tritondoctor env`: the exports that make PyTriton load correctly, for services and containers
that activate nothing: eval "$(tritondoctor env)". The line printed extends LD_LIBRARY_PATH as it
is where it is eval'ed, so it can be generated once (a Dockerfile, a unit file) and run anywhere."""

from __future__ import annotations

import os
import sys

from tritondoctor.errors import EXIT_OK, EXIT_PROBLEMS, UsageError


def env_command(python: str | None, shell: str) -> int:
    from tritondoctor.commands.common import snapshot
    from tritondoctor.fixes import _pathorder
    from tritondoctor.hooks import HookError, conda_script_path, env_exports, parse_dirs
    from tritondoctor.registry import loader_check_ids, run_checks

    kind = {"sh": "sh", "bash": "sh", "zsh": "sh", "dash": "sh", "fish": "fish"}.get(shell)
    if kind is None:
        raise UsageError(f"--shell {shell!r}: expected sh, bash, zsh or fish")
    snap = snapshot(python, need_target=True)
    assert snap.target is not None
    prefix = snap.target.prefix
    hook_file = (os.path.join(prefix, "bin", "activate") if snap.target.env_kind == "venv"
                 else conda_script_path(prefix, "activate", "sh"))
    existing = None
    if os.path.isfile(hook_file):
        with open(hook_file, encoding="utf-8", errors="replace") as fh:
            existing = parse_dirs(fh.read())
    findings = run_checks(snap, only=set(loader_check_ids()))
    base, base_findings, base_env = _pathorder.planning_base(snap, findings, prefix, existing)
    need = _pathorder.plan_dirs(base, base_findings, base_env)
    for problem in need.problems:
        print(f"tritondoctor: {problem}", file=sys.stderr)
    if not need.dirs:
        print("# tritondoctor: nothing to export: PyTriton's libraries resolve in this environment")
        return EXIT_OK if not need.problems else EXIT_PROBLEMS
    if need.prediction is None or not need.prediction.proven:
        reason = need.prediction.reason if need.prediction else "unknown"
        print(f"tritondoctor: no proven LD_LIBRARY_PATH for this environment ({reason})", file=sys.stderr)
        return EXIT_PROBLEMS
    try:
        text = env_exports(need.dirs, kind)
    except HookError as exc:
        print(f"tritondoctor: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"# tritondoctor: {', '.join(need.dirs)} first on LD_LIBRARY_PATH (clears {', '.join(need.clears)})")
    sys.stdout.write(text)
    return EXIT_OK
