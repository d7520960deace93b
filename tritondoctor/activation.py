"""The environment a user gets by activating the target environment: its activation really run
in bash (conda's activate.d scripts, a venv's bin/activate), starting from the current one."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from typing import Any, Mapping


def _run_env0(script: str, environ: Mapping[str, str]) -> dict[str, str] | None:
    shell = shutil.which("bash") or shutil.which("sh")
    if shell is None:
        return None
    try:
        proc = subprocess.run([shell, "-c", script], env=dict(environ), capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    out: dict[str, str] = {}
    for item in proc.stdout.split(b"\0"):
        if item and b"=" in item:
            key, _, value = item.partition(b"=")
            out[key.decode(errors="surrogateescape")] = value.decode(errors="surrogateescape")
    return out


def activated_environ(snap: Any, plans: list) -> dict[str, str]:
    """The environment a user gets by activating the target environment now (after the fix): its
    activation really run in bash, starting from the current environment. Falls back to the
    plans' model (their directories put first) when no shell can be run."""
    from tritondoctor.plan import prepend_dirs

    environ = dict(os.environ)
    target = snap.target
    prefix = target.prefix
    q = shlex.quote
    if target.env_kind == "venv":
        result = _run_env0(f". {q(os.path.join(prefix, 'bin', 'activate'))} && env -0",
                           dict(environ, VIRTUAL_ENV_DISABLE_PROMPT="1"))
    elif target.env_kind == "conda":
        active = environ.get("CONDA_PREFIX")
        scripts: list[str] = []
        if active and os.path.isdir(os.path.join(active, "etc", "conda", "deactivate.d")):
            directory = os.path.join(active, "etc", "conda", "deactivate.d")
            scripts += sorted((os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".sh")), reverse=True)
        activate_d = os.path.join(prefix, "etc", "conda", "activate.d")
        if os.path.isdir(activate_d):
            scripts += sorted(os.path.join(activate_d, n) for n in os.listdir(activate_d) if n.endswith(".sh"))
        env = dict(environ)
        if not active or os.path.realpath(active) != os.path.realpath(prefix):
            shlvl = int(environ.get("CONDA_SHLVL", "0") or 0) if (environ.get("CONDA_SHLVL", "0") or "0").isdigit() else 0
            env.update(CONDA_PREFIX=prefix, CONDA_SHLVL=str(max(shlvl, 1)), CONDA_DEFAULT_ENV=prefix,
                       PATH=f"{os.path.join(prefix, 'bin')}:{environ.get('PATH', '')}")
        result = _run_env0("".join(f". {q(s)}\n" for s in scripts) + "env -0", env)
    else:
        result = None
    if result is not None:
        return result
    dirs = [d for p in plans for d in p.dirs]
    if dirs:
        environ["LD_LIBRARY_PATH"] = prepend_dirs(environ.get("LD_LIBRARY_PATH"), dirs)
    return environ
