"""Service roles as processes on this machine: start, record, watch, signal and stop them.

Every role runs as its own ``fjo serve <service> <role>`` process in a session of its own, the
way Kubernetes runs it as its own pod. What was started is recorded in a state directory
(``stack.json``, ``ports.json``, ``pids/``, ``logs/``), so that ``fjo down`` stops exactly
those process groups and nothing found by name. The backends (``fjo.stack.kafka``,
``fjo.stack.embedded``) decide the databases and the bus; this module only runs processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services import catalogue
from services.runtime.settings import ENVIRONMENT_VARIABLE

__all__ = [
    "REPO_ROOT",
    "StackProcess",
    "StackState",
    "alive",
    "base_env",
    "check_roles",
    "down_stack",
    "exited",
    "fjo_command",
    "free_port",
    "is_running",
    "kill_role",
    "launch",
    "migrate",
    "process_names",
    "refuse_running",
    "restart_role",
    "run_script",
    "service_env",
    "spawn",
    "stack_roles",
    "start_roles",
    "state_env",
    "stop_spawned",
    "wait_ready",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_FILE = "stack.json"
Echo = Callable[[str], Any]


@dataclass
class StackProcess:
    """One process a stack started."""

    name: str  # e.g. "ingest-api", "link-worker-2"
    service: str
    role: str
    pid: int
    port: int
    log: str
    command: list[str]


@dataclass
class StackState:
    """What a stack started, and what a role needs to be started again the same way."""

    processes: list[StackProcess] = field(default_factory=list)
    kafka_bootstrap: str = ""
    postgres_url: str = ""
    databases: dict[str, str] = field(default_factory=dict)
    started_kafka: bool = False
    started_postgres: bool = False
    bus: dict[str, str] = field(default_factory=dict)
    """Every role's ``BUS__*`` settings, e.g. ``{"backend": "kafka", "kafka_bootstrap": ...}``."""
    dev_key_dir: str = ""
    """Where the dev keys of every service live (empty: each service's default)."""

    def save(self, state_dir: Path) -> None:
        """Write the record; each file whole or not at all (a reader, or an interrupt while
        writing, never sees half a stack.json: ``fjo down`` could not stop what it lists)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        _write_whole(state_dir / STATE_FILE, json.dumps(asdict(self), indent=2) + "\n")
        ports = {p.name: p.port for p in self.processes}
        _write_whole(state_dir / "ports.json", json.dumps(ports, indent=2, sort_keys=True) + "\n")
        pids = state_dir / "pids"
        pids.mkdir(exist_ok=True)
        for p in self.processes:
            (pids / f"{p.name}.pid").write_text(f"{p.pid}\n")

    @classmethod
    def load(cls, state_dir: Path) -> StackState | None:
        path = state_dir / STATE_FILE
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        raw["processes"] = [StackProcess(**p) for p in raw.get("processes", [])]
        return cls(**raw)

    def port(self, name: str) -> int:
        """The port of a started process (an API's, or a worker's probe)."""
        for sp in self.processes:
            if sp.name == name:
                return sp.port
        raise KeyError(name)


def stack_roles() -> list[tuple[str, str]]:
    """(service, role) pairs the platform runs: the catalogue's, as Kubernetes runs them."""
    return catalogue.roles()


def migrate(service: str, database_url: str) -> str:
    """Bring ``service``'s schema to its newest revision; say so."""
    catalogue.entry(service).migrate(database_url)
    return f"{service}: migrated"


# ---------------------------------------------------------------------------- environment


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fjo_command() -> list[str]:
    """How to run ``fjo`` from this interpreter (its console script, else ``-c``)."""
    script = Path(sys.executable).parent / "fjo"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from fjo.cli import main; main()"]


