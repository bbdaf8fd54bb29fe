"""Operator commands: ``fjo db upgrade <service>``, ``fjo up`` and ``fjo down``.

``fjo up`` runs the whole platform on one machine as separate processes, the way Kubernetes
runs it as separate pods: every service role is its own ``fjo serve <service> <role>``
process against a local Apache Kafka and PostgreSQL (started through ``scripts/kafka.sh`` and
``scripts/postgres.sh`` unless addresses are given), each service with its own database.
PIDs, logs and the ports land in the state directory (``var/stack/``); ``fjo down`` stops
exactly the process groups that ``fjo up`` recorded there, nothing found by name. Tests use
``kill_role`` and ``restart_role`` on one recorded process (a crash and its recovery).

Heavy imports happen inside the commands so that ``fjo version`` stays fast.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "db_app",
    "down",
    "down_stack",
    "kill_role",
    "register",
    "restart_role",
    "up",
    "up_stack",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICE_NAMES = ("ingest", "pseudonymise", "link", "access")
STATE_FILE = "stack.json"

db_app = typer.Typer(help="Each service's database schema (Alembic).", no_args_is_help=True)


# -------------------------------------------------------------------------------- db upgrade


def migrate_service(service: str, database_url: str | None = None) -> str:
    """Bring ``service``'s schema to its newest revision; return what was done.

    The service's own ``migrate(url)`` is used when it has one (``entrypoints`` or
    ``storage.migrate``): it knows its version table. Otherwise the scripts in
    ``services/<service>/migrations/`` are applied with the version table
    ``alembic_version_<service>``; a service without migrations has nothing to do.
    """
    from services.runtime.migrations import upgrade

    settings_cls = _settings_class(service)
    url = database_url or settings_cls().database_url
    for module_name in (f"services.{service}.entrypoints", f"services.{service}.storage.migrate"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue
            raise
        migrate = getattr(module, "migrate", None)
        if callable(migrate):
            migrate(url)
            return f"{service}: migrated with {module_name}.migrate"
    package = Path(importlib.import_module(f"services.{service}").__file__ or "").parent
    folder = package / "migrations"
    if not folder.is_dir():
        return f"{service}: no migrations"
    upgrade(url, folder, version_table=f"alembic_version_{service}")
    return f"{service}: migrated services/{service}/migrations"


def _settings_class(service: str) -> Any:
    from pydantic_settings import BaseSettings

    module = importlib.import_module(f"services.{service}.config")
    prefix = f"FJO_{service.upper()}_"
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value.model_config.get("env_prefix") == prefix
        ):
            return value
    raise LookupError(f"services.{service}.config has no settings class with prefix {prefix}")


@db_app.command("upgrade")
def db_upgrade(
    service: Annotated[str, typer.Argument(help="ingest, pseudonymise, link or access.")],
    database_url: Annotated[
        str | None, typer.Option(help="Override the service's configured database URL.")
    ] = None,
) -> None:
    """Apply a service's Alembic migrations to its database (idempotent; the k8s Job runs it)."""
    if service not in SERVICE_NAMES:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICE_NAMES)}")
    typer.echo(migrate_service(service, database_url))


# ------------------------------------------------------------------------------------- stack


@dataclass
class StackProcess:
    """One process ``fjo up`` started."""

    name: str  # e.g. "ingest-api"
    service: str
    role: str
    pid: int
    port: int
    log: str
    command: list[str]


@dataclass
class StackState:
    """What ``fjo up`` started, so that ``fjo down`` stops exactly that."""

    processes: list[StackProcess] = field(default_factory=list)
    kafka_bootstrap: str = ""
    postgres_url: str = ""
    databases: dict[str, str] = field(default_factory=dict)
    started_kafka: bool = False
    started_postgres: bool = False

    def save(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / STATE_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")
        ports = {p.name: p.port for p in self.processes}
        (state_dir / "ports.json").write_text(json.dumps(ports, indent=2, sort_keys=True) + "\n")
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


def stack_roles() -> list[tuple[str, str]]:
    """(service, role) pairs the platform runs: the same rule as the Kubernetes manifests,
    the roles each service's entrypoints offer (``create_app``: api, ``run_worker``: worker).
    """
    return [
        (service, role)
        for service in SERVICE_NAMES
        for role in ("api", "worker")
        if _has_entrypoint(service, role)
    ]


def _has_entrypoint(service: str, role: str) -> bool:
    module = importlib.import_module(f"services.{service}.entrypoints")
    return hasattr(module, "create_app" if role == "api" else "run_worker")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fjo_command() -> list[str]:
    script = Path(sys.executable).parent / "fjo"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from fjo.cli import main; main()"]


def _run_script(script: str, *args: str, env: dict[str, str]) -> None:
    subprocess.run([str(REPO_ROOT / "scripts" / script), *args], check=True, env=env)


def _ensure_databases(admin_url: str, prefix: str) -> dict[str, str]:
    """Create ``<prefix>_<service>`` on the server when missing; return each service's URL."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    urls: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            for service in SERVICE_NAMES:
                name = f"{prefix}_{service}"
                exists = conn.execute(
                    sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
                ).first()
                if not exists:
                    conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
                urls[service] = (
                    make_url(admin_url).set(database=name).render_as_string(hide_password=False)
                )
    finally:
        engine.dispose()
    return urls


def _service_env(
    service: str, *, database_url: str, bootstrap: str, state_dir: Path
) -> dict[str, str]:
    """The environment of one service's processes: dev settings pointing at local services."""
    fields = _settings_class(service).model_fields
    p = f"FJO_{service.upper()}_"
    env = {
        f"{p}ENVIRONMENT": "dev",
        f"{p}DATABASE_URL": database_url,
        f"{p}BUS__BACKEND": "kafka",
        f"{p}BUS__KAFKA_BOOTSTRAP": bootstrap,
        f"{p}TELEMETRY__LOG_JSON": "true",
    }
    if "migrate_on_start" in fields:
        env[f"{p}MIGRATE_ON_START"] = "false"  # `fjo up` migrated already, once
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
    return env


def _wait_ready(proc: subprocess.Popen[bytes], sp: StackProcess, deadline: float) -> str | None:
    """None once ``/readyz`` answers 200; else why not (process exited, or timed out)."""
    import httpx

    url = f"http://127.0.0.1:{sp.port}/readyz"
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"{sp.name} exited with {proc.returncode}; see {sp.log}"
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return None
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.5)
    return f"{sp.name} not ready at {url}: {last}; see {sp.log}"


