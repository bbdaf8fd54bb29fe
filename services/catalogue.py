"""Every service of the platform in one explicit list: its settings class, the roles it runs as
(an HTTP app factory, a worker) and how its database schema is migrated.

``fjo serve``, ``fjo db upgrade``, the stack runners (``fjo.stack``) and the deploy generator
read this list instead of finding a service's parts by module and attribute names. An entry
imports its service only when asked for (``entry(service)``), so ``fjo version`` loads none.

A new service adds one ``_<name>()`` function below and one line to ``_ENTRIES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from contracts.services import SERVICES, Service

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from services.runtime.bus.api import Bus
    from services.runtime.delivery import Worker
    from services.runtime.settings import ServiceSettings
    from services.runtime.worker_process import WorkerBuilder

__all__ = ["API", "PORTAL", "WORKER", "ServiceEntry", "entry", "roles"]

API = "api"
WORKER = "worker"
PORTAL = "portal"
"""The web portal: an ``api`` role (its pages) that is no bus participant, so it has no
``contracts.services.Service`` name and is not among ``roles()`` (the pipeline's)."""


@dataclass(frozen=True)
class ServiceEntry:
    """What the platform's tools need to know about one service."""

    service: Service | str
    settings: type[ServiceSettings]
    """Its pydantic-settings class (``FJO_<SERVICE>_...``)."""
    migrate: Callable[[Engine | str], None]
    """Brings its database schema to the newest revision (idempotent)."""
    create_app: Callable[[], Any] | None = None
    """The ``api`` role: a FastAPI app from the settings in the environment."""
    build_worker: WorkerBuilder | None = None
    """The ``worker`` role: its ``Worker`` from settings and bus, for
    ``services.runtime.worker_process.run_worker``."""
    retention: Callable[[Any], Mapping[str, int]] | None = None
    """Deletes its own tables' rows past their periods (from its settings); the rows deleted
    per table. ``fjo retention run --service <name>``, a CronJob per service. Access's
    retention is its own job (``fjo access retention run``: workspaces, with certificates)."""

    @property
    def roles(self) -> tuple[str, ...]:
        """``api`` and/or ``worker``, in that order."""
        return tuple(
            role
            for role, factory in ((API, self.create_app), (WORKER, self.build_worker))
            if factory is not None
        )


def _engine(settings: ServiceSettings, resources: ExitStack) -> Engine:
    """The service's database engine, disposed of when the worker's resources close."""
    from services.runtime.db import make_engine

    engine = make_engine(settings.database_url)
    resources.callback(engine.dispose)
    return engine


def _ingest() -> ServiceEntry:
    from services.ingest.config import IngestSettings
    from services.ingest.entrypoints import create_app, migrate
    from services.ingest.retention import run_retention

    return ServiceEntry(
        Service.INGEST, IngestSettings, migrate, create_app=create_app, retention=run_retention
    )


def _pseudonymise() -> ServiceEntry:
    from services.pseudonymise.bootstrap import MIGRATIONS, VERSION_TABLE, build_worker
    from services.pseudonymise.config import PseudonymiseSettings
    from services.pseudonymise.retention import run_retention
    from services.runtime.migrations import upgrade

    def worker(settings: PseudonymiseSettings, bus: Bus, resources: ExitStack) -> Worker:
        return build_worker(settings, bus, _engine(settings, resources))

    migrate = partial(upgrade, script_location=MIGRATIONS, version_table=VERSION_TABLE)
    return ServiceEntry(
        Service.PSEUDONYMISE,
        PseudonymiseSettings,
        migrate,
        build_worker=worker,
        retention=run_retention,
    )


def _link() -> ServiceEntry:
    from services.link.bootstrap import MIGRATIONS, VERSION_TABLE, build_worker
    from services.link.config import LinkSettings
    from services.link.entrypoints import create_app
    from services.link.retention import run_retention
    from services.runtime.migrations import upgrade

    def worker(settings: LinkSettings, bus: Bus, resources: ExitStack) -> Worker:
        return build_worker(settings, bus, _engine(settings, resources))

    migrate = partial(upgrade, script_location=MIGRATIONS, version_table=VERSION_TABLE)
    return ServiceEntry(
        Service.LINK,
        LinkSettings,
        migrate,
        create_app=create_app,
        build_worker=worker,
        retention=run_retention,
    )


def _access() -> ServiceEntry:
    from services.access.bootstrap import build_context, build_worker
    from services.access.config import AccessSettings
    from services.access.entrypoints import create_app
    from services.access.storage.migrate import migrate

    def worker(settings: AccessSettings, bus: Bus, resources: ExitStack) -> Worker:
        ctx = build_context(settings)
        resources.callback(ctx.dispose)
        ctx.audit.open(ctx.sessions)  # the trail's genesis entry, if it has none yet
        return build_worker(settings, bus, ctx)

    return ServiceEntry(
        Service.ACCESS, AccessSettings, migrate, create_app=create_app, build_worker=worker
    )


def _portal() -> ServiceEntry:
    from services.portal.config import PortalSettings
    from services.portal.entrypoints import create_app, migrate

    return ServiceEntry(PORTAL, PortalSettings, migrate, create_app=create_app)


_ENTRIES: Mapping[Service | str, Callable[[], ServiceEntry]] = {
    Service.INGEST: _ingest,
    Service.PSEUDONYMISE: _pseudonymise,
    Service.LINK: _link,
    Service.ACCESS: _access,
    PORTAL: _portal,
}


def entry(service: Service | str) -> ServiceEntry:
    """The catalogue entry of ``service`` (its modules imported on first use)."""
    if service == PORTAL:
        return _load(PORTAL)
    try:
        known = Service(service)
    except ValueError:
        names = ", ".join([*(s.value for s in SERVICES), PORTAL])
        raise LookupError(f"unknown service {service!r}; one of {names}") from None
    return _load(known)


@cache
def _load(service: Service | str) -> ServiceEntry:
    return _ENTRIES[service]()


def roles() -> list[tuple[str, str]]:
    """Every (service name, role) the platform runs, in the registry's service order."""
    return [(service.value, role) for service in SERVICES for role in entry(service).roles]
