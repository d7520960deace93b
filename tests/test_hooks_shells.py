"""The activation hooks in real shells: bash, zsh, fish and tcsh (dash too, as conda's plain `sh`).

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
SHELLS = ["bash", "zsh", "fish", "dash", "tcsh"]
KINDS = {"bash": "sh", "zsh": "sh", "dash": "sh", "fish": "fish", "tcsh": "csh"}


def need(shell: str) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed (apt-get install -y zsh fish tcsh)")
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
    script = tmp / f"steps.{KINDS[shell]}"
    script.write_text("\n".join(lines) + "\n")
    exe = need(shell)
    args = [exe, "--no-config", str(script)] if shell == "fish" else [exe, str(script)]
    if shell in ("zsh", "tcsh"):
        args = [exe, "-f", str(script)]
    proc = subprocess.run(args, env=environ, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    return [parse_dump((tmp / f"dump{i}").read_bytes()) for i in range(len(steps) + 1)]


def source(shell: str, path: Path) -> str:
    if shell == "tcsh":
        return f"source {hooks.csh_quote(str(path))}"
    return f"source {hooks.fish_quote(str(path))}" if shell == "fish" else f". {hooks.sh_quote(str(path))}"


def prepend(shell: str, entry: str) -> str:
    """What a user types to put `entry` in front of LD_LIBRARY_PATH (set at that point)."""
    if shell == "fish":
        return f'set -gx LD_LIBRARY_PATH {hooks.fish_quote(entry)}":$LD_LIBRARY_PATH"'
    if shell == "tcsh":
        return f'setenv LD_LIBRARY_PATH {hooks.csh_quote(entry)}":${{LD_LIBRARY_PATH}}"'
    return f'export LD_LIBRARY_PATH={hooks.sh_quote(entry)}":$LD_LIBRARY_PATH"'


def append(shell: str, entry: str) -> str:
    if shell == "fish":
        return f'set -gx LD_LIBRARY_PATH "$LD_LIBRARY_PATH:"{hooks.fish_quote(entry)}'
    if shell == "tcsh":
        return f'setenv LD_LIBRARY_PATH "${{LD_LIBRARY_PATH}}:"{hooks.csh_quote(entry)}'
    return f'export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:"{hooks.sh_quote(entry)}'


def expected_after(start: str | None) -> str:
    return ":".join(DIRS) + (":" + start if start else "")


@pytest.mark.parametrize("start", list(STARTS), ids=list(STARTS))
@pytest.mark.parametrize("shell", SHELLS)
def test_conda_hook_activate_twice_deactivate_restores_exactly(shell: str, start: str, tmp_path: Path) -> None:
    need(shell)
    kind = KINDS[shell]
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
    kind = KINDS[shell]
    act, deact = tmp_path / f"a.{kind}", tmp_path / f"d.{kind}"
    act.write_text(hooks.conda_script(DIRS, str(tmp_path), "activate", kind))
    deact.write_text(hooks.conda_script(DIRS, str(tmp_path), "deactivate", kind))
    _, _, _, after = run_steps(shell, [source(shell, act), append(shell, "/user/extra"), source(shell, deact)],
                               base_environ("/start"), tmp_path)

    assert after["LD_LIBRARY_PATH"] == "/start:/user/extra"
    assert not any(k.startswith("TRITONDOCTOR_SAVED_") for k in after)


def conda_pair(tmp_path: Path, kind: str, dirs: list[str] = DIRS, name: str = "env") -> tuple[Path, Path]:
    act, deact = tmp_path / f"{name}-act.{kind}", tmp_path / f"{name}-deact.{kind}"
    act.write_text(hooks.conda_script(dirs, str(tmp_path / name), "activate", kind))
    deact.write_text(hooks.conda_script(dirs, str(tmp_path / name), "deactivate", kind))
    return act, deact


@pytest.mark.parametrize("start", list(STARTS), ids=list(STARTS))
@pytest.mark.parametrize("shell", SHELLS)
def test_deactivate_removes_only_what_activate_added_after_a_user_prepend(shell: str, start: str,
                                                                           tmp_path: Path) -> None:
    need(shell)
    act, deact = conda_pair(tmp_path, KINDS[shell])
    value = STARTS[start]
    mine = "/mine dir/'q'/$x"

    dumps = run_steps(shell, [source(shell, act), prepend(shell, mine), source(shell, deact)],
                      base_environ(value), tmp_path)

    assert dumps[2]["LD_LIBRARY_PATH"] == f"{mine}:{expected_after(value)}"
    assert dumps[3]["LD_LIBRARY_PATH"] == mine + (":" + value if value else "")
    assert dumps[3] == dict(dumps[0], LD_LIBRARY_PATH=dumps[3]["LD_LIBRARY_PATH"])  # nothing else left behind


@pytest.mark.parametrize("shell", SHELLS)
def test_only_the_occurrences_activate_added_are_removed(shell: str, tmp_path: Path) -> None:
    """Our directories were already on the path, and the user prepends one of them again: those
    copies stay, only the block activate put in goes."""
    need(shell)
    act, deact = conda_pair(tmp_path, KINDS[shell])
    start = f"/usr/lib:{DIRS[1]}"

    dumps = run_steps(shell, [source(shell, act), prepend(shell, DIRS[1]), append(shell, "/tail"),
                              source(shell, deact)], base_environ(start), tmp_path)

    assert dumps[4]["LD_LIBRARY_PATH"] == f"{DIRS[1]}:{start}:/tail"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_user_who_replaced_the_value_keeps_it(shell: str, tmp_path: Path) -> None:
    need(shell)
    act, deact = conda_pair(tmp_path, KINDS[shell])
    replace = ('set -gx LD_LIBRARY_PATH /other' if shell == "fish" else "setenv LD_LIBRARY_PATH /other"
               if shell == "tcsh" else "export LD_LIBRARY_PATH=/other")
    unset = "set -e LD_LIBRARY_PATH" if shell == "fish" else "unsetenv LD_LIBRARY_PATH" if shell == "tcsh" \
        else "unset LD_LIBRARY_PATH"

    dumps = run_steps(shell, [source(shell, act), replace, source(shell, deact), source(shell, act), unset,
                              source(shell, deact)], base_environ("/start"), tmp_path)

    assert dumps[3]["LD_LIBRARY_PATH"] == "/other"
    assert "LD_LIBRARY_PATH" not in dumps[6]
    assert not any(k.startswith(("TRITONDOCTOR_SAVED_", "_TDX")) for k in dumps[6])


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "tcsh"])
def test_two_stacked_environments_each_restore_their_own(shell: str, tmp_path: Path) -> None:
    need(shell)
    kind = KINDS[shell]
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


VENV_SCRIPTS = {"sh": "activate", "fish": "activate.fish", "csh": "activate.csh"}


def hooked_venv(path: Path, kind: str) -> tuple[Path, str, str]:
    """A real venv whose activate script for `kind` carries our blocks (csh: and its restore file)."""
    env_dir = make_venv(path)
    script = env_dir / "bin" / VENV_SCRIPTS[kind]
    original = script.read_text()
    patched = hooks.venv_activate_text(original, DIRS, str(env_dir), kind)
    script.write_text(patched)
    if kind == "csh":
        Path(hooks.venv_csh_restore_path(str(env_dir))).write_text(hooks.venv_csh_restore_script(DIRS, str(env_dir)))
    return script, original, patched


# A non-interactive tcsh has no `prompt`, which activate.csh reads unconditionally.
PRELUDE = {"tcsh": ['set prompt = ""']}


@pytest.mark.parametrize("start", ["unset", "empty", "awkward"])
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "tcsh"])
def test_venv_blocks_in_real_activate_scripts(shell: str, start: str, tmp_path: Path) -> None:
    need(shell)
    kind = KINDS[shell]
    script, original, patched = hooked_venv(tmp_path / "my venv", kind)
    env_dir = script.parent.parent
    value = STARTS[start]

    before, once, twice, after = run_steps(shell, PRELUDE.get(shell, []) + [source(shell, script), source(shell, script),
                                                                             "deactivate"],
                                           base_environ(value), tmp_path)[-4:]

    assert once["LD_LIBRARY_PATH"] == expected_after(value)
    assert once["VIRTUAL_ENV"] == str(env_dir)
    assert twice == once  # `deactivate nondestructive` restores, then the block applies once
    assert after == before
    # The blocks come out whole: the original text back byte for byte, and planning again is stable.
    assert hooks.strip_blocks(patched) == original
    assert hooks.venv_activate_text(patched, DIRS, str(env_dir), kind) == patched


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish", "tcsh"])
def test_venv_deactivate_keeps_a_user_prepend(shell: str, tmp_path: Path) -> None:
    need(shell)
    script, _, _ = hooked_venv(tmp_path / "v", KINDS[shell])

    dumps = run_steps(shell, PRELUDE.get(shell, []) + [source(shell, script), prepend(shell, "/mine"), "deactivate"],
                      base_environ("/start"), tmp_path)

    assert dumps[-1]["LD_LIBRARY_PATH"] == "/mine:/start"


def test_csh_cannot_quote_a_bang_and_venv_csh_needs_a_plain_path(tmp_path: Path) -> None:
    with pytest.raises(hooks.HookError):
        hooks.conda_script(["/opt/bang!/lib"], "/p", "activate", "csh")
    assert "/opt/bang!/lib" in hooks.conda_script(["/opt/bang!/lib"], "/p", "activate", "sh")
    env_dir = make_venv(tmp_path / "we$ird")
    with pytest.raises(hooks.HookError):
        hooks.venv_activate_text((env_dir / "bin" / "activate.csh").read_text(), DIRS, str(env_dir), "csh")


@pytest.mark.parametrize("start", ["unset", "empty", "plain"])
@pytest.mark.parametrize("shell", ["bash", "zsh", "dash", "fish"])
def test_env_exports_extend_the_value_where_they_are_evaluated(shell: str, start: str, tmp_path: Path) -> None:
    """The line is made once and eval'ed in a shell whose LD_LIBRARY_PATH differs from the one
    tritondoctor saw: it extends that shell's value; eval'ed twice it changes nothing more."""
    need(shell)
    line = hooks.env_exports(DIRS, KINDS[shell])
    assert "/usr/local/cuda" not in line and "/generation/time" not in line
    value = STARTS[start]

    dumps = run_steps(shell, [line, line], base_environ(value), tmp_path)

    assert dumps[1]["LD_LIBRARY_PATH"] == expected_after(value)
    assert dumps[2] == dumps[1]


@pytest.mark.parametrize("shell", ["bash", "fish"])
def test_env_exports_are_eval_safe(shell: str, tmp_path: Path) -> None:
    """Through `eval` as documented: eval "$(tritondoctor env)" / tritondoctor env --shell fish | source."""
    need(shell)
    line = hooks.env_exports(DIRS, KINDS[shell])
    (tmp_path / "line").write_text("# tritondoctor: a comment line first, as `env` prints\n" + line)
    step = (f"source {hooks.fish_quote(str(tmp_path / 'line'))}" if shell == "fish"
            else f'eval "$(cat {hooks.sh_quote(str(tmp_path / "line"))})"')
    dumps = run_steps(shell, [step, step], base_environ("/at eval time"), tmp_path)
    assert dumps[1]["LD_LIBRARY_PATH"] == expected_after("/at eval time") == dumps[2]["LD_LIBRARY_PATH"]


def test_directories_the_loader_cannot_express_are_refused() -> None:
    for bad in (["/a:b"], ["/a;b"], ["relative/lib"], []):
        with pytest.raises(hooks.HookError):
            hooks.conda_script(bad, "/p", "activate", "sh")


MODEL_CASES = {
    "untouched": [],
    "prepend": ["export LD_LIBRARY_PATH=/mine:$LD_LIBRARY_PATH"],
    "append": ['export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:/tail"'],
    "prepend-our-dir": [f"export LD_LIBRARY_PATH={hooks.sh_quote(DIRS[1])}:$LD_LIBRARY_PATH"],
    "replaced": ["export LD_LIBRARY_PATH=/other"],
    "edited-middle": ['export LD_LIBRARY_PATH="$LD_LIBRARY_PATH"X'],
    "unset": ["unset LD_LIBRARY_PATH"],
}


@pytest.mark.parametrize("case", list(MODEL_CASES))
@pytest.mark.parametrize("start", ["unset", "empty", "plain", "empty-entries"])
def test_the_python_model_of_deactivate_matches_the_shell(start: str, case: str, tmp_path: Path) -> None:
    """`hooks.deactivated_value` (what planning assumes a deactivation leaves) against bash."""
    need("bash")
    act, deact = conda_pair(tmp_path, "sh")
    dumps = run_steps("bash", [source("bash", act), *MODEL_CASES[case], source("bash", deact)],
                      base_environ(STARTS[start]), tmp_path)
    active = dumps[1 + len(MODEL_CASES[case])]
    saved = next(v for k, v in dumps[1].items() if k.startswith("TRITONDOCTOR_SAVED_"))
    assert hooks.deactivated_value(active.get("LD_LIBRARY_PATH"), DIRS, saved) == dumps[-1].get("LD_LIBRARY_PATH")