def _stop_group(pid: int, grace_s: float = 15.0) -> None:
    """SIGTERM the process group led by ``pid`` (one ``fjo serve``), then SIGKILL if needed."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        _reap(pid)
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _reap(pid)


# Processes this interpreter started, kept referenced until reaped: a Popen dropped while its
# child still runs warns (ResourceWarning) when garbage-collected, e.g. in a test calling
# `up_stack` in-process.
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


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _children[pid]
        return
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _is_ours(sp: StackProcess) -> bool:
    """The PID still runs the command we started (PIDs get reused after a crash or reboot)."""
    try:
        cmdline = Path(f"/proc/{sp.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return all(part.encode() in cmdline for part in ("serve", sp.service, sp.role))


def _base_env() -> dict[str, str]:
    """This process's environment without its own FJO_ settings (each role gets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("FJO_")}


def _launch(
    state: StackState,
    state_dir: Path,
    service: str,
    role: str,
    *,
    extra_env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], StackProcess]:
    """Start one ``fjo serve <service> <role>`` in its own session; record it in ``state``."""
    fjo = _fjo_command()
    name = f"{service}-{role}"
    port = _free_port()
    if role == "api":
        command = [*fjo, "serve", service, "api", "--port", str(port)]
    else:
        command = [*fjo, "serve", service, "worker", "--probe-port", str(port)]
    env = (
        _base_env()
        | _service_env(
            service,
            database_url=state.databases[service],
            bootstrap=state.kafka_bootstrap,
            state_dir=state_dir,
        )
        | dict(extra_env or {})
    )
    log_path = state_dir / "logs" / f"{name}.log"
    proc = spawn(command, env=env, log_path=log_path)
    sp = StackProcess(name, service, role, proc.pid, port, str(log_path), command)
    state.processes = [p for p in state.processes if p.name != name] + [sp]
    state.save(state_dir)
    return proc, sp


def up_stack(
    state_dir: Path,
    *,
    kafka_bootstrap: str | None = None,
    postgres_url: str | None = None,
    db_prefix: str = "fjo_stack",
    ready_timeout_s: float = 120.0,
    echo: Any = print,
    roles: Sequence[tuple[str, str]] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> StackState:
    """Start the platform; return what was started (also written to ``state_dir``).

    ``roles`` limits it to some (service, role) pairs of ``stack_roles()`` (e.g. only the
    workers); ``extra_env`` is added to every process's environment (settings such as key
    files, which are not recorded in the state dir: pass them again to ``restart_role``).
    """
    wanted = stack_roles() if roles is None else list(roles)
    unknown = set(wanted) - set(stack_roles())
    if unknown:
        raise ValueError(f"not roles of the platform: {sorted(unknown)}")
    if (previous := StackState.load(state_dir)) and any(map(_is_ours, previous.processes)):
        raise RuntimeError(f"a stack is already running from {state_dir}; run `fjo down` first")
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "logs").mkdir(exist_ok=True)
    base_env = _base_env()
    state = StackState()
    try:
        if not kafka_bootstrap:
            _run_script("kafka.sh", "start", env=dict(os.environ))
            kafka_bootstrap = (REPO_ROOT / "var/kafka/bootstrap").read_text().strip()
            state.started_kafka = True
        if not postgres_url:
            _run_script("postgres.sh", "start", env=dict(os.environ))
            postgres_url = (REPO_ROOT / "var/postgres/url").read_text().strip()
            state.started_postgres = True
        state.kafka_bootstrap, state.postgres_url = kafka_bootstrap, postgres_url
        state.save(state_dir)

        state.databases = _ensure_databases(postgres_url, db_prefix)
        echo(f"databases: {', '.join(sorted(state.databases.values()))}")
        fjo = _fjo_command()
        subprocess.run(
            [*fjo, "topics", "create", "--bootstrap", kafka_bootstrap], check=True, env=base_env
        )
        for service in SERVICE_NAMES:
            echo(migrate_service(service, state.databases[service]))

        started = [
            _launch(state, state_dir, service, role, extra_env=extra_env)
            for service, role in wanted
        ]
        deadline = time.monotonic() + ready_timeout_s
        for proc, sp in started:
            problem = _wait_ready(proc, sp, deadline)
            if problem:
                raise RuntimeError(problem)
            echo(f"{sp.name}: ready on 127.0.0.1:{sp.port} (pid {sp.pid})")
        return state
    except BaseException:
        down_stack(state_dir, echo=echo)
        raise


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
    if not _is_ours(sp):
        raise RuntimeError(f"{name} (pid {sp.pid}) is not running")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sp.pid, sig)
    deadline = time.monotonic() + timeout_s
    while _is_ours(sp) and _alive_unreaped(sp.pid):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} (pid {sp.pid}) did not exit after signal {sig}")
        time.sleep(0.05)
    return sp.pid