def base_env() -> dict[str, str]:
    """This process's environment without its own FJO_ settings (each role gets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}


def service_env(
    service: str,
    *,
    database_url: str,
    bus: Mapping[str, str],
    state_dir: Path,
    dev_key_dir: str = "",
) -> dict[str, str]:
    """The settings of one service's processes: dev, its database, the stack's bus, and files
    under ``state_dir`` (spool, extracts, one dev token issuer for every API)."""
    fields = catalogue.entry(service).settings.model_fields
    p = f"FJO_{service.upper()}_"
    env = {
        ENVIRONMENT_VARIABLE: "dev",  # explicitly: unset, every service runs as prod
        f"{p}DATABASE_URL": database_url,
        f"{p}TELEMETRY__LOG_JSON": "true",
    }
    # Only what the service's bus settings have: link and access have no identifiable log.
    bus_fields = getattr(fields["bus"].annotation, "model_fields", {})
    env |= {f"{p}BUS__{name.upper()}": value for name, value in bus.items() if name in bus_fields}
    if "migrate_on_start" in fields:
        env[f"{p}MIGRATE_ON_START"] = "false"  # the stack migrated already, once
    data = state_dir / service
    if "spool_dir" in fields:
        env[f"{p}SPOOL_DIR"] = str(data / "spool")
    auth = fields.get("auth")
    if auth is not None and "dev_key_file" in getattr(auth.annotation, "model_fields", {}):
        # One dev issuer key for the whole stack, so one `fjo token` works on every API.
        env[f"{p}AUTH__DEV_KEY_FILE"] = str(state_dir / "dev-issuer.pem")
    extracts = fields.get("extracts")
    if extracts is not None and "directory" in getattr(extracts.annotation, "model_fields", {}):
        env[f"{p}EXTRACTS__DIRECTORY"] = str(data / "extracts")
    if dev_key_dir and "dev_key_dir" in fields:
        env[f"{p}DEV_KEY_DIR"] = dev_key_dir
    return env


def state_env(state: StackState, state_dir: Path, service: str) -> dict[str, str]:
    """``service_env`` of a recorded stack."""
    return service_env(
        service,
        database_url=state.databases[service],
        bus=state.bus,
        state_dir=state_dir,
        dev_key_dir=state.dev_key_dir,
    )


# ------------------------------------------------------------------------------- starting


def _write_whole(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)


# Processes this interpreter started, kept referenced until reaped: a Popen dropped while its
# child still runs warns (ResourceWarning) when garbage-collected, e.g. in a test starting a
# stack in-process.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(command: list[str], *, env: Mapping[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start one role's process in its own session (so `fjo down` signals exactly its
    process group), its output appended to ``log_path``; kept referenced until reaped."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _children[proc.pid] = proc
    return proc


def launch(
    state: StackState,
    state_dir: Path,
    service: str,
    role: str,
    *,
    name: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], StackProcess]:
    """Start one ``fjo serve <service> <role>`` as ``name`` (default ``<service>-<role>``) with
    the settings ``state`` records; record it in ``state`` (and on disk)."""
    name = name or f"{service}-{role}"
    port = free_port()
    if role == catalogue.API:
        command = [*fjo_command(), "serve", service, "api", "--port", str(port)]
    else:
        command = [*fjo_command(), "serve", service, "worker", "--probe-port", str(port)]
    env = base_env() | state_env(state, state_dir, service) | dict(extra_env or {})
    log_path = state_dir / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    proc = spawn(command, env=env, log_path=log_path)
    sp = StackProcess(name, service, role, proc.pid, port, str(log_path), command)
    state.processes = [p for p in state.processes if p.name != name] + [sp]
    state.save(state_dir)
    return proc, sp


def process_names(
    roles: Sequence[tuple[str, str]], replicas: Mapping[str, int] | None = None
) -> list[tuple[str, str, str]]:
    """(name, service, role) of every process to start: ``replicas`` maps a role's name
    (``"link-worker"``) to how many processes run it, named ``link-worker``, ``link-worker-2``..."""
    known = {f"{service}-{role}" for service, role in roles}
    replicas = dict(replicas or {})
    if unknown := sorted(set(replicas) - known):
        raise ValueError(f"replicas of roles that are not started: {unknown}")
    if bad := sorted(name for name, n in replicas.items() if n < 1):
        raise ValueError(f"replicas must be at least 1: {bad}")
    out = []
    for service, role in roles:
        base = f"{service}-{role}"
        for i in range(1, replicas.get(base, 1) + 1):
            out.append((base if i == 1 else f"{base}-{i}", service, role))
    return out


def check_roles(roles: Sequence[tuple[str, str]]) -> None:
    """Raise ``ValueError`` for a (service, role) the platform does not run."""
    unknown = set(roles) - set(stack_roles())
    if unknown:
        raise ValueError(f"not roles of the platform: {sorted(unknown)}")


def start_roles(
    state: StackState,
    state_dir: Path,
    roles: Sequence[tuple[str, str]],
    *,
    replicas: Mapping[str, int] | None = None,
    extra_env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 120.0,
    echo: Echo = print,
) -> list[StackProcess]:
    """Start every role (each replica its own process), then wait until each answers
    ``/readyz``; raise ``RuntimeError`` naming the first that does not."""
    started = [
        launch(state, state_dir, service, role, name=name, extra_env=extra_env)
        for name, service, role in process_names(roles, replicas)
    ]
    deadline = time.monotonic() + ready_timeout_s
    ready = []
    for proc, sp in started:
        problem = wait_ready(proc, sp, deadline)
        if problem and _port_was_taken(proc, sp):
            # The port was free when chosen, but another process took it before this one
            # bound it (free_port cannot reserve): start it once more on a new port.
            proc, sp = launch(
                state, state_dir, sp.service, sp.role, name=sp.name, extra_env=extra_env
            )
            problem = wait_ready(proc, sp, deadline)
        if problem:
            raise RuntimeError(problem)
        echo(f"{sp.name}: ready on 127.0.0.1:{sp.port} (pid {sp.pid})")
        ready.append(sp)
    return ready


def _port_was_taken(proc: subprocess.Popen[bytes], sp: StackProcess) -> bool:
    """The process exited because its port was in use (uvicorn and http.server both say
    "address already in use", errno 98)."""
    if proc.poll() is None:
        return False
    try:
        text = Path(sp.log).read_text(errors="replace").lower()
    except OSError:
        return False
    return "address already in use" in text or "errno 98" in text


def wait_ready(proc: subprocess.Popen[bytes], sp: StackProcess, deadline: float) -> str | None:
    """None once ``/readyz`` answers 200; else why not (process exited, or timed out)."""
    import httpx

    url = f"http://127.0.0.1:{sp.port}/readyz"
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"{sp.name} exited with {proc.returncode}; see {sp.log}{_log_tail(sp.log)}"
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return None
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    return f"{sp.name} not ready at {url}: {last}; see {sp.log}"


def _log_tail(path: str | Path, lines: int = 12, width: int = 300) -> str:
    """The last ``lines`` of a process log, indented under a newline ("" when there is none):
    a process that died at start-up says why in the error itself, even after a test run has
    removed its directory. Logs never carry identifiers, so they may be shown."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    tail = [line[:width] for line in text.splitlines()[-lines:]]
    return "".join(f"\n    {line}" for line in tail)


