"""The composition root of link: settings in, a ready service and worker out."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Engine

from contracts.services import Service
from services.link.config import LinkSettings
from services.link.domain import LinkageModel
from services.link.handlers import make_handlers
from services.link.service import LinkService
from services.link.snapshots import Snapshots
from services.runtime.bus.api import Bus, Message
from services.runtime.db import make_session_factory, transaction
from services.runtime.delivery import Worker
from services.runtime.migrations import upgrade
from services.runtime.settings import read_secret_file
from services.runtime.worker_process import worker_config

__all__ = ["MIGRATIONS", "VERSION_TABLE", "build_service", "build_worker", "load_alf_key"]

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_link"

log = logging.getLogger("fjo.link")

# A linkage-keys envelope of a spine person carries this (tokens are base64url: no quotes).
_SPINE_MARK = b'"spine-person"'


def load_alf_key(settings: LinkSettings) -> bytes:
    """The ALF key from its secret file; in dev, one generated on first use."""
    path = settings.alf_key_file
    if path is None:
        path = settings.dev_key_dir / "alf.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_hex(32))
            log.warning("generated a dev ALF key; never use it outside dev")
    key = read_secret_file(path)
    if len(key) < 32:
        raise ValueError("the ALF key must be at least 32 bytes")
    return key


def build_service(settings: LinkSettings, engine: Engine, *, start: bool = True) -> LinkService:
    """Migrate the schema and build the service; with ``start``, bring its spine view up
    (snapshot, then the spine log). The review API needs no view and passes False."""
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
    model = LinkageModel.from_json(settings.model_file.read_text()) if settings.model_file else None
    service = LinkService(
        load_alf_key(settings),
        model,
        results_topic=settings.output_topic,
        input_topic=settings.input_topic,
        snapshots=Snapshots(settings.snapshot_dir) if settings.snapshot_dir else None,
    )
    if start:
        with transaction(make_session_factory(engine)) as session:
            service.start(session, owns_everything=False)
    return service


def build_worker(settings: LinkSettings, bus: Bus, engine: Engine) -> Worker:
    """The worker on the linkage-keys topic; dead letters to link's DLQ.

    Before each batch (and when idle) the service catches its spine view up, claims the
    partitions the consumer holds and re-checks their records (``LinkService.prepare``).
    """
    service = build_service(settings, engine)
    producer = bus.producer()
    sessions = make_session_factory(engine)
    topic = settings.input_topic
    worker: Worker

    def assignment() -> set[int]:
        return {p for name, p in worker.consumer.assignment() if name == topic}

    def before_batch(messages: Sequence[Message]) -> None:
        ahead = any(_SPINE_MARK not in m.value for m in messages)
        service.prepare(sessions, producer, assignment(), decisions_ahead=ahead)

    def idle() -> None:
        service.prepare(sessions, producer, assignment(), decisions_ahead=False)
        service.warm()
        service.snapshot_if_due()

    config = worker_config(
        Service.LINK,
        group_id=settings.worker_group,
        bus=settings.bus,
        topics=[topic] if topic else None,
    )
    worker = Worker(
        bus,
        config,
        sessions,
        batch_handlers=make_handlers(service, producer),
        on_idle=idle,
        before_batch=before_batch,
        after_db_commit=lambda _settled: service.run_committed(),
        producer=producer,
    )
    return worker
