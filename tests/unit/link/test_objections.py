"""Objections in link: a record's link withdrawn by a superseding OBJECTED result; a spine
person excluded through the spine log, the records linked to them withdrawn (not re-linked
to someone else), and a person-level event by ALF; an opt-out changes no link."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from contracts.events import (
    LinkReason,
    LinkResultPublished,
    LinkStatus,
    PersonObjected,
    RecordObjected,
)
from services.link import spine_log, storage
from services.link.service import LinkService
from tests.unit.link.fakes import fake_token, keys, linkage_event, population


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    storage.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def _published(messages):
    return [parse_data(Envelope.from_bytes(m.value)) for m in messages]


def _objected(rid: str, kind: str, record_type: str) -> RecordObjected:
    return RecordObjected(
        receipt_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{rid}/{kind}"),
        kind=kind,
        subject="person" if record_type == "spine-person" else "record",
        record_token=fake_token(rid),
        record_type=record_type,
        source="wds" if record_type == "spine-person" else "cafcass-cymru",
    )


SERYS = ("seren", "pugh", "2012-06-07", "F", "SA1 2BC")


def _world(session, twin: bool = False) -> tuple[LinkService, LinkResultPublished]:
    """A spine of 90 and Seren (and, with ``twin``, someone Seren's record would link to
    next), and Seren's child record linked to her."""
    svc = LinkService(b"k" * 32)
    for rec in population(90):
        svc.on_linkage_keys(session, linkage_event(rec, "spine-person"))
    svc.on_linkage_keys(session, linkage_event(keys("S1", *SERYS, "4 maes", ""), "spine-person"))
    if twin:
        svc.on_linkage_keys(
            session, linkage_event(keys("S2", *SERYS[:4], "SA1 2BD", "5 maes", ""), "spine-person")
        )
    svc.sync(session)
    (linked,) = _published(svc.on_linkage_keys(session, linkage_event(keys("C1", *SERYS))))
    assert linked.alf is not None and linked.status in {
        LinkStatus.EXACT_FIVE_FIELDS,
        LinkStatus.PROBABILISTIC,
    }
    return svc, linked


def test_a_records_objection_publishes_a_superseding_objected_result_once(session) -> None:
    svc, linked = _world(session)

    out = _published(svc.on_record_objected(session, _objected("C1", "objection", "child")))
    again = svc.on_record_objected(session, _objected("C1", "objection", "child"))
    resent = svc.on_linkage_keys(session, linkage_event(keys("C1", *SERYS), version=2))

    [withdrawn] = out
    assert withdrawn.status is LinkStatus.OBJECTED and withdrawn.alf is None
    assert withdrawn.reason is LinkReason.OBJECTION
    assert withdrawn.supersedes_sequence == linked.sequence
    assert again == []
    assert resent == []  # a later version of an objected record is not linked again
    assert svc.sync(session) == []


def test_an_objection_about_an_unknown_record_publishes_nothing(session) -> None:
    svc, _ = _world(session)
    assert svc.on_record_objected(session, _objected("C-NEVER", "erasure", "child")) == []


def test_a_spine_persons_objection_excludes_them_through_the_log_and_withdraws_their_links(
    session,
) -> None:
    svc, linked = _world(session, twin=True)

    out = _published(svc.on_record_objected(session, _objected("S1", "objection", "spine-person")))
    relinked = _published(svc.sync(session))

    [person] = out
    assert isinstance(person, PersonObjected) and person.alf == linked.alf
    kinds = session.execute(select(storage.spine_log.c.kind)).scalars().all()
    assert kinds[-1] == spine_log.EXCLUDE
    assert fake_token("S1") not in svc.index
    # Seren's record is withdrawn, not linked to the next best person on the spine.
    assert [(e.record_token, e.status, e.alf, e.reason) for e in relinked] == [
        (linked.record_token, LinkStatus.OBJECTED, None, LinkReason.OBJECTION)
    ]
    # A new version of the excluded person does not bring them back.
    svc.on_linkage_keys(
        session, linkage_event(keys("S1", *SERYS, "4 maes", ""), "spine-person", version=2)
    )
    assert svc.sync(session) == []
    assert fake_token("S1") not in svc.index


def test_a_new_replica_reading_the_log_excludes_the_person_too(session) -> None:
    svc, _ = _world(session)
    svc.on_record_objected(session, _objected("S1", "erasure", "spine-person"))
    svc.sync(session)

    other = LinkService(b"k" * 32)
    other.start(session)

    assert fake_token("S1") not in other.index
    assert other.view.excluded == svc.view.excluded
    assert other.view.position == svc.view.position
    assert other.sync(session) == []  # the withdrawn record stays withdrawn


def test_an_opt_out_keeps_the_person_linked_and_names_them_by_alf(session) -> None:
    svc, linked = _world(session)

    out = _published(svc.on_record_objected(session, _objected("S1", "opt-out", "spine-person")))

    assert [(type(e), e.alf) for e in out] == [(PersonObjected, linked.alf)]
    assert fake_token("S1") in svc.index
    assert svc.sync(session) == []
