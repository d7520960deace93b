"""Field catalog rows 24-39: each detected from the real condition where this machine can make
it, from faithful copies of the files where it cannot (tests/data/round2), and every row mapped
from log text to its check by a LogSignature."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tritondoctor.checks import (
    CHECKS, client_deps, exec_mounts, grpc_proxy, host_arch, logind_ipc, loopback, memory_limit, stub_build,
)
from tritondoctor.facts import hostlimits, pkgfiles
from tritondoctor.findings import Status
from tritondoctor.snapshot import Snapshot, take_snapshot

DATA = Path(__file__).parent / "data" / "round2"


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return take_snapshot(python=sys.executable, environ={k: v for k, v in os.environ.items()
                                                         if "proxy" not in k.lower()})


def with_host(snap: Snapshot, **parts: Any) -> Snapshot:
    assert snap.host is not None
    return dataclasses.replace(snap, host=dataclasses.replace(snap.host, **parts))


# --- row 25: proxy ------------------------------------------------------------------------------

GRPC_PROBE = textwrap.dedent("""
    import socket, sys, threading, grpc
    srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(5); srv.settimeout(3)
    hit = []
    t = threading.Thread(target=lambda: hit.append(srv.accept()), daemon=True); t.start()
    try:
        grpc.channel_ready_future(grpc.insecure_channel("localhost:%d" % srv.getsockname()[1])).result(timeout=2)
    except Exception:
        pass
    t.join(3)
    print("direct" if hit else "proxied")
""")


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def grpc_reaches_loopback(env: dict[str, str]) -> bool:
    out = subprocess.run([sys.executable, "-c", GRPC_PROBE], env=env, capture_output=True, text=True, timeout=30)
    return out.stdout.strip() == "direct"


def test_row25_dead_proxy_breaks_grpc_and_check_names_it(snap: Snapshot) -> None:
    base = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    dead = f"http://alice:s3cret@127.0.0.1:{_dead_port()}"
    env = dict(base, https_proxy=dead)
    assert not grpc_reaches_loopback(env), "gRPC went around a dead https_proxy"
    findings = grpc_proxy.run(snap.derive(env))
    assert findings[0].status is Status.ERROR and "https_proxy" in findings[0].title
    assert "s3cret" not in str(findings[0].to_json()) and "http://***@127.0.0.1" in findings[0].title
    fixed = dict(env, no_grpc_proxy="localhost,127.0.0.1")
    assert grpc_reaches_loopback(fixed)
    assert grpc_proxy.run(snap.derive(fixed))[0].status is Status.OK
    upper = dict(base, HTTPS_PROXY=dead)  # gRPC reads only the lower-case names (measured above)
    assert grpc_reaches_loopback(upper) and grpc_proxy.run(snap.derive(upper))[0].status is Status.OK
    partial = dict(env, no_proxy="127.0.0.1")
    assert not grpc_reaches_loopback(partial)
    assert grpc_proxy.run(snap.derive(partial))[0].status is Status.WARN


def test_row25_fix_writes_venv_hook_and_undo_restores(tmp_path: Path, snap: Snapshot) -> None:
    import venv

    from tritondoctor.fixes import grpc_proxy_hooks
    from tritondoctor.journal import Journal, PrefixLock, undo_last

    env_dir = tmp_path / "env"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    activate = env_dir / "bin" / "activate"
    before = activate.read_bytes()
    target = dataclasses.replace(snap.target, prefix=str(env_dir), base_prefix="/usr")
    environ = dict(snap.environ, https_proxy=f"http://127.0.0.1:{_dead_port()}", no_proxy="corp.example")
    bad = dataclasses.replace(snap.derive(environ), target=target)
    from tritondoctor.registry import run_checks

    findings = run_checks(bad)  # all of them, as `fix` plans: other checks' errors are not new
    plan = grpc_proxy_hooks.plan(bad, findings)
    assert plan is not None and plan.prediction.proven, plan and plan.prediction
    with PrefixLock(str(env_dir)):
        journal = Journal(str(env_dir), [plan.id])
        grpc_proxy_hooks.apply(plan, journal)
        journal.commit()
    script = (f". {activate} && echo \"A=$no_grpc_proxy\" && deactivate && echo \"D=${{no_grpc_proxy-unset}}\"")
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=environ).stdout
    assert "A=localhost,127.0.0.1,corp.example" in out and "D=unset" in out, out
    assert grpc_proxy_hooks.plan(bad, findings) is not None  # idempotent: no second block
    assert activate.read_text().count(grpc_proxy_hooks.BEGIN) == 2
    undo_last(str(env_dir))
    assert activate.read_bytes() == before

    # A block of ours that lost its end line: planning refuses, naming why, rather than dropping
    # everything after it.
    activate.write_text(before.decode() + f"\n{grpc_proxy_hooks.BEGIN}\nexport KEEP=me\n")
    from tritondoctor.plan import PlanContext

    ctx = PlanContext()
    assert grpc_proxy_hooks.plan(bad, findings, ctx) is None
    assert any("unterminated" in note for note in ctx.notes), ctx.notes


# --- row 26: logind RemoveIPC ---------------------------------------------------------------------

def test_row26_logind_default_removes_ipc_of_non_system_user(snap: Snapshot) -> None:
    facts = hostlimits.logind(str(DATA / "logind"), uid=1000)
    assert facts.remove_ipc and facts.source == "default" and facts.sys_uid_max == 499
    finding = logind_ipc.run(with_host(snap, logind=facts))[0]
    assert finding.status is Status.WARN and finding.fix and finding.fix.id == "logind-removeipc"
    assert logind_ipc.run(with_host(snap, logind=hostlimits.logind(str(DATA / "logind"), uid=400)))[0].status is Status.OK
    kept = hostlimits.logind(str(DATA / "logind-no"), uid=1000)
    assert not kept.remove_ipc and kept.source.endswith("90-keep-ipc.conf")
    assert logind_ipc.run(with_host(snap, logind=kept))[0].status is Status.OK


# --- rows 27, 28: noexec / tiny /tmp ------------------------------------------------------------

TMP_PROBE = textwrap.dedent("""
    import sys
    from tritondoctor.snapshot import take_snapshot
    from tritondoctor.checks import exec_mounts
    for f in exec_mounts.run(take_snapshot(python=sys.executable)):
        print(f.status.value, f.title)
