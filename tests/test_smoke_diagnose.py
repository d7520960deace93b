"""The smoke test's log-signature table, on real text.

Where each sample comes from:
- "here": captured on this project's dev machine (pyenv 3.11.7 venv, nvidia-pytriton 0.7.0 /
  tritonserver 2.51.0, no GPU, Debian's libpython3.11.so.1.0 (3.11.2) in the loader cache), from
  real runs of the smoke test or of the named binary; trimmed to the relevant line.
- a GitHub issue or pull request: quoted from the public report named next to it.
- "source": the message format string as it is in the named source file.
"""

from __future__ import annotations

import pytest

from tritondoctor.findings import Status
from tritondoctor.findings import Finding
from tritondoctor.smoke import diagnose as dx
from tritondoctor.observation import Interpreter, Observation

PYENV = Interpreter(
    python="/tmp/venv/bin/python", version="3.11.7", minor="3.11", prefix="/tmp/venv", env_kind="venv",
    libdir="/root/.pyenv/versions/3.11.7/lib", enable_shared=True,
    own_libpython="/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", pytriton="0.7.0",
)

# here: smoke log, venv of pyenv 3.11.7 without LD_LIBRARY_PATH (the stub loads Debian's libpython)
RLOCK = (
    'I1123 08:37:27.622640 5441 pb_stub.cc:366] "Failed to initialize Python stub: TritonModelException: '
    'Model initialize error: Traceback (most recent call last):\\n  File \\"/tmp/folder06dfDY/1/model.py\\", '
    'line 419, in initialize\\n    self._serializer_deserializer.start(data_socket)\\n'
    '  File \\"/root/.pyenv/versions/3.11.7/lib/python3.11/multiprocessing/resource_tracker.py\\", line 100, '
    'in ensure_running\\n    if self._lock._recursion_count() > 1:\\n       ^^^^^^^^^^^^^^^^^^^^^^^^^^^\\n'
    "AttributeError: '_thread.RLock' object has no attribute '_recursion_count'\\n\"\n"
    "I1123 08:37:27.811681 5441 model_lifecycle.cc:777] \"failed to load 'm'\"\n"
)
# here: python_backend_stubs/3.12/triton_python_backend_stub run directly (no libpython3.12 in the cache)
LIBPYTHON_312_MISSING = (
    "/tmp/devenv/lib/python3.11/site-packages/pytriton/tritonserver/python_backend_stubs/3.12/"
    "triton_python_backend_stub: error while loading shared libraries: libpython3.12.so.1.0: "
    "cannot open shared object file: No such file or directory\n"
)
# here: smoke log of a venv made from pyenv 3.12.1 (shared libpython, not in the loader cache)
STUB_312_IN_312_VENV = (
    "/tmp/tdsmoke-997817ky/h/workspace_ia2s_47o/tritonserver/backends/python/triton_python_backend_stub: error while "
    "loading shared libraries: libpython3.12.so.1.0: cannot open shared object file: No such file or directory\n"
)
PYENV312 = Interpreter(
    python="/tmp/venv312/bin/python", version="3.12.1", minor="3.12", prefix="/tmp/venv312", env_kind="venv",
    libdir="/root/.pyenv/versions/3.12.1/lib", enable_shared=True,
    own_libpython="/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0", pytriton="0.7.0",
)
# here: a copy of pytriton/tritonserver/bin/tritonserver run outside the package (no $ORIGIN libs)
LIBCUDART_MISSING = (
    "/tmp/scratch/x/tritonserver: error while loading shared libraries: libcudart-09529672.so.12.6.77: "
    "cannot open shared object file: No such file or directory\n"
)
# here: smoke run with its HTTP port held by another socket
PORT_TAKEN = (
    "E1123 08:49:51.244928 11556 main.cc:257] \"failed to start HTTP service: Unavailable - "
    "Socket '127.0.0.1:55729' already in use \"\n"
)
# triton-inference-server/tensorrtllm_backend#524 (gRPC port taken)
GRPC_PORT_TAKEN = (
    "E0705 08:07:40.219789 79386 main.cc:245] failed to start GRPC service: Unavailable - "
    "Socket '0.0.0.0:18001' already in use \n"
)
# fil_backend#243 (the load error quoted in the pull request)
GLIBCXX = "unable to load shared library: /usr/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.30' not found\n"
# triton-inference-server/server#6195
SHM_FULL = (
    "UNAVAILABLE: Internal: Unable to initialize shared memory key 'triton_python_backend_shm_region_3' to "
    "requested size (67108864 bytes). If you are running Triton inside docker, use '--shm-size' flag to control "
    "the shared memory region size. Each Python backend model instance requires at least 64MBs of shared memory. "
    "Error: No space left on device\n"
)
# the same server message (server#6195's format) with strerror(EEXIST), as a stale segment gives it
SHM_STALE = SHM_FULL.replace("No space left on device", "File exists")
# here: `import zmq` in the pyenv base interpreter, which has no pyzmq
NO_ZMQ = "ModuleNotFoundError: No module named 'zmq'\n"
# source: pytriton 0.7.0 server/triton_server.py, get_triton_python_backend_python_env()
MISSING_PACKAGES = (
    "RuntimeError: Python environment for python backend is missing required packages. Ensure that you have "
    "numpy, zmq installed in the /tmp/env environment. Installed modules numpy. Missing modules zmq.\n"
)
# triton-inference-server/server#3094 (title)
STUB_EXITED = "Internal: Failed to initialize stub, stub process exited unexpectedly\n"
# mozilla/translations#1167 (nvidia-smi output quoted there)
NVML_MISMATCH = "[nvidia-smi(stdout)] Failed to initialize NVML: Driver/library version mismatch\n"
# triton-inference-server/pytriton#37 (title; PyTriton in Docker without --ipc=host)
STUB_UNHEALTHY = "Stub process 'REGIS_0' is not healthy\n"
# here: smoke run whose PYTRITON_HOME was too long for a zmq ipc socket
IPC_TOO_LONG = (
    'ValueError: Error occurred during binding socket to url=\'ipc:///tmp/tritondoctor-smoke-4pcim2qc/pytriton-home/'
    'workspace_6aus66vm/tritondoctor_smoke_72d66c76_0_0-server.sock\' (e: ipc path "/tmp/tritondoctor-smoke-4pcim2qc/'
    'pytriton-home/workspace_6aus66vm/tritondoctor_smoke_72d66c76_0_0-server.sock" is longer than 107 characters '
    "(sizeof(sockaddr_un.sun_path)).\n"
)
# here: every smoke run on this GPU-less host prints these
CPU_HOST_NOISE = (
    'W1123 08:37:24.768095 5441 pinned_memory_manager.cc:273] "Unable to allocate pinned system memory, pinned memory '
    'pool will not be available: CUDA driver version is insufficient for CUDA runtime version"\n'
    'I1123 08:37:24.768181 5441 cuda_memory_manager.cc:117] "CUDA memory pool disabled"\n'
    'E1123 08:37:24.768352 5441 server.cc:241] "CudaDriverHelper has not been initialized."\n'
    "Error: Failed to initialize NVML\n"
    'W1123 08:37:24.771883 5441 metrics.cc:798] "DCGM unable to start: DCGM initialization error"\n'
    'E1123 08:37:25.766015 5441 model_repository_manager.cc:470] "Failed to set config modification time: '
    'model_config_content_name_ is empty"\n'
)
# here: tritonserver after `kill -SEGV` (its own handler prints this, then a stack trace)
SEGV_TRACE = "Signal (11) received.\n 0# 0x0000562D718F052D in /root/.cache/pytriton/workspace_e25chy76/tritonserver/bin/tritonserver\n"


