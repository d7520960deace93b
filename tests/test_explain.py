"""`tritondoctor explain`: pasted text → catalog rows, on sample lines of every row with a
signature, on whole real logs captured on this machine, and in a venv without nvidia-pytriton."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path
from typing import Iterator

import pytest

from tritondoctor.explain import UNKNOWN, explain
from tritondoctor.smoke import diagnose as dx

LOGS = Path(__file__).parent / "data" / "logs"
REPO = Path(__file__).resolve().parent.parent

# One faithful line per catalog row (the text column of ../shared/FAILURES.md, or what the
# programs print, as seen here or in the issue threads the catalog cites).
SAMPLES: dict[int, str] = {
    1: "/usr/local/lib/python3.10/site-packages/nvidia_pytriton.libs/../tritonserver/backends/python/"
       "triton_python_backend_stub: error while loading shared libraries: libpython3.10.so.1.0: "
       "cannot open shared object file: No such file or directory",
    2: "AttributeError: '_thread.RLock' object has no attribute '_recursion_count'",
    3: "ModuleNotFoundError: No module named '_ctypes'",
    6: "tritonserver: /opt/conda/lib/libstdc++.so.6: version `GLIBCXX_3.4.30' not found "
       "(required by /root/.cache/pytriton/workspace_x/tritonserver/bin/tritonserver)",
    7: "/home/u/miniconda3/lib/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by libtritonserver.so)",
    8: "E0301 12:00:00.000000 1 model_lifecycle.cc:638] failed to load 'add_sub' version 1: Internal: "
       "Failed to initialize stub, stub process exited unexpectedly: add_sub_0_0",
    9: "ModuleNotFoundError: No module named 'zmq'",
    10: "Unable to initialize shared memory key 'triton_python_backend_shm_region_1' to requested size "
        "(67108864 bytes). If you are running Triton inside docker, use '--shm-size' flag to control the shared "
        "memory region size. Each Python backend model instance requires at least 64MBs of shared memory. "
        "Error: No space left on device",
    11: "Unable to initialize shared memory key 'triton_python_backend_shm_region_2' to requested size "
        "(67108864 bytes). Error: File exists",
    12: "Stub process 'Linear_0' is not healthy.",
    13: "E0822 09:25:58.519561 1 http_server.cc:3459] failed to start HTTP service: Unavailable - "
        "Socket '0.0.0.0:8000' already in use",
    14: "Signal (11) received.",
    16: "W0301 12:00:00.000 1 pinned_memory_manager.cc:273] Unable to allocate pinned system memory, pinned "
        "memory pool will not be available: CUDA driver version is insufficient for CUDA runtime version",
    17: "Failed to initialize NVML: Driver/library version mismatch",
    20: "OSError: AF_UNIX path too long",
    23: "error while loading shared libraries: libpython3.12.so.1.0: cannot open shared object file: "
        "No such file or directory",
    24: "tritonclient.utils.InferenceServerException: [403] This API is restricted, expecting header "
        "'triton-access-token'",
    25: "grpc._channel._InactiveRpcError: status = StatusCode.UNAVAILABLE details = \"failed to connect to all "
        "addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:8001: Socket closed\"",
    26: "FileNotFoundError: [Errno 2] No such file or directory: '/dev/shm/triton_python_backend_shm_region_3'",
    27: "Failed to give execute permission to triton_python_backend_stub in /models/add_sub/1",
    28: "/bin/dash: 0: cannot open /tmp/folderxYz12/triton_python_backend_stub: Permission denied",
    29: "TimeoutError: Timeout while waiting for /root/.cache/pytriton/workspace_abc/add_sub-config.sock",
    30: "struct.error: unpack_from requires a buffer of at least 8 bytes for unpacking 8 bytes at offset 0",
    31: "Triton backend API version does not support this backend",
    32: "Path /opt/envs/myenv/bin/activate does not exist. The Python environment should contain an "
        "'activate' script.",
    33: "ImportError: /lib/aarch64-linux-gnu/libgomp.so.1: cannot allocate memory in static TLS block",
    34: "Out of memory: Killed process 4242 (tritonserver) total-vm:3145728kB, anon-rss:2097152kB",
    35: "TypeError: Channel.unary_unary() got an unexpected keyword argument '_registered_method'",
    36: "qemu: uncaught target signal 11 (Segmentation fault) - core dumped",
    37: "tritonserver --http-address :: --http-port 8000: error: failed to start HTTP service",
    38: "tritonclient.utils.InferenceServerException: [400] Request for unknown model: 'add_sub' is not found",
    39: "FileNotFoundError: [Errno 2] No such file or directory: '/work/.venv/lib/python3.14/site-packages/"
        "pytriton/tritonserver/python_backend_stubs/3.14/triton_python_backend_stub'",
}


def rows_with_a_signature() -> set[int]:
    return {row for _, signature in dx.signatures() for row in signature.rows}


def test_every_row_with_a_signature_has_a_sample() -> None:
    missing = rows_with_a_signature() - set(SAMPLES)
    assert not missing, f"add a sample line for catalog rows {sorted(missing)}"


@pytest.mark.parametrize("row", sorted(SAMPLES))
def test_sample_maps_to_its_row(row: int) -> None:
    if row not in rows_with_a_signature():
        pytest.skip(f"row {row} has no signature in the table")
    result = explain(SAMPLES[row], gpu_present=row == 16)
    assert result.known
    assert any(row in m.rows for m in result.matches), [m.to_json() for m in result.matches]
    first = next(m for m in result.matches if row in m.rows)
    assert first.cause and first.remedy and first.confirm


def test_check_rows_confirm_with_check_only() -> None:
    match = explain(SAMPLES[13]).matches[0]
    assert match.id == "ports"
    assert match.confirm[0] == "tritondoctor check --only ports"
    assert "tritondoctor smoke" in match.confirm
    assert "ss -ltnp" in " ".join(match.remedy_commands)  # the ports check's own log builder


def test_libpython_remedy_is_the_loader_path_not_a_rebuild() -> None:
    match = explain(SAMPLES[2]).matches[0]
    assert "first on the loader path" in match.remedy
    assert any("LD_LIBRARY_PATH" in c for c in match.remedy_commands)


def test_cpu_host_cuda_message_is_harmless() -> None:
    result = explain(SAMPLES[16])
    assert result.known and not result.matches
    assert result.harmless and result.harmless[0].rows == (15,) and result.harmless[0].gpu_row == 16
    assert explain("I0301 nvml.cc:10] Failed to initialize NVML").harmless


def test_unknown_text_says_so() -> None:
    result = explain("everything went fine, thanks")
    assert not result.known and not result.matches
    assert result.to_json() == {"matches": [], "known": False, "harmless": [], "gpu_present": False, "message": UNKNOWN}


def test_whole_real_log_libpython_mismatch() -> None:
    """A whole smoke log of this machine's real bug: pyenv's 3.11.7 stdlib, Debian's 3.11.2 libpython."""
    result = explain((LOGS / "smoke-rlock-3.11.2-vs-3.11.7.log").read_text())
    assert [m.rows for m in result.matches] == [(2,)]
    assert result.matches[0].id == "libpython"
    messages = " ".join(h.line for h in result.harmless)
    assert "Failed to initialize NVML" in messages and "DCGM unable to start" in messages


