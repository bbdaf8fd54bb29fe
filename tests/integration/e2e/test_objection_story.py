"""An objection's whole way, ingest → pseudonymise → link → access, on Kafka with PostgreSQL
and on the embedded stack (issue 16, "Done when").

A small world is pseudonymised, linked and stored; a project takes an extract. The spine's
owner then objects for a person already linked and extracted, and a partner objects for a
record fjo never had. Afterwards: the person's records are out of the research store and
out of the next extract, their links are retracted by superseding OBJECTED results, the
earlier extract is flagged for rebuild, ``fjo audit verify`` accepts the trail, and the
counts reconcile: received at ingest = applied + refused at access, the refusal with its
reason. The person's record re-sent afterwards is suppressed by pseudonymise (its erasure
register) and changes nothing downstream. On the embedded stack too.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from contracts.events import RECORD_RECEIVED_EVENTS, LinkStatus
from contracts.records import RecordType
from contracts.services import Service
from fjo.cli import app as fjo
from services.access.bootstrap import build_worker as build_access_worker
from services.access.storage.models import ResearchRecordRow
from services.ingest.entrypoints import create_app as create_ingest_app
from services.link import storage as link_tables
from services.link.bootstrap import build_worker as build_link_worker
from services.pseudonymise.bootstrap import build_pseudonymiser
from services.pseudonymise.bootstrap import build_worker as build_pseudonymise_worker
from services.runtime.auth import DevIssuer
from services.runtime.db import make_engine
from services.runtime.delivery import Worker
from services.runtime.publishing import frame, publish_all
from services.runtime.worker_status import worker_status
from synth.world import WorldConfig, build_world
from tests.integration.access.conftest import (
    ADMIN,
    Access,
    active_project,
    built_extract,
    cli_env,
    held_records,
    register,
    serve,
    settings_for,
)
from tests.integration.conftest import Platform
from tests.integration.pipeline import pipeline_settings, run_until
from tests.unit.ingest.support import AUDIENCE as INGEST_AUDIENCE
from tests.unit.ingest.support import settings_for as ingest_settings_for


def _results(engine: Engine) -> dict[str, tuple[str | None, int, int, str | None]]:
    r = link_tables.results.c
    with engine.connect() as conn:
        rows = conn.execute(select(r.record_token, r.alf, r.status, r.sequence, r.spine_token))
        return {tok: (alf, status, seq, spine) for tok, alf, status, seq, spine in rows}


def _stored(a: Access) -> set[str]:
    with a.ctx.sessions() as s:
        return set(s.execute(select(ResearchRecordRow.record_token)).scalars())


def _bearer(issuer: DevIssuer, subject: str, role: str, source: str | None = None) -> dict:
    token = issuer.mint(subject, audience=INGEST_AUDIENCE, roles=[role], source=source)
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "platform",
    [
        pytest.param("embedded", id="embedded"),
        pytest.param("kafka", id="kafka", marks=[pytest.mark.kafka, pytest.mark.postgres]),
    ],
    indirect=True,
)
def test_an_objection_for_a_linked_and_extracted_person_flows_through_all_four_services(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = uuid.uuid4().hex[:8]
    p_settings, l_settings = pipeline_settings(platform, tmp_path, group)
    a_settings = settings_for(platform.db_url("access"), tmp_path).model_copy(
        update={"worker_group": f"access-{group}"}
    )
    p_engine, l_engine = make_engine(p_settings.database_url), make_engine(l_settings.database_url)
    workers: list[Worker] = []
    served = serve(a_settings)
    a = next(served)
    issuer = DevIssuer.generate(issuer="https://dev.fjo.invalid")
    ingest_app = create_ingest_app(
        ingest_settings_for(tmp_path, platform.db_url("ingest")),
        bus=platform.bus,
        verifier=issuer.verifier(audience=INGEST_AUDIENCE),
    )
    try:
        workers = [
            build_pseudonymise_worker(p_settings, platform.worker_bus(), p_engine),
            build_link_worker(l_settings, platform.worker_bus(), l_engine),
            build_access_worker(a_settings, platform.worker_bus(), a.ctx),
        ]
        for worker in workers:
            platform.join(worker)

        # A small world, as ingest publishes it (the workers read only what comes after they
        # joined, so earlier tests' records on Kafka's shared topics do not reach them).
        world = build_world(WorldConfig(seed=11, spine_size=120, cases=10, invalid_per_feed=0))
        messages, total, persons, spine_ids = [], 0, 0, []
        for (_source, kind), rows in world.records.items():
            for row in rows:
                event = RECORD_RECEIVED_EVENTS[RecordType(kind)].model_validate(
                    {"record": row, "delivery_id": f"dlv-{group}"}
                )
                messages.append(frame(event, source=Service.INGEST, event_id=uuid.uuid4()))
                total += 1
                persons += kind in {"child", "adult-party"}
                if kind == RecordType.SPINE_PERSON.value:
                    spine_ids.append(row["record_id"])
        producer = platform.bus.producer()
        publish_all(producer, messages)
        producer.flush()
        producer.close()
        run_until(
            workers,
            lambda: len(_results(l_engine)) == persons and len(_stored(a)) == total,
            "pseudonymised, linked and stored",
        )

        # A project's extract holds a linked child.
        register(a, "alice", "bob")
        pid = active_project(
            a, variables=("GNDR_CD", "LAW_TYPE"), window_start="1900-01-01", window_end="2099-12-31"
        )
        first = built_extract(a, pid)
        before = _results(l_engine)
        held = held_records(a, first["id"])
        pseudonymiser = build_pseudonymiser(p_settings)
        spine_of = {
            pseudonymiser.record_token("wds", "spine-person", rid): rid for rid in spine_ids
        }
        person, records = next(
            (spine, sorted(t for t, v in before.items() if v[3] == spine))
            for spine in sorted(spine_of)
            if any(v[3] == spine and t in held for t, v in before.items())
        )
        alf = before[records[0]][0]
        assert alf is not None

        # The spine's owner objects for that person; a partner for a record never sent.
        with TestClient(ingest_app) as ingest:
            wds = _bearer(issuer, "wds-push", "partner", source="wds")
            cymru = _bearer(issuer, "cymru-push", "partner", source="cafcass-cymru")
            sent = [
                ingest.post(
                    "/v1/objections",
                    json={
                        "request_id": f"obj-{group}-1",
                        "kind": "objection",
                        "subject": "person",
                        "source": "wds",
                        "record_type": "spine-person",
                        "record_id": spine_of[person],
                        "reason": "data-subject-request",
                    },
                    headers=wds,
                ),
                ingest.post(
                    "/v1/objections",
                    json={
                        "request_id": f"obj-{group}-2",
                        "kind": "erasure",
                        "subject": "record",
                        "source": "cafcass-cymru",
                        "record_type": "child",
                        "record_id": "NEVER-SENT-1",
                        "reason": "record-withdrawn",
                    },
                    headers=cymru,
                ),
            ]
            assert [r.status_code for r in sent] == [201, 201], [r.text for r in sent]
            operator = _bearer(issuer, "ops", "operator")
            received = ingest.get("/v1/objections/summary", headers=operator).json()

        def settled() -> bool:
            summary = a.client.get("/v1/objections/summary", headers=a.h(*ADMIN)).json()
            gone = not set(records) & _stored(a)
            return summary["received"] == 2 and gone

        run_until(workers, settled, "objections applied")
        after = _results(l_engine)
        stored_after = _stored(a)

        # The spine's owner re-sends the objected person's record (a routine full re-send):
        # pseudonymise suppresses it, so nothing new reaches link or access.
        resent = next(
            row
            for row in world.records[("wds", RecordType.SPINE_PERSON.value)]
            if row["record_id"] == spine_of[person]
        )
        event = RECORD_RECEIVED_EVENTS[RecordType.SPINE_PERSON].model_validate(
            {"record": resent, "delivery_id": f"dlv-{group}-again"}
        )
        producer = platform.bus.producer()
        publish_all(producer, [frame(event, source=Service.INGEST, event_id=uuid.uuid4())])
        producer.flush()
        producer.close()
        run_until(
            workers, lambda: workers[0].stats.suppressed == 1, "the re-sent record suppressed"
        )
        pseudonymise_status = worker_status(workers[0])
        after_resend = (_results(l_engine), _stored(a))
    finally:
        for worker in workers:
            worker.close()
        p_engine.dispose()
        l_engine.dispose()

    try:
        # Out of the research store; links retracted by superseding results.
        assert not set(records) & _stored(a)
        for tok in records:
            alf_now, status, sequence, _spine = after[tok]
            assert (alf_now, status) == (None, int(LinkStatus.OBJECTED)), tok
            assert sequence > before[tok][2]
        # The earlier extract is flagged; the next one leaves them out.
        bob = a.h("bob", "researcher")
        flagged = a.client.get(f"/v1/projects/{pid}/extracts/{first['id']}", headers=bob).json()
        assert flagged["rebuild_needed"] is True
        second = built_extract(a, pid)
        assert not set(records) & held_records(a, second["id"])
        assert set(records) & held_records(a, first["id"])
        # The re-send changed nothing downstream, and pseudonymise counts it as suppressed.
        assert after_resend == (after, stored_after)
        assert pseudonymise_status["suppressed"] == {"total": 1, "by_reason": {"objected": 1}}
        # Counts reconcile: received at ingest = applied + refused (with reason) at access.
        summary = a.client.get("/v1/objections/summary", headers=a.h(*ADMIN)).json()
        assert received["received"] == 2
        assert summary["received"] == summary["applied"] + summary["refused"] == 2
        assert (summary["applied"], summary["refused_by_reason"]) == (1, {"unknown-record": 1})
        # Every step is in the signed trail, which ``fjo audit verify`` accepts.
        cli_env(a, monkeypatch)
        verified = CliRunner().invoke(fjo, ["audit", "verify", "--json", "--no-progress"])
        assert verified.exit_code == 0, verified.output
        assert json.loads(verified.output)["ok"] is True
    finally:
        served.close()