def ids(text: str, interp: Interpreter = PYENV, gpu: bool = False) -> list[str]:
    return [f.id for f in dx.from_log(text, Observation(interpreter=interp, gpu_present=gpu))]


def only(text: str, **kwargs) -> Finding:
    findings = dx.from_log(text, Observation(interpreter=PYENV, **kwargs))
    assert len(findings) == 1, [f.title for f in findings]
    return findings[0]


@pytest.mark.parametrize(
    "text, expected",
    [
        (RLOCK, ["libpython"]),  # the model-load failure it causes is not reported separately
        (LIBPYTHON_312_MISSING, ["pytriton"]),  # stub for 3.12 but the interpreter is 3.11
        (LIBCUDART_MISSING, ["libs"]),
        (PORT_TAKEN, ["ports"]),
        (GRPC_PORT_TAKEN, ["ports"]),
        (GLIBCXX, ["glibcxx"]),
        (SHM_FULL, ["shm"]),
        (SHM_STALE, ["shm"]),
        (NO_ZMQ, ["python-deps"]),
        (MISSING_PACKAGES, ["python-deps"]),
        (STUB_EXITED, ["pytriton"]),
        (NVML_MISMATCH, ["cuda-driver"]),
        (IPC_TOO_LONG, ["workspace"]),
        (STUB_UNHEALTHY, ["shm"]),
        (CPU_HOST_NOISE, []),
        ("I1123 08:37:27 1 model_lifecycle.cc:777] \"failed to load 'm'\"\n", ["model-load"]),
    ],
)
def test_signature_to_finding_id(text: str, expected: list[str]) -> None:
    assert ids(text) == expected


