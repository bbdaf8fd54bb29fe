"""The composition root of link: settings in, a ready service and worker out."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

from sqlalchemy import Engine

from contracts.services import Service
from services.link.config import LinkSettings
from services.link.domain import LinkageModel
from services.link.handlers import make_handlers
from services.link.service import LinkService
from services.runtime.bus.api import Bus
from services.runtime.db import make_session_factory
from services.runtime.delivery import Worker
from services.runtime.migrations import upgrade
from services.runtime.settings import read_secret_file
from services.runtime.worker_process import worker_config

__all__ = ["MIGRATIONS", "VERSION_TABLE", "build_service", "build_worker", "load_alf_key"]

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_link"

log = logging.getLogger("fjo.link")


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


def build_service(settings: LinkSettings, engine: Engine) -> LinkService:
    """Migrate the schema, load the model and the spine index from the link database."""
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
    model = LinkageModel.from_json(settings.model_file.read_text()) if settings.model_file else None
    service = LinkService(load_alf_key(settings), model, results_topic=settings.output_topic)
    with make_session_factory(engine)() as session:
        service.load(session)
    return service


def build_worker(settings: LinkSettings, bus: Bus, engine: Engine) -> Worker:
    """The worker on ``pseudonymise.linkage-keys.v1``; dead letters to link's DLQ."""
    service = build_service(settings, engine)
    producer = bus.producer()
    config = worker_config(
        Service.LINK,
        group_id=settings.worker_group,
        bus=settings.bus,
        topics=[settings.input_topic] if settings.input_topic else None,
    )
    return Worker(
        bus,
        config,
        make_session_factory(engine),
        batch_handlers=make_handlers(service, producer),
        on_idle=service.warm,
        producer=producer,
    )
