"""The interpreter probe against targets that are not Python: ones that hang, leave children
behind, answer the wrong JSON or bytes. Every target here is a real executable run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tritondoctor.cache import JsonCache
from tritondoctor.errors import UsageError
from tritondoctor.facts import target as target_facts
from tritondoctor.facts.target import PROBE_TIMEOUT_ENV, TargetError, probe, probe_timeout


def executable(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def hanging_target(directory: Path) -> tuple[Path, Path]:
    """A `python` that starts a child of its own, writes both pids, and never answers."""
    pids = directory / "pids"
    script = executable(directory / "python", f"sleep 300 &\necho $$ $! > {pids}\nsleep 300\n")
    return script, pids


def environ() -> dict[str, str]:
    return dict(os.environ, TRITONDOCTOR_CACHE_DIR="")


def dead(pid: int) -> bool:
    """Gone, or a zombie waiting for PID 1 (which need not reap at once in a container)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_dead(pids: list[int], within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if all(dead(p) for p in pids):
            return True
        time.sleep(0.02)
    return all(dead(p) for p in pids)


def tritondoctor(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tritondoctor", *args], capture_output=True, text=True, check=False,
                          env=env, timeout=120)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tritondoctor: error:"), proc.stderr
    for text in expected:
        assert text in lines[0]
    return lines[0]


# --- a target that never answers --------------------------------------------------------------


def test_hanging_target_is_a_short_error_and_its_whole_group_is_killed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    script, pids = hanging_target(tmp_path)
    monkeypatch.setenv(PROBE_TIMEOUT_ENV, "1")
    started = time.monotonic()
    with pytest.raises(TargetError) as caught:
        probe(str(script), environ())
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert message == f"{script} did not answer the interpreter probe within 1 s; is it a Python interpreter?"
    shell, child = (int(p) for p in pids.read_text().split())
    assert wait_dead([shell, child]), "the probe's own child outlived the probe"


def test_hanging_target_through_check_is_one_line_naming_the_target(tmp_path: Path) -> None:
    script, pids = hanging_target(tmp_path)
    proc = tritondoctor("check", "--python", str(script), env=dict(environ(), **{PROBE_TIMEOUT_ENV: "0.5"}))
    line = assert_one_line_error(proc, str(script), "did not answer the interpreter probe within 0.5 s")
    assert len(line) < 200 and "WATCHED" not in line and "import" not in line  # never the probe script
    assert wait_dead([int(p) for p in pids.read_text().split()])


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "abc", "601", "1e9"])
def test_probe_timeout_override_is_validated(value: str, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    monkeypatch.setenv(PROBE_TIMEOUT_ENV, value)
    with pytest.raises(UsageError, match=PROBE_TIMEOUT_ENV):
        probe_timeout()
    proc = tritondoctor("check", "--python", sys.executable, env=dict(environ(), **{PROBE_TIMEOUT_ENV: value}))
    assert_one_line_error(proc, PROBE_TIMEOUT_ENV)


@pytest.mark.parametrize("value, seconds", [("", 20.0), (" ", 20.0), ("2.5", 2.5), ("600", 600.0)])
def test_probe_timeout_override_values(value: str, seconds: float, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PROBE_TIMEOUT_ENV, value)
    assert probe_timeout() == seconds


def test_probe_of_a_real_python_leaves_no_process(tmp_path: Path) -> None:
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    assert probe(sys.executable, environ()).version == tuple(sys.version_info[:3])
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert wait_dead([p.pid for p in left])


# --- a target that answers something else -----------------------------------------------------


def answering(tmp_path: Path, answer: dict | list | str) -> Path:
    text = answer if isinstance(answer, str) else json.dumps(answer)
    (tmp_path / "answer").write_text(text + "\n")
    return executable(tmp_path / "python", f"cat {tmp_path / 'answer'}\n")


def real_answer() -> dict:
    """What the probe really answers in this interpreter: the base the bad answers are cut from."""
    script = f"WATCHED = {list(target_facts.WATCHED_DISTRIBUTIONS)!r}\n" + target_facts._PROBE
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_real_answer_replayed_by_a_script_is_accepted(tmp_path: Path) -> None:
    answer = real_answer()
    target = probe(str(answering(tmp_path, answer)), environ())
    assert target.prefix == answer["prefix"] and target.version == tuple(answer["version"])


def without(answer: dict, key: str) -> dict:
    return {k: v for k, v in answer.items() if k != key}


BAD_ANSWERS = {
    "no prefix": (lambda a: without(a, "prefix"), "'prefix'"),
    "no version": (lambda a: without(a, "version"), "'version'"),
    "version a string": (lambda a: dict(a, version="3.11.7"), "'version'"),
    "version of two": (lambda a: dict(a, version=[3, 11]), "'version'"),
    "version of bools": (lambda a: dict(a, version=[True, 1, 0]), "'version'"),
    "prefix a number": (lambda a: dict(a, prefix=3), "'prefix'"),
    "sys_path a string": (lambda a: dict(a, sys_path="/usr/lib"), "'sys_path'"),
    "sys_path with null": (lambda a: dict(a, sys_path=["/usr/lib", None]), "'sys_path'"),
    "enable_shared a string": (lambda a: dict(a, enable_shared="yes"), "'enable_shared'"),
    "distributions a list": (lambda a: dict(a, distributions=[]), "'distributions'"),
    "distribution without version": (lambda a: dict(a, distributions={"numpy": {"location": None}}),
                                     "'distributions'"),
    "distribution requires a string": (
        lambda a: dict(a, distributions={"numpy": {"version": "1.0", "location": None, "requires": "x"}}),
        "'distributions'"),
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_an_answer_of_the_wrong_shape_is_a_target_error(case: str, tmp_path: Path) -> None:
    change, field_name = BAD_ANSWERS[case]
    script = answering(tmp_path, change(real_answer()))
    with pytest.raises(TargetError) as caught:
        probe(str(script), environ())
    message = str(caught.value)
    assert str(script) in message and field_name in message and "\n" not in message


@pytest.mark.parametrize("answer, words", [
    ("[1, 2, 3]", "not a JSON object"),
    ('"a string"', "not a JSON object"),
    ("hello", "not JSON"),
    ('{"version": [3, 11', "not JSON"),
])
def test_an_answer_that_is_not_a_json_object_is_a_target_error(answer: str, words: str, tmp_path: Path) -> None:
    script = answering(tmp_path, answer)
    with pytest.raises(TargetError, match=words) as caught:
        probe(str(script), environ())
    assert str(script) in str(caught.value)


def test_binary_answer_is_a_target_error(tmp_path: Path) -> None:
    script = executable(tmp_path / "python", "printf '\\377\\376\\000\\200{}\\n'\n")
    with pytest.raises(TargetError, match="bytes that are not text") as caught:
        probe(str(script), environ())
    assert str(script) in str(caught.value)


def test_binary_on_stderr_of_a_failing_target_is_one_printable_line(tmp_path: Path) -> None:
    script = executable(tmp_path / "python", "printf 'bad\\377\\033[31m thing\\r\\n' >&2\nexit 4\n")
    with pytest.raises(TargetError) as caught:
        probe(str(script), environ())
    message = str(caught.value)
    assert message.startswith(f"{script}: not a working Python interpreter (bad")
    assert message.isprintable()


def test_target_killed_by_a_signal_is_named(tmp_path: Path) -> None:
    script = executable(tmp_path / "python", "kill -SEGV $$\n")
    with pytest.raises(TargetError, match=r"killed by SIGSEGV"):
        probe(str(script), environ())


def test_junk_printed_before_the_answer_is_not_ours_to_decode(tmp_path: Path) -> None:
    # A sitecustomize (or a wrapper) that prints non-UTF-8 bytes first; the probe's line is last.
    script = executable(tmp_path / "python", f"printf '\\377\\376 banner\\n'\nexec {sys.executable} \"$@\"\n")
    assert probe(str(script), environ()).version == tuple(sys.version_info[:3])


def test_answer_without_prefix_through_check_is_one_line_exit_2(tmp_path: Path) -> None:
    script = answering(tmp_path, without(real_answer(), "prefix"))
    assert_one_line_error(tritondoctor("check", "--python", str(script), env=environ()), str(script), "'prefix'")


def test_binary_answer_through_check_is_one_line_exit_2(tmp_path: Path) -> None:
    script = executable(tmp_path / "python", "printf '\\377\\376\\n'\n")
    assert_one_line_error(tritondoctor("check", "--python", str(script), env=environ()), str(script),
                          "bytes that are not text")


# --- the disk cache -----------------------------------------------------------------------------


@pytest.mark.parametrize("entry", [
    {"watch": {}, "data": {"version": [3, 11, 0]}},  # an older tritondoctor's shape
    {"watch": {}, "data": "garbage"},
    {"watch": [], "data": {}},
    {"data": {}},
])
def test_a_cached_probe_of_the_wrong_shape_is_probed_again(entry: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target_facts, "_probe_cache", JsonCache(None, "probe-test.json", 4))  # memory only
    env = environ()
    target_facts._cache().put(target_facts._cache_key(sys.executable, env), entry)
    assert probe(sys.executable, env).version == tuple(sys.version_info[:3])