def _alive_unreaped(pid: int) -> bool:
    """The pid exists and is not a zombie (reaping it if it is our child)."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in {"Z", "X"}


def restart_role(
    state_dir: Path,
    name: str,
    *,
    extra_env: Mapping[str, str] | None = None,
    ready_timeout_s: float = 120.0,
    echo: Any = print,
) -> StackProcess:
    """Start ``name`` again as ``up_stack`` did (stopping it first if it still runs), against
    the same Kafka and database; wait for ``/readyz``; return the new record."""
    state, sp = _recorded(state_dir, name)
    if _is_ours(sp):
        _stop_group(sp.pid)
    proc, new = _launch(state, state_dir, sp.service, sp.role, extra_env=extra_env)
    problem = _wait_ready(proc, new, time.monotonic() + ready_timeout_s)
    if problem:
        raise RuntimeError(problem)
    echo(f"{new.name}: restarted, ready on 127.0.0.1:{new.port} (pid {new.pid})")
    return new


def down_stack(state_dir: Path, *, stop_services: bool = True, echo: Any = print) -> int:
    """Stop what ``fjo up`` recorded in ``state_dir``; return how many processes were stopped."""
    state = StackState.load(state_dir)
    if state is None:
        echo(f"no stack recorded in {state_dir}")
        return 0
    stopped = 0
    for sp in reversed(state.processes):
        if _is_ours(sp):
            _stop_group(sp.pid)
            stopped += 1
            echo(f"{sp.name}: stopped (pid {sp.pid})")
        else:
            _reap(sp.pid)  # one that exited by itself (a crash) is a zombie until reaped
        (state_dir / "pids" / f"{sp.name}.pid").unlink(missing_ok=True)
    if stop_services and state.started_kafka:
        _run_script("kafka.sh", "stop", env=dict(os.environ))
    if stop_services and state.started_postgres:
        _run_script("postgres.sh", "stop", env=dict(os.environ))
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    (state_dir / "ports.json").unlink(missing_ok=True)
    return stopped


StateDir = Annotated[Path, typer.Option(help="PIDs, logs and ports.json of the stack.")]


def up(
    state_dir: StateDir = Path("var/stack"),
    kafka_bootstrap: Annotated[
        str | None, typer.Option(help="Use this Kafka instead of starting scripts/kafka.sh.")
    ] = None,
    postgres_url: Annotated[
        str | None,
        typer.Option(help="Admin URL of a PostgreSQL to use instead of scripts/postgres.sh."),
    ] = None,
    db_prefix: Annotated[
        str, typer.Option(help="Databases are named <prefix>_<service>.")
    ] = "fjo_stack",
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for /readyz.")] = 120.0,
) -> None:
    """Run every service role as its own process against local Kafka and PostgreSQL."""
    try:
        state = up_stack(
            state_dir.resolve(),
            kafka_bootstrap=kafka_bootstrap,
            postgres_url=postgres_url,
            db_prefix=db_prefix,
            ready_timeout_s=ready_timeout,
            echo=typer.echo,
        )
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        typer.echo(f"fjo up failed: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"up: {len(state.processes)} processes; ports in {state_dir / 'ports.json'}")


def down(
    state_dir: StateDir = Path("var/stack"),
    keep_services: Annotated[
        bool, typer.Option(help="Leave Kafka and PostgreSQL running even if `up` started them.")
    ] = False,
) -> None:
    """Stop the processes `fjo up` started (and the Kafka/PostgreSQL it started)."""
    down_stack(state_dir.resolve(), stop_services=not keep_services, echo=typer.echo)


def register(app: typer.Typer) -> None:
    """Add ``db``, ``up`` and ``down`` to the ``fjo`` command."""
    app.add_typer(db_app, name="db")
    app.command("up")(up)
    app.command("down")(down)
