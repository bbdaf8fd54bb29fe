"""The whole platform in one process: one trace from the partner's HTTP request through
pseudonymise, link and access, and no canary identifier anywhere downstream of pseudonymise.

Every service runs its real code (ingest's app, the three workers built by their own
bootstraps) on a real bus: the embedded log on SQLite, and Kafka with PostgreSQL. The
multi-process story is ``fjo demo`` (embedded) and ``tests/deploy`` (``fjo up`` on Kafka).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import SecretStr
from sqlalchemy import MetaData, select

from contracts.records import PartnerRecord, RecordType
from contracts.topics import DOWNSTREAM_TOPICS
from services.access.bootstrap import build_context
from services.access.bootstrap import build_worker as build_access_worker
from services.access.config import AccessSettings, ExtractSettings
from services.access.config import AuthSettings as AccessAuth
from services.access.storage.models import LinkDecisionRow, ResearchRecordRow
from services.ingest.config import AuthSettings as IngestAuth
from services.ingest.config import IngestSettings
from services.ingest.entrypoints import create_app as create_ingest_app
from services.link.bootstrap import build_worker as build_link_worker
from services.link.config import LinkSettings
from services.pseudonymise.bootstrap import build_pseudonymiser
from services.pseudonymise.bootstrap import build_worker as build_pseudonymise_worker
from services.pseudonymise.config import PseudonymiseSettings
from services.runtime.auth import DevIssuer
from services.runtime.bus.api import Bus
from services.runtime.db import make_engine
from services.runtime.delivery import Worker
from services.runtime.telemetry import setup_telemetry
from tests.audit_keys import signing_key_file
from tests.canaries import CANARIES, CANARY_TEXT, canary_records
from tests.integration.conftest import Platform
from tests.leakscan import find_leaks
from tests.postcodes import nspl_from_synthetic

# Identifiable topics: everything else is downstream of pseudonymise and must be clean.
DOWNSTREAM = [t.name for t in DOWNSTREAM_TOPICS]


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process's tracer provider, with an in-memory exporter (installed once)."""
    exporter = InMemorySpanExporter()
    setup_telemetry("fjo-e2e-test", extra_processors=(SimpleSpanProcessor(exporter),))
    return exporter


