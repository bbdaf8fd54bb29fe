"""What the review API's tests share: settings on SQLite, a bus with link's results topic, and
a review queue with one record waiting (two spine twins the record matches equally well)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkResultPublished
from contracts.topics import LINK_RESULTS
from services.link import storage
from services.link.bootstrap import build_service
from services.link.config import LinkSettings
from services.runtime.bus.embedded import EmbeddedBus
from services.runtime.db import make_engine, make_session_factory, transaction
from services.runtime.topics import topic_specs
from tests.unit.link.fakes import fake_token, keys, linkage_event, population

AUDIENCE = "fjo-link"
ISSUER = "https://dev.fjo.invalid"
REVIEWER_ROLE = "link-reviewer"


def settings_for(tmp: Path) -> LinkSettings:
    return LinkSettings(
        environment="dev",
        database_url=f"sqlite+pysqlite:///{tmp / 'link.db'}",
        dev_key_dir=tmp / "keys",
    )


def results_bus(tmp: Path) -> EmbeddedBus:
    """An embedded bus with link's results topic, as ``fjo up`` creates it."""
    bus = EmbeddedBus(f"sqlite+pysqlite:///{tmp / 'bus.db'}")
    bus.create_topics(topic_specs([LINK_RESULTS]))
    return bus


def queue_a_review(settings: LinkSettings) -> str:
    """Migrate the link database and link a record that waits for review; its token."""
    engine = make_engine(settings.database_url)
    try:
        service = build_service(settings, engine)
        twin = ("carys", "pugh", "2020-01-05", "F", "SA1 2BC", "4 maes", "")
        with transaction(make_session_factory(engine)) as session:
            for rec in population(90):
                service.on_linkage_keys(session, linkage_event(rec, "spine-person"))
            for spine_id in ("S1", "S2"):
                service.on_linkage_keys(
                    session, linkage_event(keys(spine_id, *twin), "spine-person")
                )
            service.sync(session)  # the worker's step between batches: apply the spine log
            service.on_linkage_keys(session, linkage_event(keys("C1", *twin[:5])))
            queued, _ = service.open_reviews(session)
    finally:
        engine.dispose()
    assert [item["record_token"] for item in queued] == [fake_token("C1")]
    return fake_token("C1")


def audit_rows(settings: LinkSettings) -> list[tuple[str, str, str]]:
    """``link_audit`` as (action, record token, detail JSON), oldest first."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(
                    storage.audit.c.action, storage.audit.c.record_token, storage.audit.c.detail
                ).order_by(storage.audit.c.id)
            ).all()
    finally:
        engine.dispose()
    return [tuple(r) for r in rows]


def published_results(bus: EmbeddedBus) -> list[LinkResultPublished]:
    """Every link result on the bus's results topic, in offset order per partition."""
    consumer = bus.consumer("review-test", [LINK_RESULTS.name])
    try:
        out = []
        while batch := consumer.poll(max_records=500, timeout_s=0.5):
            out.extend(parse_data(Envelope.from_bytes(m.value)) for m in batch)
        return out
    finally:
        consumer.close()