def test_signatures_that_can_hang_a_load_end_the_run_early() -> None:
    for text in (RLOCK, LIBPYTHON_312_MISSING, LIBCUDART_MISSING, PORT_TAKEN, GLIBCXX, SHM_FULL, STUB_EXITED, IPC_TOO_LONG):
        assert any(dx.is_fatal(line) for line in text.splitlines()), text
    # These always come with an error the model script reports itself: no need to cut the run short.
    assert not any(dx.is_fatal(line) for line in (NO_ZMQ + "failed to load 'm'\n").splitlines())
    assert not any(dx.is_fatal(line) for line in CPU_HOST_NOISE.splitlines())


def test_libpython_fix_names_the_interpreter_libdir() -> None:
    finding = only(RLOCK)
    assert finding.status is Status.ERROR
    assert finding.fix is not None and finding.fix.id == "venv-hooks"
    assert finding.fix.commands[0] == "tritondoctor fix"
    assert "export LD_LIBRARY_PATH=/root/.pyenv/versions/3.11.7/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" in finding.fix.commands[1]


def test_libpython_title_names_what_the_stub_loaded() -> None:
    obs = Observation(interpreter=PYENV, stub_libpython={"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0": "3.11.2"})
    finding = dx.from_log(RLOCK, obs)[0]
    assert "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0 (3.11.2)" in finding.title
    assert "3.11.7" in finding.title


def test_libpython_for_a_system_python_is_a_plain_export() -> None:
    system = Interpreter(python="/usr/local/bin/python3.11", version="3.11.7", minor="3.11", env_kind="system",
                            enable_shared=True, own_libpython="/usr/local/lib/libpython3.11.so.1.0")
    finding = dx.from_log(RLOCK, Observation(interpreter=system))[0]
    assert finding.fix is not None
    assert finding.fix.commands == ("export LD_LIBRARY_PATH=/usr/local/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}",)


def test_libpython_without_a_shared_library_says_so() -> None:
    static = Interpreter(python="/opt/py/bin/python", version="3.11.7", minor="3.11", enable_shared=False)
    finding = dx.from_log(RLOCK, Observation(interpreter=static))[0]
    assert finding.fix is not None and "--enable-shared" in finding.fix.summary


def test_missing_libpython_of_the_same_minor_is_libpython() -> None:
    findings = dx.from_log(STUB_312_IN_312_VENV, Observation(interpreter=PYENV312))
    assert [f.id for f in findings] == ["libpython"]
    assert findings[0].title == "the Python backend stub cannot find libpython3.12.so.1.0"
    assert "/root/.pyenv/versions/3.12.1/lib" in findings[0].detail
    assert "export LD_LIBRARY_PATH=/root/.pyenv/versions/3.12.1/lib" in findings[0].fix.commands[1]


def test_wrong_stub_minor_is_named() -> None:
    finding = only(LIBPYTHON_312_MISSING)
    assert "3.12" in finding.title and "3.11" in finding.title


def test_ports_fix_names_the_port() -> None:
    finding = only(PORT_TAKEN)
    assert "127.0.0.1:55729" in finding.title
    assert finding.fix is not None and finding.fix.commands == ("ss -ltnp 'sport = :55729'",)


def test_shm_full_and_stale_have_different_fixes() -> None:
    full, stale = only(SHM_FULL), only(SHM_STALE)
    assert "No space left" in full.title and full.fix.id == "shm-size" and any("--shm-size" in c for c in full.fix.commands)
    assert "File exists" in stale.title and stale.fix.id == "shm-cleanup"


def test_python_deps_names_the_pip_package() -> None:
    assert only(NO_ZMQ).fix.commands == ("/tmp/venv/bin/python -m pip install pyzmq",)
    assert only(MISSING_PACKAGES).fix.commands == ("/tmp/venv/bin/python -m pip install pyzmq",)