""")


def _keep_under_tmp() -> list[str]:
    """The top directories under /tmp this interpreter and checkout live in (a CI clone may):
    bound back into the new /tmp so the probe can still run from them."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tops = set()
    for path in (sys.prefix, sys.base_prefix, os.path.realpath(sys.executable), repo):
        rel = os.path.relpath(path, "/tmp")
        if not rel.startswith(".."):
            tops.add(rel.split(os.sep)[0])
    return sorted(tops)


def test_row28_noexec_tiny_tmp_in_a_mount_namespace() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("no unshare")
    keep = _keep_under_tmp()
    old = "/mnt" if keep else ""
    binds = "".join(f" && mkdir -p /tmp/{t} && mount --bind {old}/{t} /tmp/{t}" for t in keep)
    script = (f"{'mount --bind /tmp /mnt && ' if keep else ''}mount -t tmpfs -o noexec,size=1m tmpfs /tmp{binds}"
              f" && exec {sys.executable} -c \"$0\"")
    proc = subprocess.run(["unshare", "-m", "sh", "-c", script, TMP_PROBE], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, TRITONDOCTOR_CACHE_DIR=""))
    if proc.returncode != 0 and "mount" in proc.stderr and "exec_mounts" not in proc.stderr:
        pytest.skip(f"mounting a tmpfs was refused here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    assert "warn /tmp is mounted noexec" in proc.stdout, proc.stdout


def test_row28_tiny_tmp(snap: Snapshot) -> None:
    tiny = hostlimits.TmpFacts("/tmp", "/tmp", "tmpfs", False, 900 * 1024, 1024 * 1024)
    finding = exec_mounts.run(with_host(snap, tmp=tiny))[-1]
    assert finding.status is Status.WARN and "free" in finding.title


# --- row 34: memory limits ------------------------------------------------------------------------

def test_row34_cgroup_limits_from_fixture_files(snap: Snapshot) -> None:
    v2 = hostlimits.memory_limit(str(DATA / "cgroup2"))
    assert v2.version == 2 and v2.limit_bytes == 110 * 1024 * 1024 and v2.oom_kills == 2
    assert v2.file and v2.file.endswith("user-1000.slice/memory.max")
    finding = memory_limit.run(with_host(snap, memory=v2))[0]
    assert finding.status is Status.ERROR and "110 MiB" in finding.title and "2 time" in finding.title
    v1 = hostlimits.memory_limit(str(DATA / "cgroup1"))
    assert v1.version == 1 and v1.limit_bytes == 512 * 1024 * 1024
    assert memory_limit.run(with_host(snap, memory=v1))[0].status is Status.WARN
    assert memory_limit.run(with_host(snap, memory=hostlimits.MemoryLimit(None, None, 1)))[0].status is Status.OK


# --- rows 36, 37: emulation, IPv6-only ------------------------------------------------------------

def test_row36_qemu_emulation_from_fixture(snap: Snapshot) -> None:
    emu = hostlimits.emulation(str(DATA / "emu"), machine="x86_64")
    assert emu.emulated and emu.qemu_handlers[0][0] == "qemu-x86_64"
    assert host_arch.run(with_host(snap, emulation=emu))[0].status is Status.ERROR
    native = hostlimits.emulation(str(DATA / "emu"), machine="aarch64")
    assert host_arch.run(with_host(snap, emulation=native))[0].status is Status.OK


def test_row37_ipv6_only_from_fixture(snap: Snapshot) -> None:
    lo = hostlimits.loopback(str(DATA / "ipv6only"))
    assert lo.ipv4_loopback is False and lo.ipv6_loopback
    assert loopback.run(with_host(snap, loopback=lo))[0].status is Status.ERROR
    assert loopback.run(snap)[0].status is Status.OK  # this machine: 127.0.0.1 on lo


# --- row 31: a stub that is not the wheel's -------------------------------------------------------

def test_row31_foreign_stub_against_record(tmp_path: Path, snap: Snapshot) -> None:
    assert snap.pytriton is not None
    assert stub_build.run(snap)[0].status is Status.OK  # the real wheel's files match its RECORD
    site = tmp_path / "site"
    shutil.copytree(os.path.dirname(snap.pytriton.package_dir) + f"/nvidia_pytriton-{snap.pytriton.version}.dist-info",
                    site / f"nvidia_pytriton-{snap.pytriton.version}.dist-info")
    backend = site / "pytriton/tritonserver/backends/python/libtriton_python.so"
    backend.parent.mkdir(parents=True)
    backend.write_bytes(b"\x7fELF built from another branch")
    install = dataclasses.replace(snap.pytriton, package_dir=str(site / "pytriton"), python_backend=str(backend),
                                  stubs={})
    foreign = pkgfiles.foreign_binaries(install, None)
    assert [b.path for b in foreign] == [str(backend)]
    bad = dataclasses.replace(snap, pkgfiles=dataclasses.replace(snap.pkgfiles, foreign=foreign))
    assert stub_build.run(bad)[0].status is Status.ERROR


def test_row31_remembered_digest_follows_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second check takes the digest from the cache; the same file rewritten in place (same size,
    mtime put back) is hashed again, and the cache file holds what the next process needs."""
    from tritondoctor.cache import JsonCache

    cache = JsonCache(str(tmp_path / "cache"), "digests-v1.json", 8)
    monkeypatch.setattr(pkgfiles, "_digest_cache", cache)
    binary = tmp_path / "libtriton_python.so"
    binary.write_bytes(b"A" * 4096)
    first = pkgfiles._sha256_b64(str(binary))
    reads: list[int] = []
    real_get = cache.get
    monkeypatch.setattr(cache, "get", lambda key: reads.append(1) or real_get(key))
    assert pkgfiles._sha256_b64(str(binary)) == first and reads == [1]
    before = binary.stat()
    binary.write_bytes(b"B" * 4096)
    os.utime(binary, ns=(before.st_atime_ns, before.st_mtime_ns))
    second = pkgfiles._sha256_b64(str(binary))
    assert second != first
    cache.save()
    fresh = JsonCache(str(tmp_path / "cache"), "digests-v1.json", 8)
    assert fresh.get(pkgfiles._content_identity(binary.stat())) == {"sha256": second}
    assert pkgfiles._sha256_b64(str(tmp_path / "missing")) is None
    # A damaged entry is a miss, never an answer.
    for damaged in (["x"], {"sha256": 7}, {"sha256": "not a digest"}):
        cache._memory[pkgfiles._content_identity(binary.stat())] = damaged  # type: ignore[assignment]
        assert pkgfiles._sha256_b64(str(binary)) == second


# --- row 35: tritonclient against grpcio / protobuf -----------------------------------------------

def test_row35_client_metadata_against_installed(tmp_path: Path, snap: Snapshot) -> None:
    assert client_deps.run(snap)[0].status is Status.OK, client_deps.run(snap)[0].title
    site = tmp_path / "site"
    info = site / "tritonclient-2.73.0.dist-info"
    info.mkdir(parents=True)
    real = Path(snap.target.distributions["tritonclient"].location) / "tritonclient-2.73.0.dist-info" / "METADATA"
    shutil.copy(real, info / "METADATA")
    (site / "tritonclient/grpc").mkdir(parents=True)
    (site / "tritonclient/grpc/service_pb2_grpc.py").write_text("GRPC_GENERATED_VERSION = '1.81.1'\n")
    dists = dict(snap.target.distributions)
    dists["tritonclient"] = dataclasses.replace(dists["tritonclient"], location=str(site))
    dists["grpcio"] = dataclasses.replace(dists["grpcio"], version="1.62.0")
    target = dataclasses.replace(snap.target, distributions=dists)
    client = pkgfiles.client_deps(target)
    assert client and client.grpc_generated == "1.81.1" and any("grpcio>=1.81.1" in r for r in client.requires)
    finding = client_deps.run(dataclasses.replace(snap, target=target, pkgfiles=dataclasses.replace(
        snap.pkgfiles, client=client)))[0]
    assert finding.status is Status.ERROR and "grpcio 1.62.0" in finding.title


# --- signatures: every row 24-39 maps log text to a check -----------------------------------------

CAPTURED = {
    24: "tritonclient.utils.InferenceServerException: [403] This API is restricted, expecting header 'triton-access-token'",
    25: "grpc._channel._InactiveRpcError: status = StatusCode.UNAVAILABLE details = \"failed to connect to all addresses; last error: UNAVAILABLE: ipv4:127.0.0.1:3128: Connection refused\"",
    26: "FileNotFoundError: [Errno 2] No such file or directory: '/dev/shm/triton_python_backend_shm_region_1'",
    27: "E0308 10:01:02.123 pb_env.cc:251] Failed to give execute permission to triton_python_backend_stub in /mnt/models/m/1",
    28: "/bin/dash: 0: cannot open /tmp/folderq0XnJ3/triton_python_backend_stub: Permission denied",
    29: "PermissionError: [Errno 13] Permission denied: '/home/u/.cache/pytriton/workspace_ab12cd34/tritonserver/bin/tritonserver'",
    30: "struct.error: unpack_from requires a buffer of at least 8 bytes for unpacking 8 bytes at offset 0",
    31: "E0101 model_lifecycle.cc:638] failed to load 'm': Triton backend API version does not support this backend",
    32: "Path /opt/envs/py310/bin/activate does not exist. The Python environment should contain an 'activate' script.",
    33: "ImportError: /usr/lib/aarch64-linux-gnu/libgomp.so.1: cannot allocate memory in static TLS block",
    34: "pytriton.exceptions.PyTritonUnrecoverableError: Model script exited with exit code -9",
    35: "RuntimeError: The grpc package installed is at version 1.62.0, but the generated code in grpc_service_pb2_grpc.py depends on grpcio>=1.81.1.",
    36: "qemu: uncaught target signal 11 (Segmentation fault) - core dumped",
    37: "error: --http-address :: failed: Address family not supported by protocol",
    38: "tritonclient.utils.InferenceServerException: [400] Request for unknown model: 'm' is not found",
    39: "FileNotFoundError: [Errno 2] No such file or directory: '/venv/lib/python3.14/site-packages/pytriton/tritonserver/python_backend_stubs/3.14/triton_python_backend_stub'",
}


@pytest.mark.parametrize("row", sorted(CAPTURED))
def test_signature_maps_captured_line_to_row(row: int) -> None:
    hits = [(spec.id, s) for spec in CHECKS for s in spec.signatures if s.pattern.search(CAPTURED[row])]
    assert any(row in s.rows for _, s in hits), (row, [(i, s.rows) for i, s in hits])
    assert all(s.cause for _, s in hits if row in s.rows)


def test_every_row_24_39_has_a_signature_and_remedies_are_declared() -> None:
    from tritondoctor.remedies import REMEDIES

    rows = {r for spec in CHECKS for s in spec.signatures for r in s.rows}
    assert set(range(24, 40)) <= rows
    ours = {"grpc-proxy", "logind-ipc", "exec-mounts", "stale-workspaces", "stub-numpy", "stub-build",
            "memory-limit", "client-deps", "host-arch", "loopback", "server-protocol"}
    for spec in (c for c in CHECKS if c.id in ours):  # a row it detects statically has a signature on it
        mine = {r for s in spec.signatures for r in s.rows}
        assert not {r for r in spec.rows if 24 <= r <= 39} - mine, spec.id
    for rid in ("grpc-proxy-hooks", "no-grpc-proxy", "workspace-cleanup", "logind-removeipc", "memory-limit"):
        assert rid in REMEDIES
