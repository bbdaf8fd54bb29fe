"""The composition root of ingest's API: settings -> engine -> bus producers -> routes.

Nothing is created at import time; ``create_app`` builds the app and its lifespan opens the
database, migrates it, connects the bus, and closes them all on shutdown.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from contracts.topics import topics_produced_by
from services.ingest.api import Ingest, install
from services.ingest.config import IngestSettings
from services.ingest.deliveries import DeliveryService
from services.ingest.domain.ratelimit import RateLimiter
from services.ingest.objections import ObjectionService
from services.ingest.producers import ProducerPool
from services.ingest.storage.models import VERSION_TABLE
from services.runtime.app import create_app as create_base_app
from services.runtime.auth import (
    TokenVerifier,
    bearer_principal,
    configured_verifier,
)
from services.runtime.bus.api import Bus
from services.runtime.bus.factory import bus_from_settings
from services.runtime.db import make_engine, make_session_factory
from services.runtime.migrations import upgrade
from services.runtime.topics import topic_specs

__all__ = ["MIGRATIONS", "create_app", "migrate"]

log = logging.getLogger("fjo.ingest")

MIGRATIONS = Path(__file__).parent / "migrations"

_DESCRIPTION = """\
The partners' door of the fjo trusted research environment.

Partner agencies (Cafcass England, Cafcass Cymru, the spine's owner) push record
deliveries. Every record is validated against its contract; valid ones go on to
pseudonymisation, invalid ones to quarantine, and the partner gets a receipt that
reconciles: `received = accepted + rejected + duplicates`.

Authenticate with a bearer token carrying the `partner` role and your agency in the
`fjo_source` claim. Errors are RFC 9457 problem documents (`application/problem+json`).
"""


def migrate(engine: Engine | str) -> None:
    """Bring ingest's schema to the latest migration (idempotent)."""
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)


@dataclass
class _Resources:
    engine: Engine
    sessions: sessionmaker[Session]
    bus: Bus | None
    pool: ProducerPool
    service: DeliveryService
    objections: ObjectionService
    verifier: TokenVerifier


def _clean_spool(directory: Path, older_than_s: float) -> None:
    # Bodies left by a crashed process: identifiable, and never to be processed.
    if not directory.is_dir():
        return
    cutoff = time.time() - older_than_s
    for path in directory.glob("delivery-*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            continue


def create_app(
    settings: IngestSettings | None = None,
    *,
    bus: Bus | None = None,
    verifier: TokenVerifier | None = None,
) -> FastAPI:
    """The ingest HTTP API. ``bus``/``verifier`` override the configured ones (tests, demo)."""
    settings = settings or IngestSettings()
    state: dict[str, _Resources] = {}

    def resources() -> _Resources:
        try:
            return state["r"]
        except KeyError:
            raise RuntimeError("the ingest app is not started (lifespan not run)") from None

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        _ensure_sqlite_directory(settings.database_url)
        if bus is None and settings.bus.backend == "embedded":
            _ensure_sqlite_directory(settings.bus.embedded_url)
        engine = make_engine(settings.database_url)
        owned_bus: Bus | None = None
        pool: ProducerPool | None = None
        try:
            if settings.migrate_on_start:
                migrate(engine)
            the_bus = bus
            if the_bus is None:
                the_bus = owned_bus = bus_from_settings(settings.bus)
            if settings.bus.create_topics:
                the_bus.create_topics(topic_specs(topics_produced_by("ingest")))
            pool = ProducerPool(the_bus.producer, size=settings.max_concurrent_deliveries)
            sessions = make_session_factory(engine)
            state["r"] = _Resources(
                engine=engine,
                sessions=sessions,
                bus=the_bus,
                pool=pool,
                service=DeliveryService(
                    sessions,
                    pool,
                    batch_size=settings.publish_batch_size,
                    max_receipt_errors=settings.limits.max_receipt_errors,
                    stale_after_s=settings.stale_after_s,
                ),
                objections=ObjectionService(sessions, pool),
                verifier=verifier or configured_verifier(settings),
            )
            _clean_spool(settings.spool_dir, settings.stale_after_s)
            log.info("ingest started", extra={"bus": the_bus.name})
            yield
        finally:
            state.pop("r", None)
            if pool is not None:
                pool.close()
            if owned_bus is not None:
                owned_bus.close()
            engine.dispose()

    def check_database() -> None:
        with resources().engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def check_bus() -> None:
        the_bus = resources().bus
        if the_bus is None:
            raise RuntimeError("no bus")
        _bus_reachable(the_bus, settings)

    limiter = RateLimiter(rate_per_s=settings.limits.rate_per_s, burst=settings.limits.rate_burst)
    app = create_base_app(
        title="fjo ingest",
        version="1.0.0",
        description=_DESCRIPTION,
        readiness={"database": check_database, "bus": check_bus},
        lifespan=lifespan,
        docs_assets=settings.docs_assets_dir,
    )
    install(
        app,
        Ingest(
            settings=settings,
            service=lambda: resources().service,
            principal=bearer_principal(lambda: resources().verifier),
            limiter=limiter,
            objections=lambda: resources().objections,
        ),
    )
    return app


def _ensure_sqlite_directory(url: str) -> None:
    # The embedded default keeps its databases under var/; create the folder on first start.
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def _bus_reachable(bus: Bus, settings: IngestSettings) -> None:
    """Raise unless the bus answers: the embedded log's database, or a Kafka bootstrap server."""
    topic_meta = getattr(bus, "topic_meta", None)
    if callable(topic_meta):
        if topic_meta(topics_produced_by("ingest")[0].name) is None:
            raise RuntimeError("ingest's topics are missing")
        return
    errors: list[str] = []
    for server in settings.bus.kafka_bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2.0):
                return
        except OSError as exc:
            errors.append(type(exc).__name__)
    raise ConnectionError("no Kafka bootstrap server answers: " + ", ".join(errors))