def test_whole_real_log_dead_proxy() -> None:
    result = explain((LOGS / "smoke-dead-https-proxy.log").read_text())
    assert [m.rows for m in result.matches] == [(25,)]
    assert all(m.id != "model-load" for m in result.matches)


def test_traceback_and_escaped_lines() -> None:
    text = ('E0301 model_lifecycle.cc:638] "failed to load \'m\' version 1: Internal: Traceback (most recent call last):'
            '\\n  File \\"/m/model.py\\", line 3\\nModuleNotFoundError: No module named \'zmq\'"')
    result = explain(text)
    assert [m.id for m in result.matches] == ["python-deps"]  # the bare failed load is its consequence


# --- the command -----------------------------------------------------------------------------


def run_cli(*args: str, stdin: str | None = None, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "tritondoctor", "explain", *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def test_cli_text_json_and_exit_status() -> None:
    done = run_cli("--json", SAMPLES[13])
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["known"] is True
    assert {"row", "id", "line", "cause", "confirm", "remedy"} <= set(data["matches"][0])
    assert data["matches"][0]["row"] == 13


def test_cli_unknown_exits_1() -> None:
    done = run_cli("all good")
    assert done.returncode == 1
    assert "no known failure in this text; run tritondoctor check" in done.stdout


def test_cli_stdin_and_file(tmp_path: Path) -> None:
    log = (LOGS / "smoke-rlock-3.11.2-vs-3.11.7.log").read_text()
    done = run_cli("-", stdin=log)
    assert done.returncode == 0 and "row 2" in done.stdout and "harmless" in done.stdout
    path = tmp_path / "server.log"
    path.write_text(SAMPLES[10])
    done = run_cli("--file", str(path), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["matches"][0]["row"] == 10


@pytest.mark.parametrize("args,stdin", [((), None), (("-",), ""), (("--file", "/nonexistent/x.log"), None),
                                        (("--file", "/etc/hostname", "extra"), None), (("   ",), None)])
def test_cli_usage_errors_exit_2(args: tuple[str, ...], stdin: str | None) -> None:
    done = run_cli(*args, stdin=stdin)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("tritondoctor: error:")


# --- without nvidia-pytriton, offline ----------------------------------------------------------


@pytest.fixture(scope="session")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv with tritondoctor (editable, no deps) and only typer, rich, pyelftools, psutil."""
    path = tmp_path_factory.mktemp("explain-bare") / "venv"
    venv.EnvBuilder(with_pip=True).create(str(path))
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    steps = (pip + ["--no-deps", "-e", str(REPO)], pip + ["typer>=0.26,<0.29", "rich>=13", "pyelftools>=0.31", "psutil>=5.9"])
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip(f"cannot build the bare venv (offline?): {done.stderr.strip()[-300:]}")
    yield path


@pytest.mark.slow
def test_explain_works_without_pytriton_offline(bare_venv: Path) -> None:
    python = str(bare_venv / "bin" / "python")
    probe = subprocess.run([python, "-c", "import importlib.util as u; print(u.find_spec('pytriton') is None)"],
                           capture_output=True, text=True, check=True)
    assert probe.stdout.strip() == "True"
    env = {**os.environ, "https_proxy": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "PIP_NO_INDEX": "1"}
    done = subprocess.run([python, "-m", "tritondoctor", "explain", "--json", "-"], input=SAMPLES[6],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["matches"][0]["id"] == "glibcxx"
    modules = subprocess.run([python, "-c", "import sys, tritondoctor.explain as e; e.explain('x'); "
                              "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
                              "('pytriton','tritonclient','numpy','pynvml','conda_package_handling','rattler'))))"],
                             capture_output=True, text=True, check=True)
    assert modules.stdout.strip() == ""


def test_the_memory_cgroups_own_oom_line_maps_to_row_34() -> None:
    from tritondoctor.explain import explain

    line = "Memory cgroup out of memory: Killed process 4242 (tritonserver) total-vm:1234kB, anon-rss:99kB"
    result = explain(line)
    assert any(34 in m.rows for m in result.matches), result
