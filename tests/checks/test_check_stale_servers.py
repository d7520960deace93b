"""Fast tier: the `stale-servers` check (tritonserver / stub processes left running)."""

from __future__ import annotations

import snapfake as sf
from snapfake import Status
from tritondoctor.checks import stale_servers as check

from tritondoctor.facts.runtime import ServerProcess

STUB = "triton_python_backend_stub"


def _proc(pid: int, name: str = "tritonserver", ppid: int = 4000, alive: bool = True, status: str = "sleeping",
          ports: tuple[int, ...] = ()) -> ServerProcess:
    return ServerProcess(pid=pid, name=name, status=status, cmdline=(name, "--model-repository", "/ws"), ppid=ppid,
                         parent_alive=alive, parent_name="python", parent_cmdline=("python", "app.py"), ports=ports)


def _servers(*procs: ServerProcess) -> sf.Snapshot:
    return sf.patch(sf.base(), "runtime", servers=procs)


def test_skip_without_facts() -> None:
    sf.one(check, sf.base(runtime=None), Status.SKIP)


def test_ok_none_running() -> None:
    assert "no tritonserver or python-backend stub process is running" == sf.one(check, sf.base(), Status.OK).title


def test_running_server_of_a_live_parent() -> None:
    found = sf.one(check, _servers(_proc(4242, ports=(8000, 8001))), Status.OK)
    assert found.title == "tritonserver pid 4242 is running, started by pid 4000 (python app.py), holding ports 8000, 8001"


def test_orphaned_server_with_its_stub() -> None:
    found = sf.one(check, _servers(_proc(4242, ppid=1, alive=False, ports=(8000,)), _proc(4300, STUB, ppid=4242)),
                   Status.WARN)
    assert found.title == "tritonserver pid 4242 is left running without the process that started it, holding port 8000"
    assert found.fix is not None and found.fix.id == "stale-server" and found.fix.commands[0] == "kill -INT 4242 4300"
    assert found.evidence["stubs"] == [4300]


def test_zombie_server() -> None:
    found = sf.one(check, _servers(_proc(4242, status="zombie")), Status.WARN)
    assert found.title == "defunct tritonserver (pid 4242): its parent pid 4000 (python) never reaped it"
    assert "a tritonserver that exited" in found.detail and found.fix is not None and found.fix.id == "stale-server"


def test_stubs_on_their_own() -> None:
    found = sf.run(check, _servers(_proc(4242), _proc(4300, STUB, ppid=4242, status="zombie"), _proc(4400, STUB, ppid=1)))
    assert sf.statuses(found) == [Status.OK, Status.WARN, Status.WARN]
    assert "python-backend stub that exited" in sf.titled(found, "defunct").detail
    sf.titled(found, f"{STUB} pid 4400 is left running")