# ------------------------------------------------------------------------------- stopping


def is_running(sp: StackProcess) -> bool:
    """The PID still runs the command we started (PIDs get reused after a crash or reboot)."""
    try:
        cmdline = Path(f"/proc/{sp.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return all(part.encode() in cmdline for part in ("serve", sp.service, sp.role))


def stop_spawned() -> int:
    """Stop every process group this interpreter spawned that still runs; how many. A safety
    net for a process that owns every stack it started (``fjo demo``): an interrupt between
    ``spawn`` and the record on disk leaves a process ``down_stack`` cannot know of."""
    running = [pid for pid, proc in list(_children.items()) if proc.poll() is None]
    _stop_groups(running)
    return len(running)


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def alive(pid: int) -> bool:
    """The pid exists and is not a zombie (reaping it if it is our child)."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def _stop_group(pid: int, grace_s: float = 15.0) -> None:
    """SIGTERM the process group led by ``pid`` (one ``fjo serve``), then SIGKILL if needed."""
    _stop_groups([pid], grace_s)


def _stop_groups(pids: Sequence[int], grace_s: float = 15.0) -> None:
    """SIGTERM every process group led by one of ``pids`` at once, wait for them together,
    then SIGKILL what is left: a stack's roles are independent processes that each commit
    their own work on SIGTERM, so stopping them one after another only adds up their grace
    periods."""
    waiting = []
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        waiting.append(pid)
    deadline = time.monotonic() + grace_s
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            _reap(pid)
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                waiting.remove(pid)
        if waiting:
            time.sleep(0.1)
    for pid in waiting:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for pid in pids:
        _reap(pid)


def _recorded(state_dir: Path, name: str) -> tuple[StackState, StackProcess]:
    state = StackState.load(state_dir)
    if state is None:
        raise LookupError(f"no stack recorded in {state_dir}")
    for sp in state.processes:
        if sp.name == name:
            return state, sp
    raise LookupError(f"{name!r} is not a process of the stack in {state_dir}")


def kill_role(
    state_dir: Path, name: str, sig: int = signal.SIGKILL, *, timeout_s: float = 30.0
) -> int:
    """Send ``sig`` (default SIGKILL: a crash) to the recorded process group of ``name``
    (e.g. ``"link-worker"``) and wait until it has exited; return its pid.

    Only a process that still runs the recorded command is signalled (PIDs get reused).
    """
    _, sp = _recorded(state_dir, name)
    if not is_running(sp):
        raise RuntimeError(f"{name} (pid {sp.pid}) is not running")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sp.pid, sig)
    deadline = time.monotonic() + timeout_s
    while is_running(sp) and alive(sp.pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} (pid {sp.pid}) did not exit after signal {sig}")
        time.sleep(0.05)
    return sp.pid


def restart_role(
    state_dir: Path,
    name: str,
    *,
    extra_env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 120.0,
    echo: Echo = print,
) -> StackProcess:
    """Start ``name`` again as it was started (stopping it first if it still runs), against
    the same bus and database; wait for ``/readyz``; return the new record. ``extra_env`` is
    not recorded: pass it again."""
    state, sp = _recorded(state_dir, name)
    if is_running(sp):
        _stop_group(sp.pid)
    proc, new = launch(state, state_dir, sp.service, sp.role, name=name, extra_env=extra_env)
    problem = wait_ready(proc, new, time.monotonic() + ready_timeout_s)
    if problem:
        raise RuntimeError(problem)
    echo(f"{new.name}: restarted, ready on 127.0.0.1:{new.port} (pid {new.pid})")
    return new


def run_script(script: str, *args: str) -> None:
    """``scripts/<script> <args>`` (kafka.sh, postgres.sh), failing loudly."""
    subprocess.run([str(REPO_ROOT / "scripts" / script), *args], check=True, env=dict(os.environ))


def down_stack(state_dir: Path, *, stop_services: bool = True, echo: Echo = print) -> int:
    """Stop what a stack recorded in ``state_dir`` (and the Kafka/PostgreSQL it started,
    unless ``stop_services`` is false); return how many processes were stopped."""
    state = StackState.load(state_dir)
    if state is None:
        echo(f"no stack recorded in {state_dir}")
        return 0
    running = [sp for sp in reversed(state.processes) if is_running(sp)]
    _stop_groups([sp.pid for sp in running])
    for sp in reversed(state.processes):
        if sp in running:
            echo(f"{sp.name}: stopped (pid {sp.pid})")
        else:
            _reap(sp.pid)  # one that exited by itself (a crash) is a zombie until reaped
        (state_dir / "pids" / f"{sp.name}.pid").unlink(missing_ok=True)
    stopped = len(running)
    if stop_services and state.started_kafka:
        run_script("kafka.sh", "stop")
    if stop_services and state.started_postgres:
        run_script("postgres.sh", "stop")
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    (state_dir / "ports.json").unlink(missing_ok=True)
    return stopped


def exited(state: StackState) -> list[str]:
    """The processes of ``state`` that no longer run, each with its log."""
    return [f"{sp.name} exited; see {sp.log}" for sp in state.processes if not is_running(sp)]


def refuse_running(state_dir: Path) -> None:
    """Raise when a stack recorded in ``state_dir`` still runs."""
    if (previous := StackState.load(state_dir)) and any(map(is_running, previous.processes)):
        raise RuntimeError(f"a stack is already running from {state_dir}; run `fjo down` first")
