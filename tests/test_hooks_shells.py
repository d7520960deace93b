"""The activation hooks in real shells: bash, zsh and fish (dash too, as conda's plain `sh`).

For every shell and every starting state of LD_LIBRARY_PATH (unset, set but empty, ordinary,
with empty entries, with spaces / quotes / `$` / backslashes) and hook directories with the same
awkward characters: activate, activate again, deactivate, and compare complete `env -0` dumps.
The environment after deactivation must equal the one before, byte for byte.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from pathlib import Path

import pytest

from tritondoctor import hooks

AWKWARD_DIR = "/opt/we ird/it's a \"dir\"/$HOME/`x`\\y"
DIRS = [AWKWARD_DIR, "/opt/plain/lib"]
STARTS = {
    "unset": None,
    "empty": "",
    "plain": "/usr/local/cuda/lib64",
    "empty-entries": "/a::/b:",
    "awkward": "/x y/'q'/\"d\"/$PATH/\\z:/second",
}
SHELLS = ["bash", "zsh", "fish", "dash"]


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed (apt-get install -y zsh fish)")
    return path


def base_environ(start: str | None) -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "LANG": "C.UTF-8", "VIRTUAL_ENV_DISABLE_PROMPT": "1", "TERM": "dumb"}
    if start is not None:
        env["LD_LIBRARY_PATH"] = start
    return env


def parse_dump(data: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in data.split(b"\0"):
        if item:
            key, _, value = item.partition(b"=")
            out[key.decode()] = value.decode()
    for noise in ("_", "SHLVL", "PWD", "OLDPWD"):  # set by the shell itself, identical within one run
        out.pop(noise, None)
    return out


def run_steps(shell: str, steps: list[str], environ: dict[str, str], tmp: Path) -> list[dict[str, str]]:
    """Run `steps` in one shell process; dump the environment before the first and after each."""
    lines = []
    for i in range(len(steps) + 1):
        if i:
            lines.append(steps[i - 1])
        lines.append(f"env -0 > {hooks.sh_quote(str(tmp / f'dump{i}'))}")
    script = tmp / ("steps.fish" if shell == "fish" else "steps.sh")
    script.write_text("\n".join(lines) + "\n")
    exe = need(shell)
    args = [exe, "--no-config", str(script)] if shell == "fish" else [exe, str(script)]
    if shell == "zsh":
        args = [exe, "-f", str(script)]
    proc = subprocess.run(args, env=environ, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return [parse_dump((tmp / f"dump{i}").read_bytes()) for i in range(len(steps) + 1)]


def source(shell: str, path: Path) -> str:
    return f"source {hooks.fish_quote(str(path))}" if shell == "fish" else f". {hooks.sh_quote(str(path))}"


def expected_after(start: str | None) -> str:
    return ":".join(DIRS) + (":" + start if start else "")


@pytest.mark.parametrize("start", list(STARTS), ids=list(STARTS))
@pytest.mark.parametrize("shell", SHELLS)
def test_conda_hook_activate_twice_deactivate_restores_exactly(shell: str, start: str, tmp_path: Path) -> None:
    need(shell)
    kind = "fish" if shell == "fish" else "sh"
    prefix = str(tmp_path / "env")
    act = tmp_path / f"act.{kind}"
    deact = tmp_path / f"deact.{kind}"
    act.write_text(hooks.conda_script(DIRS, prefix, "activate", kind))
    deact.write_text(hooks.conda_script(DIRS, prefix, "deactivate", kind))
    value = STARTS[start]

    before, once, twice, after = run_steps(shell, [source(shell, act), source(shell, act), source(shell, deact)],
                                           base_environ(value), tmp_path)

    assert once["LD_LIBRARY_PATH"] == expected_after(value)
    assert twice == once  # activating again adds nothing
    assert after == before  # LD_LIBRARY_PATH restored exactly (unset stays unset, empty stays empty)
    assert ("LD_LIBRARY_PATH" in after) == (value is not None)


@pytest.mark.parametrize("shell", SHELLS)
def test_deactivate_keeps_a_change_the_user_made_while_active(shell: str, tmp_path: Path) -> None:
    need(shell)
    kind = "fish" if shell == "fish" else "sh"
    act, deact = tmp_path / f"a.{kind}", tmp_path / f"d.{kind}"
    act.write_text(hooks.conda_script(DIRS, str(tmp_path), "activate", kind))
    deact.write_text(hooks.conda_script(DIRS, str(tmp_path), "deactivate", kind))
    user_change = ('set -gx LD_LIBRARY_PATH "$LD_LIBRARY_PATH:/user/extra"' if shell == "fish"
                   else 'export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/user/extra"')

    _, _, _, after = run_steps(shell, [source(shell, act), user_change, source(shell, deact)],
                               base_environ("/start"), tmp_path)

    assert after["LD_LIBRARY_PATH"] == "/start:/user/extra"
    assert not any(k.startswith("TRITONDOCTOR_SAVED_") for k in after)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_two_stacked_environments_each_restore_their_own(shell: str, tmp_path: Path) -> None:
    need(shell)
    kind = "fish" if shell == "fish" else "sh"
    scripts = {}
    for name, dirs in (("a", ["/env/a/lib"]), ("b", ["/env/b/lib"])):
        for phase in ("activate", "deactivate"):
            path = tmp_path / f"{name}-{phase}.{kind}"
            path.write_text(hooks.conda_script(dirs, str(tmp_path / name), phase, kind))
            scripts[name, phase] = path

    dumps = run_steps(shell, [source(shell, scripts["a", "activate"]), source(shell, scripts["b", "activate"]),
                              source(shell, scripts["b", "deactivate"]), source(shell, scripts["a", "deactivate"])],
                      base_environ(None), tmp_path)

    assert dumps[2]["LD_LIBRARY_PATH"] == "/env/b/lib:/env/a/lib"
    assert dumps[3] == dumps[1]
    assert dumps[4] == dumps[0]


def make_venv(path: Path) -> Path:
    venv.EnvBuilder(with_pip=False, symlinks=True).create(path)
    return path


@pytest.mark.parametrize("start", ["unset", "empty", "awkward"])
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_venv_blocks_in_real_activate_scripts(shell: str, start: str, tmp_path: Path) -> None:
    need(shell)
    kind = "fish" if shell == "fish" else "sh"
    env_dir = make_venv(tmp_path / "my venv")
    script = env_dir / "bin" / ("activate.fish" if kind == "fish" else "activate")
    original = script.read_text()
    patched = hooks.venv_activate_text(original, DIRS, str(env_dir), kind)
    script.write_text(patched)
    value = STARTS[start]

    before, once, twice, after = run_steps(shell, [source(shell, script), source(shell, script), "deactivate"],
                                           base_environ(value), tmp_path)

    assert once["LD_LIBRARY_PATH"] == expected_after(value)
    assert once["VIRTUAL_ENV"] == str(env_dir)
    assert twice == once  # `deactivate nondestructive` restores, then the block applies once
    assert after == before
    # The blocks come out whole: the original text back byte for byte, and planning again is stable.
    assert hooks.strip_blocks(patched) == original
    assert hooks.venv_activate_text(patched, DIRS, str(env_dir), kind) == patched


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_env_exports_eval_twice_is_once(shell: str, tmp_path: Path) -> None:
    need(shell)
    kind = "fish" if shell == "fish" else "sh"
    # What `tritondoctor env` prints is computed from the environment it runs in: eval it, run it
    # again under the result, and the second output must change nothing.
    first = hooks.env_exports(DIRS, base_environ("/start dir"), kind)
    after_first = run_steps(shell, [first], base_environ("/start dir"), tmp_path)[1]
    second = hooks.env_exports(DIRS, after_first, kind)
    assert after_first["LD_LIBRARY_PATH"] == expected_after("/start dir")
    after_second = run_steps(shell, [second], dict(base_environ(None), LD_LIBRARY_PATH=after_first["LD_LIBRARY_PATH"]),
                             tmp_path)[1]
    assert after_second["LD_LIBRARY_PATH"] == after_first["LD_LIBRARY_PATH"]


def test_directories_the_loader_cannot_express_are_refused() -> None:
    for bad in (["/a:b"], ["/a;b"], ["relative/lib"], []):
        with pytest.raises(hooks.HookError):
            hooks.conda_script(bad, "/p", "activate", "sh")