def _key(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(uuid.uuid4().bytes + uuid.uuid4().bytes)
    return path


class Stack:
    """Ingest's HTTP API and the three workers, sharing one bus."""

    def __init__(self, platform: Platform, bus: Bus, tmp_path: Path) -> None:
        group = uuid.uuid4().hex[:8]
        self.issuer = DevIssuer.generate(issuer="https://dev.fjo.invalid")
        # Outside dev a JWKS URL is required; it is never fetched (the app gets a verifier).
        jwks_url = "https://issuer.invalid/jwks"
        self.ingest_settings = IngestSettings(
            database_url=platform.db_url("ingest"),
            environment="test",
            spool_dir=tmp_path / "spool",
            auth=IngestAuth(jwks_url=jwks_url),
        )
        self.engines = [
            make_engine(platform.db_url("pseudonymise")),
            make_engine(platform.db_url("link")),
        ]
        pseudonymise = PseudonymiseSettings(
            database_url=platform.db_url("pseudonymise"),
            environment="test",
            worker_group=f"pseudonymise-{group}",
            master_key_files={1: _key(tmp_path, "master-v1.key")},
            vault_kek_files={"k1": _key(tmp_path, "vault-kek-k1.key")},
            postcode_lookup_file=nspl_from_synthetic(tmp_path / "onspd"),
        )
        link = LinkSettings(
            database_url=platform.db_url("link"),
            worker_group=f"link-{group}",
            environment="test",
            alf_key_file=_key(tmp_path, "alf.key"),
        )
        access = AccessSettings(
            database_url=platform.db_url("access"),
            worker_group=f"access-{group}",
            environment="test",
            auth=AccessAuth(jwks_url=jwks_url),
            pseudonym_master_key=SecretStr(uuid.uuid4().hex + uuid.uuid4().hex),
            audit_signing_key_file=signing_key_file(tmp_path),
            extracts=ExtractSettings(directory=tmp_path / "extracts"),
        )
        self.access_ctx = build_context(access)
        self.pseudonymiser = build_pseudonymiser(pseudonymise)
        self.workers: dict[str, Worker] = {
            "pseudonymise": build_pseudonymise_worker(pseudonymise, bus, self.engines[0]),
            "link": build_link_worker(link, bus, self.engines[1]),
            "access": build_access_worker(access, bus, self.access_ctx),
        }
        for worker in self.workers.values():  # joined before anything is published
            platform.join(worker)
        self.databases = [platform.db_url(s) for s in ("link", "access")]

    def token(self, record: PartnerRecord) -> str:
        """The record token pseudonymise gives ``record`` (the test holds the key)."""
        return self.pseudonymiser.record_token(
            record.source.value, record.record_type.value, record.record_id
        )

    def drain(self, stored: list[PartnerRecord], linked: list[PartnerRecord] = ()) -> None:
        """Run the workers in turn until access holds ``stored`` and the link decisions of
        ``linked`` (topics on Kafka are shared by tests: count only this test's records)."""
        want_records = {self.token(r) for r in stored}
        want_links = {self.token(r) for r in linked}
        for _ in range(600):
            for worker in self.workers.values():
                worker.run_once(timeout_s=0.1)
            with self.access_ctx.sessions() as session:
                records = set(
                    session.scalars(
                        select(ResearchRecordRow.record_token).where(
                            ResearchRecordRow.record_token.in_(want_records)
                        )
                    )
                )
                links = set(session.scalars(
                    select(LinkDecisionRow.record_token).where(
                        LinkDecisionRow.record_token.in_(want_links))))  # fmt: skip
            if records == want_records and links == want_links:
                return
        stats = {name: w.stats.as_dict() for name, w in self.workers.items()}
        raise AssertionError(f"pipeline did not drain: {stats}")

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        for engine in self.engines:
            engine.dispose()
        self.access_ctx.dispose()


@pytest.fixture
def stack(platform: Platform, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(platform, platform.worker_bus(), tmp_path)
    yield s
    s.close()


def _ndjson(records) -> bytes:
    return b"".join(r.model_dump_json().encode() + b"\n" for r in records)


def _dump_tables(url: str) -> str:
    engine = make_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(
                json.dumps([list(row) for row in conn.execute(select(table))], default=str)
                for table in meta.sorted_tables
            )
    finally:
        engine.dispose()


def _span_text(span: ReadableSpan) -> str:
    return json.dumps(
        {
            "name": span.name,
            "attributes": dict(span.attributes or {}),
            "events": [(e.name, dict(e.attributes or {})) for e in span.events],
            "status": span.status.description,
        },
        default=str,
    )


def test_one_trace_runs_from_the_partners_request_through_every_service_and_nothing_leaks(
    platform: Platform,
    stack: Stack,
    spans: InMemorySpanExporter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # kafka-python's own DEBUG lines dump request bytes, including ingest's identifiable
    # produce requests: in one process they would mix with the downstream services' logs.
    caplog.set_level(logging.INFO, logger="kafka")
    spans.clear()
    records = canary_records(f"-{uuid.uuid4().hex[:6]}")
    app = create_ingest_app(
        stack.ingest_settings,
        bus=platform.bus,
        verifier=stack.issuer.verifier(audience="fjo-ingest"),
    )
    with TestClient(app) as client:

        def push(source: str, kind: RecordType) -> dict:
            token = stack.issuer.mint(
                source, audience="fjo-ingest", roles=["partner"], source=source
            )
            response = client.post(
                "/v1/deliveries",
                params={"record_type": kind.value},
                content=_ndjson([records[kind]]),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/x-ndjson",
                },
            )
            assert response.status_code in (200, 201, 202), response.text
            return response.json()

        push("wds", RecordType.SPINE_PERSON)
        stack.drain([records[RecordType.SPINE_PERSON]])  # the spine person is indexed
        spans.clear()
        child_receipt = push("cafcass-cymru", RecordType.CHILD)
        assert child_receipt["accepted"] == 1
        stack.drain([records[RecordType.CHILD]], linked=[records[RecordType.CHILD]])
        for kind in (RecordType.CASE, RecordType.ADULT_PARTY,
                     RecordType.PARTY_CHILD_RELATIONSHIP, RecordType.HEARING):  # fmt: skip
            push("cafcass-cymru", kind)
        stack.drain(list(records.values()), linked=[records[RecordType.ADULT_PARTY]])

    # -- one trace: ingest's request span is the root of every hop the child took ---------
    finished = spans.get_finished_spans()
    request = next(
        s for s in finished
        if s.kind is SpanKind.SERVER and "/v1/deliveries" in s.name
    )  # fmt: skip
    trace_id = request.context.trace_id
    in_trace = [s for s in finished if s.context.trace_id == trace_id]
    consumed = {
        (s.attributes or {}).get("messaging.destination.name")
        for s in in_trace
        if s.kind is SpanKind.CONSUMER
    }
    assert {
        "ingest.records.v1",  # pseudonymise
        "pseudonymise.linkage-keys.v1",  # link
        "pseudonymise.records.v1",  # access (content)
        "link.results.v1",  # access (linkage decision)
    } <= consumed
    by_id = {s.context.span_id: s for s in in_trace}
    link_result = next(
        s for s in in_trace
        if (s.attributes or {}).get("messaging.destination.name") == "link.results.v1"
    )  # fmt: skip
    chain = []
    span: ReadableSpan | None = link_result
    while span is not None:
        chain.append((span.attributes or {}).get("messaging.destination.name") or span.name)
        span = by_id.get(span.parent.span_id) if span.parent else None
    assert chain[0] == "link.results.v1"
    assert "pseudonymise.linkage-keys.v1" in chain and "ingest.records.v1" in chain
    assert chain[-1] == request.name  # the partner's request is the root

    # -- no canary downstream: topics, databases, logs, traces ----------------------------
    blobs: dict[str, str | bytes] = {}
    everything: dict[str, str | bytes] = {}
    our_tokens = [stack.token(r) for r in records.values()]
    at_least = {"pseudonymise.records.v1": 6, "pseudonymise.linkage-keys.v1": 3,
                "link.results.v1": 2}  # fmt: skip
    for topic in DOWNSTREAM:
        got = platform.read_everything(topic, at_least=at_least.get(topic, 0))
        # On Kafka the topics hold other tests' records too: those are scanned for every
        # canary that no legitimate record can contain (dates of birth can be case dates).
        mine = [m for m in got if any(t.encode() in m.value for t in our_tokens)]
        blobs[f"topic {topic} (this test)"] = b"\n".join(
            m.value + repr(m.headers).encode() for m in mine
        )
        everything[f"topic {topic} (all)"] = b"\n".join(
            m.value + repr(m.headers).encode() for m in got
        )
    for url in stack.databases:
        blobs[f"database {url.rsplit('/', 1)[-1]}"] = _dump_tables(url)
    blobs["logs"] = (
        "\n".join(json.dumps(r.__dict__, default=str) for r in caplog.records) + caplog.text
    )
    blobs["traces"] = "\n".join(_span_text(s) for s in finished)
    found = {where: find_leaks(blob, CANARIES) for where, blob in blobs.items()}
    found |= {where: find_leaks(blob, CANARY_TEXT) for where, blob in everything.items()}
    assert {where: f for where, f in found.items() if f} == {}
    assert all(blobs[k] for k in blobs if k.startswith("database"))  # scanned, not empty
