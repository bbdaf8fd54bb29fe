"""`fjo.stack.processes`: single-role operations (the reliability tests' crash and recovery)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fjo.stack import processes
from fjo.stack.embedded import EmbeddedStack
from fjo.stack.kafka import up_stack
from fjo.stack.processes import StackProcess, StackState, kill_role, process_names


def _record(state_dir: Path, proc: subprocess.Popen[bytes], name: str = "link-worker") -> None:
    service, role = name.split("-")
    sp = StackProcess(name, service, role, proc.pid, 0, "", [])
    StackState(processes=[sp]).save(state_dir)


def _sleeper(*words: str) -> subprocess.Popen[bytes]:
    """A process whose command line names `serve <service> <role>`, as `fjo serve` does."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)", "serve", *words],
        start_new_session=True,
    )
    # Until it has exec'd, the child's command line is still this process's.
    deadline = time.monotonic() + 30
    while b"serve" not in Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0"):
        assert time.monotonic() < deadline, "the sleeper never started"
        time.sleep(0.01)
    return proc


def test_kill_role_sigkills_the_recorded_process_and_waits_until_it_is_gone(
    tmp_path: Path,
) -> None:
    proc = _sleeper("link", "worker")
    try:
        _record(tmp_path, proc)
        assert kill_role(tmp_path, "link-worker") == proc.pid
        assert proc.wait(timeout=5) in (-signal.SIGKILL, 0)  # 0: already reaped by kill_role
        with pytest.raises(RuntimeError, match="not running"):
            kill_role(tmp_path, "link-worker")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_kill_role_never_signals_a_process_that_is_not_the_recorded_command(
    tmp_path: Path,
) -> None:
    proc = _sleeper("access", "api")  # recorded as link-worker: a reused pid, say
    try:
        _record(tmp_path, proc, "link-worker")
        with pytest.raises(RuntimeError, match="not running"):
            kill_role(tmp_path, "link-worker")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_kill_role_names_an_unknown_role_or_a_missing_stack(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="no stack"):
        kill_role(tmp_path, "link-worker")
    StackState().save(tmp_path)
    with pytest.raises(LookupError, match="not a process"):
        kill_role(tmp_path, "link-worker")


def test_up_stack_refuses_roles_the_platform_does_not_have_before_starting_anything(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="pseudonymise"):
        up_stack(tmp_path, roles=[("pseudonymise", "api")])
    assert not (tmp_path / "stack.json").exists()


def test_replicas_start_more_processes_of_a_role_each_named_apart() -> None:
    names = process_names([("ingest", "api"), ("link", "worker")], {"link-worker": 3})
    assert names == [
        ("ingest-api", "ingest", "api"),
        ("link-worker", "link", "worker"),
        ("link-worker-2", "link", "worker"),
        ("link-worker-3", "link", "worker"),
    ]


def test_replicas_of_a_role_not_started_or_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="access-worker"):
        process_names([("link", "worker")], {"access-worker": 2})
    with pytest.raises(ValueError, match="at least 1"):
        process_names([("link", "worker")], {"link-worker": 0})


class _LinkApiOnly(EmbeddedStack):
    def roles(self) -> list[tuple[str, str]]:
        return [("link", "api")]


def test_a_role_whose_port_was_taken_before_it_bound_it_starts_again_on_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # free_port cannot reserve a port: another process may bind it before the role does.
    # The first port handed out here is one something already listens on.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    ports = iter([taken.getsockname()[1]])
    real = processes.free_port
    monkeypatch.setattr(processes, "free_port", lambda: next(ports, None) or real())
    stack = _LinkApiOnly(tmp_path / "stack", echo=lambda _m: None)
    try:
        stack.up(ready_timeout_s=60)
        (sp,) = stack.recorded().processes
        assert sp.port != taken.getsockname()[1]
        assert processes.is_running(sp)
        # One log for both attempts: why the first stopped, then the second at work.
        log = Path(sp.log).read_text().lower()
        assert log.index("address already in use") < log.index(f"127.0.0.1:{sp.port}")
    finally:
        stack.down()
        taken.close()