def test_cuda_driver_message_is_harmless_without_a_gpu_and_an_error_with_one() -> None:
    assert ids(CPU_HOST_NOISE, gpu=False) == []
    notes = dx.harmless_lines(CPU_HOST_NOISE, gpu_present=False)
    assert len(notes) == 6
    assert all(why for _line, why in notes)
    assert ids(CPU_HOST_NOISE, gpu=True) == ["cuda-runtime"]
    # With a GPU, DCGM and the config-time notice stay harmless; the CUDA ones do not.
    kept = [line for line, _ in dx.harmless_lines(CPU_HOST_NOISE, gpu_present=True)]
    assert len(kept) == 2 and not any("CUDA" in line for line in kept)


def test_diagnose_explains_harmless_messages_as_ok() -> None:
    obs = Observation(log=CPU_HOST_NOISE, interpreter=PYENV, events=[{"ev": "result", "checks": {}, "burst": {}}])
    findings = dx.diagnose(obs)
    assert [f.id for f in findings] == ["server-log"]
    assert findings[0].status is Status.OK
    assert "DCGM" in findings[0].detail


def test_server_signal_from_the_script_event() -> None:
    obs = Observation(log=CPU_HOST_NOISE + SEGV_TRACE, interpreter=PYENV,
                         events=[{"ev": "server-exit", "code": -11, "signal": "SIGSEGV"}])
    findings = [f for f in dx.diagnose(obs) if f.status is Status.ERROR]
    assert [f.id for f in findings] == ["server-signal"]
    assert findings[0].title == "tritonserver was killed by SIGSEGV (signal 11)"


def test_server_signal_from_the_log_when_the_code_is_unknown() -> None:
    obs = Observation(log=SEGV_TRACE, interpreter=PYENV, server_vanished=True)
    assert "SIGSEGV" in dx.diagnose(obs)[0].title


def test_normal_shutdown_signal_is_not_a_crash() -> None:
    obs = Observation(log="Signal (2) received.\n", interpreter=PYENV, events=[{"ev": "server-exit", "code": 0}])
    findings = dx.diagnose(obs)
    assert findings[0].id == "server-exit" and "code 0" in findings[0].title


def test_import_failure_names_pytriton_install() -> None:
    obs = Observation(interpreter=Interpreter(python="/usr/bin/python3"), events=[
        {"ev": "error", "phase": "import", "module": "pytriton", "message": "ModuleNotFoundError: No module named 'pytriton'"}])
    finding = dx.diagnose(obs)[0]
    assert finding.id == "pytriton"
    assert finding.fix.commands == ("/usr/bin/python3 -m pip install -U nvidia-pytriton",)


def test_timeout_names_the_last_step() -> None:
    obs = Observation(interpreter=PYENV, timed_out=True, timeout_s=12,
                         events=[{"ev": "phase", "name": "server-ready"}, {"ev": "phase", "name": "model-ready"}])
    finding = dx.diagnose(obs)[-1]
    assert finding.id == "timeout" and "12 s" in finding.title and "model-ready" in finding.title


def test_wrong_numbers_are_an_infer_finding() -> None:
    result = {"ev": "result", "checks": {"http": {"ok": True, "max_error": 0.0}, "grpc": {"ok": False, "max_error": 0.5}},
              "burst": {"failed": 0}}
    findings = dx.diagnose(Observation(interpreter=PYENV, events=[result]))
    assert [(f.id, f.status) for f in findings] == [("infer", Status.ERROR)]
    assert "GRPC" in findings[0].title


def test_log_signature_in_a_working_run_is_only_a_warning() -> None:
    result = {"ev": "result", "checks": {"http": {"ok": True, "max_error": 0.0}, "grpc": {"ok": True, "max_error": 0.0}},
              "burst": {"failed": 0}}
    findings = dx.diagnose(Observation(log=NO_ZMQ, interpreter=PYENV, events=[result]))
    assert [(f.id, f.status) for f in findings] == [("python-deps", Status.WARN)]


def test_a_catalog_row_has_its_signature_in_one_place() -> None:
    """Smoke's own signatures stand only for rows no check carries (a new row goes to its check)."""
    from tritondoctor.registry import all_checks

    by_checks = {row for spec in all_checks() for s in spec.signatures for row in s.rows}
    assert not {row for _, s in dx.SMOKE_ONLY for row in s.rows} & by_checks
