"""LinkService against SQLite: spine events build the index, incoming events get results."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkageKeysPublished, LinkReason, LinkStatus
from services.link import storage
from services.link.service import LinkService
from tests.unit.link.fakes import linkage_event, population


def _event(rec, kind: str = "child", version: int = 1) -> LinkageKeysPublished:
    return linkage_event(rec, kind, version)


@pytest.fixture
def session():
    engine = create_engine("sqlite://")
    storage.metadata.create_all(engine)
    with Session(engine) as s:
        yield s


def _published(messages):
    return [parse_data(Envelope.from_bytes(m.value)) for m in messages]


def test_a_spine_person_then_their_record_publishes_one_result_with_an_alf(session):
    from tests.unit.link.fakes import keys

    svc = LinkService(b"k" * 32)
    for rec in population(90):
        assert svc.on_linkage_keys(session, _event(rec, "spine-person")) == []
    person = keys("S1", "seren", "pugh", "2012-06-07", "F", "SA1 2BC", "4 maes", "")
    svc.on_linkage_keys(session, _event(person, "spine-person"))
    assert svc.sync(session) == []  # the spine log applied, u fitted: nothing to re-link
    assert len(svc.index) == 91
    out = _published(
        svc.on_linkage_keys(
            session, _event(keys("C1", "seren", "pugh", "2012-06-07", "F", "SA1 2BC"))
        )
    )
    assert len(out) == 1
    assert out[0].status is LinkStatus.EXACT_FIVE_FIELDS
    assert out[0].alf is not None and out[0].sequence == 1
    again = svc.on_linkage_keys(
        session, _event(keys("C1", "seren", "pugh", "2012-06-07", "F", "SA1 2BC"))
    )
    assert again == []  # same input, same result: nothing new to publish


def test_a_spine_change_relinks_and_publishes_a_superseding_result(session):
    from tests.unit.link.fakes import keys

    svc = LinkService(b"k" * 32)
    for rec in population(90):
        svc.on_linkage_keys(session, _event(rec, "spine-person"))
    svc.sync(session)
    first = _published(
        svc.on_linkage_keys(
            session, _event(keys("C1", "aled", "bevan", "2001-03-04", "M", "LL57 1AB"))
        )
    )
    assert first[0].alf is None
    person = keys("S1", "aled", "bevan", "2001-03-04", "M", "LL57 1AB", "3 ffordd", "")
    assert svc.on_linkage_keys(session, _event(person, "spine-person")) == []
    out = _published(svc.sync(session))  # the owner re-links once its view has the change
    assert [(e.sequence, e.supersedes_sequence, e.reason) for e in out] == [
        (2, 1, LinkReason.SPINE_CHANGED)
    ]
    assert out[0].alf is not None


def test_a_reviewer_can_accept_a_queued_link_and_reverse_it_with_an_audit_trail(session):
    from tests.unit.link.fakes import keys

    svc = LinkService(b"k" * 32)
    for rec in population(90):
        svc.on_linkage_keys(session, _event(rec, "spine-person"))
    svc.on_linkage_keys(
        session,
        _event(
            keys("S1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC", "4 maes", ""), "spine-person"
        ),
    )
    svc.on_linkage_keys(
        session,
        _event(
            keys("S2", "carys", "pugh", "2020-01-05", "F", "SA1 2BC", "4 maes", ""), "spine-person"
        ),
    )
    svc.sync(session)
    out = _published(
        svc.on_linkage_keys(
            session, _event(keys("C1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC"))
        )
    )
    assert out[-1].status is LinkStatus.REVIEW
    token = out[-1].record_token
    assert [r["record_token"] for r in svc.open_reviews(session)[0]] == [token]
    accepted = _published(svc.decide(session, token, accept=True, reviewer="rev-1"))
    assert accepted[0].status is LinkStatus.CLERICAL_ACCEPTED and accepted[0].alf
    reversed_ = _published(svc.decide(session, token, accept=False, reviewer="rev-2"))
    assert reversed_[0].alf is None and reversed_[0].supersedes_sequence == accepted[0].sequence
    actions = session.execute(select(storage.audit.c.action)).scalars().all()
    assert actions == ["relinked", "review-accepted", "relinked", "review-rejected"]


def _tables(session) -> dict[str, list[tuple]]:
    out = {}
    for table in (storage.incoming_keys, storage.results, storage.review_queue, storage.audit):
        drop = {"updated_at", "created_at", "decided_at", "at", "id"}
        cols = [c for c in table.c if c.name not in drop]
        out[table.name] = sorted(tuple(r) for r in session.execute(select(*cols)))
    return out


def test_a_run_sharing_its_rows_writes_and_publishes_what_one_at_a_time_does():
    """The worker's batch path (one LinkRows for a run, one flush) must equal one record at
    a time, including a record twice in the run and spine people arriving mid-run."""
    from services.link.rows import LinkRows
    from tests.unit.link.fakes import keys

    spine = [_event(r, "spine-person") for r in population(90)]
    run = [
        _event(keys("C1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC")),
        _event(keys("C2", "aled", "bevan", "2001-03-04", "M", "LL57 1AB")),
        _event(
            keys("S1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC", "4 maes", ""), "spine-person"
        ),
        _event(keys("C1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC"), version=2),
        _event(
            keys("S2", "carys", "pugh", "2020-01-05", "F", "SA1 2BC", "4 maes", ""), "spine-person"
        ),
        _event(
            keys("S3", "aled", "bevan", "2001-03-04", "M", "LL57 1AB", "3 ffordd", ""),
            "spine-person",
        ),
        _event(keys("C3", "aled", "bevan", "2001-03-04", "M", "LL57 1AB")),
    ]
    seen: dict[str, tuple[dict, list]] = {}
    for mode in ("one at a time", "one run"):
        engine = create_engine("sqlite://")
        storage.metadata.create_all(engine)
        with Session(engine) as s:
            svc = LinkService(b"k" * 32)
            for event in spine:
                svc.on_linkage_keys(s, event)
            svc.sync(s)
            if mode == "one run":
                rows = LinkRows(s)
                rows.prefetch(e.record_token for e in run)
                out = [m for e in run for m in svc.on_linkage_keys(s, e, rows)]
                rows.flush()
            else:
                out = [m for e in run for m in svc.on_linkage_keys(s, e)]
            out += svc.sync(s)  # the spine people of the run re-link what they touch
            published = [
                (e.record_token, e.sequence, e.status, e.alf, e.reason) for e in _published(out)
            ]
            seen[mode] = (_tables(s), published)
    assert seen["one run"] == seen["one at a time"]
    tables, published = seen["one run"]
    assert len(tables["link_results"]) == 3 and published  # the run did link something
    assert any(reason is LinkReason.SPINE_CHANGED for *_, reason in published)


def test_a_review_api_process_started_before_the_record_publishes_its_stored_type(session):
    """The API's LinkService loaded the database before the record arrived: the decision
    takes the record type and model version from the stored rows, not from that process."""
    from tests.unit.link.fakes import keys

    api = LinkService(b"k" * 32)  # started before anything arrived; it holds no spine view
    worker = LinkService(b"k" * 32)
    for rec in population(90):
        worker.on_linkage_keys(session, _event(rec, "spine-person"))
    for sid in ("S1", "S2"):
        worker.on_linkage_keys(
            session,
            _event(
                keys(sid, "carys", "pugh", "1990-01-05", "F", "SA1 2BC", "4 maes", ""),
                "spine-person",
            ),
        )
    worker.sync(session)
    queued = _published(
        worker.on_linkage_keys(
            session,
            _event(keys("A1", "carys", "pugh", "1990-01-05", "F", "SA1 2BC"), "adult-party"),
        )
    )[-1]
    assert queued.status is LinkStatus.REVIEW

    decided = _published(api.decide(session, queued.record_token, accept=True, reviewer="rev"))

    assert decided[0].record_type.value == "adult-party"
    assert decided[0].model_version == queued.model_version
    stored = session.execute(select(storage.results.c.record_type)).scalars().all()
    assert stored == ["adult-party"]


def test_an_idle_warm_up_never_changes_a_decision():
    """warm() fits the model early, for the spine position it is at; a record that meets the
    spine at another position refits, so what a record gets does not depend on when the
    worker was idle."""
    from tests.unit.link.fakes import keys

    spine = [_event(r, "spine-person") for r in population(120)]
    record = _event(keys("C1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC"))
    published = {}
    for mode in ("lazy", "warmed mid-load", "warmed at the end"):
        engine = create_engine("sqlite://")
        storage.metadata.create_all(engine)
        with Session(engine) as s:
            svc = LinkService(b"k" * 32)
            for i, event in enumerate(spine):
                svc.on_linkage_keys(s, event)
                if mode == "warmed mid-load" and i in (40, 110):  # idle mid-load
                    svc.catch_up(s)
                    svc.warm()
            if mode == "warmed at the end":
                svc.catch_up(s)
                svc.warm()
            svc.sync(s)
            out = _published(svc.on_linkage_keys(s, record))
            published[mode] = [(e.model_version, e.match_probability, e.status) for e in out]
    assert published["warmed mid-load"] == published["lazy"]
    assert published["warmed at the end"] == published["lazy"]
    assert published["lazy"][0][0].endswith("-u120")  # fitted to the whole spine


def test_a_queued_pair_carries_its_evidence_which_adds_up_to_its_probability(session):
    from tests.unit.link.fakes import keys

    svc = LinkService(b"k" * 32)
    for rec in population(90):
        svc.on_linkage_keys(session, _event(rec, "spine-person"))
    for sid in ("S1", "S2"):  # twins alike: the record must go to review
        svc.on_linkage_keys(
            session,
            _event(
                keys(sid, "carys", "pugh", "2020-01-05", "F", "SA1 2BC", "4 maes", ""),
                "spine-person",
            ),
        )
    svc.sync(session)
    out = _published(
        svc.on_linkage_keys(
            session, _event(keys("C1", "carys", "pugh", "2020-01-05", "F", "SA1 2BC"))
        )
    )
    assert out[-1].status is LinkStatus.REVIEW
    [item], _ = svc.open_reviews(session)
    evidence = item["evidence"]
    names = [c["comparison"] for c in evidence["comparisons"]]
    assert names == [c.name for c in svc.base_model.comparisons]
    assert {c["level"] for c in evidence["comparisons"]} - {"else", "null (not comparable)"}
    total = evidence["prior"] + sum(c["weight"] for c in evidence["comparisons"])
    total += evidence["guard_cap"] or 0.0
    assert abs(total - evidence["log2_odds"]) < 0.01
    # Its twin takes its share: the pair alone scores higher than the record's probability.
    assert evidence["competition"]["candidates"] >= 2
    assert evidence["competition"]["weight"] < 0
    total += evidence["competition"]["weight"]
    assert abs(total - evidence["record_log2_odds"]) < 0.01
    assert abs(evidence["probability"] - item["match_probability"]) < 1e-4
    # Nothing in it names the record or the person: levels, names and numbers only.
    assert "pugh" not in str(evidence) and "carys" not in str(evidence)


def test_each_comparisons_weight_adds_up_to_the_pairs_weight():
    from services.link.domain import SpineIndex, default_model
    from services.link.domain.scoring import CompiledModel
    from tests.unit.link.fakes import keys

    index = SpineIndex(default_model())
    people = population(60)
    for rec in people:
        index.add(rec)
    compiled = CompiledModel(index.model, index.schema)
    compiled.set_term_frequencies(index.tf_counts, len(index))
    probe = index.schema.compact(
        keys("C9", "seren", "pugh", "2012-06-07", "F", "SA1 2BC"), index.interner, grow=False
    )
    for b in index.records:
        vec = compiled.vector(probe, b)
        parts = compiled.comparison_weights(probe, b, vec)
        assert abs(sum(parts) - compiled.weight_of(probe, b, vec)) < 1e-9


def _rekeyed(rec, session_kind: str = "child"):
    """``rec`` as pseudonymise re-encodes it under key version 2: same record token, every
    exact token another (unrelated) value."""
    from services.link.domain import EncodedRecord

    def again(value):
        return f"v2|{value}" if isinstance(value, str) else tuple(f"v2|{v}" for v in value)

    tokens = {k: again(v) for k, v in rec.tokens.items()}
    event = _event(EncodedRecord(rec.record_id, tokens, rec.blooms, rec.flags), session_kind)
    return event.model_copy(update={"key_version": 2})


def test_a_rotation_replaces_keys_and_keeps_every_result_that_did_not_change(session):
    from tests.unit.link.fakes import keys

    svc = LinkService(b"k" * 32)
    spine = [*population(90), keys("S1", "seren", "pugh", "2012-06-07", "F", "SA1 2BC", "4 maes")]
    for rec in spine:
        svc.on_linkage_keys(session, _event(rec, "spine-person"))
    svc.sync(session)
    child = keys("C1", "seren", "pugh", "2012-06-07", "F", "SA1 2BC")
    (first,) = _published(svc.on_linkage_keys(session, _event(child)))
    assert first.alf is not None

    # The record re-encoded before the spine: its keys are replaced, its decision stands.
    assert svc.on_linkage_keys(session, _rekeyed(child)) == []
    assert svc.on_linkage_keys(session, _event(child)) == []  # a stale v1 copy changes nothing
    k = storage.incoming_keys.c
    assert session.execute(select(k.key_version)).scalars().all() == [2]

    # The spine re-encoded: the record is decided again against it, to the same result.
    for rec in spine:
        assert svc.on_linkage_keys(session, _rekeyed(rec, "spine-person")) == []
    assert svc.on_linkage_keys(session, _event(spine[-1], "spine-person")) == []  # stale
    assert svc.sync(session) == []  # same ALF, status and probability: nothing superseded
    s, r = storage.spine_records.c, storage.results.c
    assert set(session.execute(select(s.key_version)).scalars()) == {2}
    assert session.execute(select(r.alf, r.sequence)).all() == [(first.alf, 1)]
    assert svc.stats["rechecked"] >= 1  # it was decided again, not skipped
