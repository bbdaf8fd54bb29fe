"""Pipeline throughput: partner HTTP → ingest → pseudonymise → link → access, end to end.

What runs, per backend (``embedded``: SQLite files with the bus in a file of its own;
``kafka``: Apache Kafka + PostgreSQL), every role its own ``fjo serve <service> <role>``
process started by the stack runners (``fjo.stack.embedded.EmbeddedStack``,
``fjo.stack.kafka.KafkaStack``):

1. a synthetic world (``fjo synth``'s ``build_world``) is written as NDJSON;
2. the spine's owner pushes the spine over ingest's HTTP API (``fjo push``'s resumable
   upload) and the pipeline drains it (link indexes it, then re-fits its model to it while
   idle; the run waits until link's CPU goes quiet): timed apart, never in the figures;
3. the two Cafcass agencies push their feeds (N incoming records), each agency in its own
   thread as two partners would, and the clock runs from the first request until the last
   record is complete in access.

What is measured, all from the run's own records (wall clocks of one machine):

* *received*: the ``time`` of ingest's ``ingest.records.v1`` envelope, set while ingest
  handles the partner's request (after validation, before its batch is published);
* *stored*: ``access_research_records.received_at``, set when the access worker writes the
  row (inside its batch transaction, so before that batch commits);
* *linked* (child and adult-party records): the first ``access_link_results.received_at`` of
  the record, i.e. link's decision stored in access;
* *complete*: stored, and linked for person records. A record is followed through by its
  event ids (pseudonymise derives its content event id from ingest's) and its record token.

Throughput is incoming records / (last *complete* - first push request). Per stage, the
workers' processed-marker tables give records settled per second (first to last marker of
the window) and CPU seconds per record of each process. Latency is *complete* - *received*
per record (p50/p99), and *stored* - *received* as well.

The transport ceiling (raw kafka-python, same run, same broker): a producer replays the
run's exact ``ingest.records.v1`` records onto a copy of that topic; three relays, each its
own process (``python -m bench.pipeline _relay``), with the registry's partition counts: a
"pseudonymise" relay writes one records message and, for person records, one linkage-keys
message (the run's mean sizes); a "link" relay turns each keys message into a results
message; the "access" sink counts a record complete when its records message (and results
message) arrived. Each relay polls up to 500, sends, flushes, commits per batch; no
processing. Up to 300 of the records go through every hop first, untimed, as the pipeline is
warmed by the spine before its timed run (without it, fresh topics' metadata and fetch
sessions made the ceiling vary from 1,200 to 5,300 records/s between runs), and the ceiling
is the best of three runs (a run right after the pipeline's stack stopped sometimes stalled
for two seconds). Our Kafka pipeline's records/s over the ceiling's is the ratio (goal ≥ 0.5).

``run_pipeline_benchmark`` returns the figures and writes ``bench/results/pipeline-<ts>.json``
and ``pipeline-latest.json``; ``python -m bench.pipeline --help`` and ``fjo bench pipeline``
run it from a shell.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import kafka
import sqlalchemy as sa
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy.pool import NullPool

from bench._common import environment, write_result
from bench.bus import CONSUMER_SETTINGS, MAX_RECORDS, PRODUCER_SETTINGS, _default_bootstrap
from contracts.records import PERSON_RECORD_TYPES
from contracts.topics import (
    ACCESS_DEAD_LETTERS,
    INGEST_QUARANTINE,
    INGEST_RECORDS,
    LINK_DEAD_LETTERS,
    LINK_RESULTS,
    PSEUDONYMISE_DEAD_LETTERS,
    PSEUDONYMISE_LINKAGE_KEYS,
    PSEUDONYMISE_RECORDS,
)
from fjo.stack.api import Stack
from fjo.stack.embedded import EmbeddedStack
from fjo.stack.kafka import KafkaStack
from services.runtime.bus.api import Headers

__all__ = ["run_pipeline_benchmark"]

ROOT = Path(__file__).resolve().parents[1]
ISSUER = "https://dev.fjo.invalid"
DEAD_LETTER_TOPICS = (
    PSEUDONYMISE_DEAD_LETTERS.name,
    LINK_DEAD_LETTERS.name,
    ACCESS_DEAD_LETTERS.name,
)
MARKER_TABLES = {
    "pseudonymise": "processed_messages",
    "link": "processed_messages",
    "access": "access_processed_messages",
}
CEILING_RUNS = 3
KEY_VERSION = 1  # the stacks' dev key ring holds one master key, version 1
RECORDS_PER_CASE = 11.5  # incoming records per case in fjo synth's world (measured)


# ------------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """The world on disk: the spine feed and the incoming (Cafcass) feeds, with counts."""

    folder: Path
    config: dict[str, Any]
    spine: list[tuple[str, str, Path]]
    incoming: list[tuple[str, str, Path]]
    spine_valid: int
    spine_invalid: int
    incoming_valid: int
    incoming_invalid: int
    incoming_persons: int
    mean_line_bytes: float
    spine_ids: list[tuple[str, str, str]]
    incoming_ids: list[tuple[str, str, str]]
    """(source, record type, record id) of every valid record: followed to access by token."""


def build_workload(folder: Path, *, records: int, spine_size: int, seed: int) -> Workload:
    """A world whose Cafcass feeds hold about ``records`` valid records."""
    from synth.world import FEEDS, WorldConfig, build_world, write_world

    def world_for(cases: int) -> Any:
        return build_world(WorldConfig(seed=seed, spine_size=spine_size, cases=max(2, cases)))

    def incoming(w: Any) -> int:
        return sum(len(rows) for (s, _k), rows in w.records.items() if s != "wds")

    cases = max(2, round(records / RECORDS_PER_CASE))
    world = world_for(cases)
    got = incoming(world)
    if got and abs(got - records) > 0.05 * records:  # one refinement by the observed ratio
        world = world_for(round(cases * records / got))
    files = write_world(world, folder)
    counts = world.counts()
    spine = [(s, k, files[f"{s}/{k}"]) for s, k in FEEDS if s == "wds"]
    feeds = [(s, k, files[f"{s}/{k}"]) for s, k in FEEDS if s != "wds"]
    persons = {t.value for t in PERSON_RECORD_TYPES}
    lines = [p.stat().st_size for _s, _k, p in feeds]
    valid_in = sum(counts[f"{s}/{k}"]["valid"] for s, k, _ in feeds)
    invalid_in = sum(counts[f"{s}/{k}"]["invalid"] for s, k, _ in feeds)
    return Workload(
        folder=folder,
        config={
            "seed": seed,
            "spine_size": world.config.spine_size,
            "cases": world.config.cases,
        },
        spine=spine,
        incoming=feeds,
        spine_valid=sum(counts[f"{s}/{k}"]["valid"] for s, k, _ in spine),
        spine_invalid=sum(counts[f"{s}/{k}"]["invalid"] for s, k, _ in spine),
        incoming_valid=valid_in,
        incoming_invalid=invalid_in,
        incoming_persons=sum(counts[f"{s}/{k}"]["valid"] for s, k, _ in feeds if k in persons),
        mean_line_bytes=round(sum(lines) / max(1, valid_in + invalid_in), 1),
        spine_ids=[(s, k, r["record_id"]) for s, k, _p in spine for r in world.records[(s, k)]],
        incoming_ids=[(s, k, r["record_id"]) for s, k, _p in feeds for r in world.records[(s, k)]],
    )


def _push_feeds(
    url: str, issuer: Any, feeds: Sequence[tuple[str, str, Path]], part_bytes: int
) -> list[dict[str, Any]]:
    """Push ``feeds`` as their partners would: each partner in its own thread, its feeds in
    order, with ``fjo push``'s resumable upload; the receipts."""
    from fjo.push_cli import push_file

    by_source: dict[str, list[tuple[str, str, Path]]] = {}
    for feed in feeds:
        by_source.setdefault(feed[0], []).append(feed)

    def partner(source: str) -> list[dict[str, Any]]:
        token = issuer.mint(
            f"{source}-uploader", audience="fjo-ingest", roles=["partner"], source=source
        )
        out = []
        for _s, kind, path in by_source[source]:
            receipt = push_file(
                path,
                source=source,
                record_type=kind,
                url=url,
                token=token,
                part_bytes=part_bytes,
                state_file=path.with_name(f"{path.name}.{uuid.uuid4().hex[:6]}.fjo-push.json"),
            )
            out.append({**receipt, "feed": f"{source}/{kind}"})
        return out

    with ThreadPoolExecutor(max_workers=len(by_source), thread_name_prefix="partner") as pool:
        results = list(pool.map(partner, list(by_source)))
    return [r for rs in results for r in rs]


# ------------------------------------------------------------------------------- backends


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _proc_cpu_s(pid: int) -> float | None:
    """User+system CPU seconds of a process so far (Linux), None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_settled(pid: int | None, *, timeout_s: float, quiet_s: float = 1.0) -> float:
    """Wait until process ``pid`` uses (almost) no CPU for ``quiet_s``; the seconds waited."""
    t0 = time.monotonic()
    if pid is None:
        return 0.0
    last = _proc_cpu_s(pid)
    while last is not None and time.monotonic() - t0 < timeout_s:
        time.sleep(quiet_s)
        now = _proc_cpu_s(pid)
        if now is None or now - last < 0.05 * quiet_s:
            break
        last = now
    return time.monotonic() - t0


# ----------------------------------------------------------------------------- one run


def _tokens(key_dir: Path, ids: Iterable[tuple[str, str, str]]) -> dict[str, str]:
    """Record token → record type, under the stack's dev master key (as pseudonymise does)."""
    from services.pseudonymise.domain import RECORD_TOKEN, KeyRing
    from services.pseudonymise.domain.tokens import RecordTokeniser

    path = key_dir / "master-v1.key"
    deadline = time.monotonic() + 60
    while not path.exists():  # the worker writes it on its first start
        if time.monotonic() > deadline:
            raise RuntimeError(f"no dev master key at {path}")
        time.sleep(0.2)
    tokeniser = RecordTokeniser(KeyRing.from_files({1: path}, 1).derive(RECORD_TOKEN))
    return {tokeniser.record_token(s, k, r): k for s, k, r in ids}


def _count_in(url: str, table: str, tokens: Sequence[str]) -> int:
    """How many of ``tokens`` have a row in ``table`` (0 while the table is not there yet)."""
    engine = sa.create_engine(url, poolclass=NullPool)
    found = 0
    try:
        with engine.connect() as conn:
            for i in range(0, len(tokens), 500):
                chunk = tokens[i : i + 500]
                found += int(
                    conn.execute(
                        sa.text(
                            f"SELECT COUNT(DISTINCT record_token) FROM {table} "
                            "WHERE record_token IN :tokens"
                        ).bindparams(sa.bindparam("tokens", expanding=True)),
                        {"tokens": list(chunk)},
                    ).scalar_one()
                )
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):
        return 0  # SQLite busy a moment, or the table not created yet
    finally:
        engine.dispose()
    return found


def _wait_drained(
    stack: Stack,
    *,
    waits: Sequence[tuple[str, str, Sequence[str]]],
    timeout_s: float,
    log: Callable[[str], None],
    what: str,
) -> None:
    """Until every (service database, table, tokens) holds a row for each of its tokens:
    this run's records only, so other producers on a shared broker cannot end it early."""
    deadline = time.monotonic() + timeout_s
    last_log = 0.0
    while True:
        found = [_count_in(stack.database_url(svc), table, tokens) for svc, table, tokens in waits]
        status = ", ".join(
            f"{table} {n}/{len(tokens)}"
            for n, (_s, table, tokens) in zip(found, waits, strict=True)
        )
        if all(n >= len(t) for n, (_s, _t, t) in zip(found, waits, strict=True)):
            return
        if exited := stack.exited():
            raise RuntimeError(f"{stack.name}: processes exited during {what}: {exited}")
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"{stack.name}: {what} did not drain in {timeout_s:.0f} s: {status}")
        if now - last_log > 5:
            log(f"bench pipeline: {stack.name}: {what}: {status}")
            last_log = now
        time.sleep(0.2)


def _pct(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    s = sorted(values)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, max(0, math.ceil(p * len(s)) - 1))], 1)

    return {
        "p50": q(0.50),
        "p99": q(0.99),
        "max": round(s[-1], 1),
        "mean": round(statistics.fmean(s), 1),
    }


def _rate(n: int, seconds: float) -> float | None:
    return round(n / seconds, 1) if seconds > 0 else None


def _run_backend(
    stack: Stack,
    w: Workload,
    *,
    part_bytes: int,
    drain_timeout_s: float,
    log: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the workload on ``stack``: (figures, what the ceiling replays)."""
    from services.runtime.auth import DevIssuer

    log(f"bench pipeline: {stack.name}: starting the stack")
    load_before = os.getloadavg()
    t = time.monotonic()
    stack.up()
    try:
        started_s = time.monotonic() - t
        issuer = DevIssuer.from_file(stack.issuer_key, issuer=ISSUER)

        log(f"bench pipeline: {stack.name}: pushing the spine ({w.spine_valid} records)")
        t = time.monotonic()
        spine_receipts = _push_feeds(stack.url("ingest-api"), issuer, w.spine, part_bytes)
        spine_pushed_s = time.monotonic() - t
        spine_rows = sum(r["accepted"] for r in spine_receipts)
        spine = list(_tokens(stack.key_dir, w.spine_ids))
        incoming = _tokens(stack.key_dir, w.incoming_ids)
        persons_types = {t.value for t in PERSON_RECORD_TYPES}
        persons = [tok for tok, kind in incoming.items() if kind in persons_types]
        # The spine stored in access and indexed by link before the clock starts.
        _wait_drained(
            stack,
            waits=[
                ("access", "access_research_records", spine),
                ("link", "link_spine_records", spine),
            ],
            timeout_s=drain_timeout_s,
            log=log,
            what="spine",
        )
        spine_s = time.monotonic() - t
        # ...and link's model fitted to it: link re-estimates its u-probabilities for a grown
        # spine when idle (seconds of CPU for a few thousand people), which is not part of
        # linking the incoming records.
        settled_s = _wait_settled(stack.pids().get("link-worker"), timeout_s=120.0)

        start = stack.end_offsets()
        cpu0 = {name: _proc_cpu_s(pid) for name, pid in stack.pids().items()}
        log(f"bench pipeline: {stack.name}: pushing {w.incoming_valid} incoming records")
        t_push = time.time()
        receipts = _push_feeds(stack.url("ingest-api"), issuer, w.incoming, part_bytes)
        pushed_s = time.time() - t_push
        accepted = sum(r["accepted"] for r in receipts)
        _wait_drained(
            stack,
            waits=[
                ("access", "access_research_records", list(incoming)),
                ("access", "access_link_decisions", persons),
            ],
            timeout_s=drain_timeout_s,
            log=log,
            what="incoming",
        )
        drained_s = time.time() - t_push
        cpu1 = {name: _proc_cpu_s(pid) for name, pid in stack.pids().items()}
        end = stack.end_offsets()
        figures, replay = _collect(stack, w, receipts, start, end, t_push)
    finally:
        stack.down()
    cpu = {
        name: round(cpu1[name] - c0, 2)  # type: ignore[operator]
        for name, c0 in cpu0.items()
        if c0 is not None and cpu1.get(name) is not None
    }
    figures["phases_s"] = {
        "stack_start": round(started_s, 2),
        "spine_push": round(spine_pushed_s, 2),
        "spine_push_and_drain": round(spine_s, 2),
        "link_settling_after_spine": round(settled_s, 2),
        "incoming_push": round(pushed_s, 2),
        "incoming_drain_observed": round(drained_s, 2),
    }
    figures["push_records_per_s"] = _rate(accepted, pushed_s)
    # Other work on the machine moves every figure: the 1-minute load before and after.
    figures["loadavg_1m"] = {"before": load_before[0], "after": os.getloadavg()[0]}
    figures["cpu_s"] = cpu
    n = figures["records"]["complete"] or 1
    figures["cpu_ms_per_record"] = {k: round(v / n * 1000, 2) for k, v in cpu.items()}
    figures["receipts"] = [
        {k: r[k] for k in ("feed", "received", "accepted", "rejected", "duplicates", "parts")}
        for r in receipts
    ]
    figures["spine"] = {"records": spine_rows, "seconds": round(spine_s, 2)}
    return figures, replay


def _collect(
    stack: Stack,
    w: Workload,
    receipts: list[dict[str, Any]],
    start: dict[tuple[str, int], int],
    end: dict[tuple[str, int], int],
    t_push: float,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Follow every incoming record from ingest's envelope to access's rows."""
    from services.access.storage.models import LinkResultRow, ResearchRecordRow
    from services.link.service import result_event_id
    from services.pseudonymise.events import output_event_id

    deliveries = {d for r in receipts for d in r["delivery_ids"]}
    persons_types = {t.value for t in PERSON_RECORD_TYPES}

    # ingest: event id → (received, person?) for this run's deliveries
    received: dict[str, tuple[float, bool]] = {}
    replay_msgs: list[tuple[bytes | None, bytes, Headers, bool]] = []
    for message in stack.read(INGEST_RECORDS.name, start, end):
        key, value, headers = message.key, message.value, message.headers
        env = json.loads(value)
        if env.get("delivery_id") not in deliveries:
            continue
        # "ingest.<record type>-received.v1"
        person = env["type"].split(".")[1].removesuffix("-received") in persons_types
        received[env["event_id"]] = (_utc(env["time"]).timestamp(), person)
        replay_msgs.append((key, value, headers, person))
    # pseudonymise: content event id → record token
    token_of: dict[str, str] = {}
    sizes: dict[str, list[int]] = {}
    for message in stack.read(PSEUDONYMISE_RECORDS.name, start, end):
        env = json.loads(message.value)
        token_of[env["event_id"]] = env["data"]["record_token"]
        sizes.setdefault(PSEUDONYMISE_RECORDS.name, []).append(len(message.value))
    for topic in (PSEUDONYMISE_LINKAGE_KEYS.name, LINK_RESULTS.name):
        sizes[topic] = [len(m.value) for m in stack.read(topic, start, end)]
    sizes[INGEST_RECORDS.name] = [len(v) for _k, v, _h, _p in replay_msgs]
    dead_letters = sum(end.get(k, 0) - start.get(k, 0) for k in end if k[0] in DEAD_LETTER_TOPICS)
    quarantined = sum(
        end.get(k, 0) - start.get(k, 0) for k in end if k[0] == INGEST_QUARANTINE.name
    )

    engine = sa.create_engine(stack.database_url("access"), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            stored = {
                tok: at.timestamp()
                for tok, at in conn.execute(
                    sa.select(ResearchRecordRow.record_token, ResearchRecordRow.received_at)
                )
            }
            results = conn.execute(
                sa.select(
                    LinkResultRow.record_token, LinkResultRow.sequence, LinkResultRow.received_at
                )
            ).all()
    finally:
        engine.dispose()

    linked: dict[str, float] = {}
    for tok, _seq, at in results:
        linked[tok] = min(linked.get(tok, math.inf), _utc(at).timestamp())

    # The marker keys of this run's records at each stage (the event ids each worker saw).
    wanted: dict[tuple[str, str], set[str]] = {
        k: set()
        for k in (
            ("pseudonymise", INGEST_RECORDS.name),
            ("link", PSEUDONYMISE_LINKAGE_KEYS.name),
            ("access", PSEUDONYMISE_RECORDS.name),
            ("access", LINK_RESULTS.name),
        )
    }
    mine: set[str] = set()
    store_lat: list[float] = []
    complete_lat: list[float] = []
    done_at: list[float] = []
    missing_rows = missing_links = 0
    for eid, (t_in, person) in received.items():
        content_id = str(output_event_id(uuid.UUID(eid), "content", KEY_VERSION))
        wanted[("pseudonymise", INGEST_RECORDS.name)].add(f"event:{eid}")
        wanted[("access", PSEUDONYMISE_RECORDS.name)].add(f"event:{content_id}")
        if person:
            keys_id = output_event_id(uuid.UUID(eid), "linkage-keys", KEY_VERSION)
            wanted[("link", PSEUDONYMISE_LINKAGE_KEYS.name)].add(f"event:{keys_id}")
        token = token_of.get(content_id)
        if token:
            mine.add(token)
        t_row = stored.get(token) if token else None
        if t_row is None:
            missing_rows += 1
            continue
        store_lat.append((t_row - t_in) * 1000)
        t_done = t_row
        if person:
            t_link = linked.get(token)  # type: ignore[arg-type]
            if t_link is None:
                missing_links += 1
                continue
            t_done = max(t_row, t_link)
        complete_lat.append((t_done - t_in) * 1000)
        done_at.append(t_done)

    for tok, seq, _at in results:
        if tok in mine:
            result_id = result_event_id(tok, seq)
            wanted[("access", LINK_RESULTS.name)].add(f"event:{result_id}")
    stages = _stage_rates(stack, t_push, wanted)
    accepted = sum(r["accepted"] for r in receipts)
    last = max(done_at) if done_at else t_push
    figures = {
        "records": {
            "pushed_valid": w.incoming_valid,
            "pushed_invalid": w.incoming_invalid,
            "accepted": accepted,
            "rejected": sum(r["rejected"] for r in receipts),
            "quarantined": quarantined,
            "received_by_ingest": len(received),
            "stored_in_access": len(store_lat),
            "person_records": sum(1 for _t, p in received.values() if p),
            "complete": len(complete_lat),
            "missing_rows": missing_rows,
            "missing_link_decisions": missing_links,
            "dead_letters": dead_letters,
        },
        "end_to_end_seconds": round(last - t_push, 3),
        "records_per_s": _rate(len(complete_lat), last - t_push),
        "latency_ms": {
            "complete": _pct(complete_lat),
            "stored": _pct(store_lat),
        },
        "stages": stages,
        "message_bytes": {t: round(statistics.fmean(v)) for t, v in sizes.items() if v},
        "messages": {t: len(v) for t, v in sizes.items()},
    }
    replay = {
        "messages": replay_msgs,
        "records_bytes": figures["message_bytes"].get(PSEUDONYMISE_RECORDS.name, 800),
        "keys_bytes": figures["message_bytes"].get(PSEUDONYMISE_LINKAGE_KEYS.name, 2000),
        "results_bytes": figures["message_bytes"].get(LINK_RESULTS.name, 400),
    }
    return figures, replay


def _stage_rates(
    stack: Stack, t_push: float, wanted: dict[tuple[str, str], set[str]]
) -> dict[str, Any]:
    """Per worker and input topic: this run's records it settled, its first and last marker
    (seconds after the first push) and the rate between them; ``foreign``: other records it
    settled meanwhile (a shared broker: other producers on the same topics)."""
    from services.runtime.delivery import processed_messages_table

    out: dict[str, Any] = {}
    for service, table_name in MARKER_TABLES.items():
        table = processed_messages_table(sa.MetaData(), table_name)
        engine = sa.create_engine(stack.database_url(service), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(table.c.topic, table.c.message_key, table.c.processed_at)
                ).all()
        finally:
            engine.dispose()
        by_topic: dict[str, list[float]] = {}
        foreign: dict[str, int] = {}
        for topic, key, at in rows:
            if key in wanted.get((service, topic), ()):
                by_topic.setdefault(topic, []).append(_utc(at).timestamp())
            elif _utc(at).timestamp() >= t_push:
                foreign[topic] = foreign.get(topic, 0) + 1
        for topic, stamps in sorted(by_topic.items()):
            first, last = min(stamps) - t_push, max(stamps) - t_push
            out[f"{service} ← {topic}"] = {
                "records": len(stamps),
                "foreign": foreign.get(topic, 0),
                "first_s": round(first, 3),
                "last_s": round(last, 3),
                "records_per_s": _rate(len(stamps), last - first),
                "records_per_s_from_first_push": _rate(len(stamps), last),
            }
    return out


# --------------------------------------------------------------------- transport ceiling


@dataclass
class _RelayConfig:
    role: str  # pseudonymise | link | access
    bootstrap: str
    group: str
    inputs: list[str]
    topics: dict[str, str]
    records_bytes: int = 800
    keys_bytes: int = 2000
    results_bytes: int = 400
    expected: int = 0
    ready_file: str = ""
    result_file: str = ""
    warm_expected: int = 0  # warm-up records the sink must see before the timed run
    warm_file: str = ""
    timeout_s: float = 600.0
    extra: dict[str, Any] = field(default_factory=dict)


def _relay(cfg: _RelayConfig) -> None:
    """One relay process of the ceiling: poll, send, flush, commit per batch; nothing else."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    consumer = KafkaConsumer(
        bootstrap_servers=cfg.bootstrap, group_id=cfg.group, **CONSUMER_SETTINGS
    )
    # Every partition assigned by hand (offsets still committed to the group): a group
    # join can wait minutes for a metadata refresh when it first sees fresh topics empty.
    tps: list[TopicPartition] = []
    for topic in cfg.inputs:
        deadline = time.monotonic() + 60
        while not (partitions := consumer.partitions_for_topic(topic)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"no partitions known for {topic}")
            time.sleep(0.1)
        tps.extend(TopicPartition(topic, p) for p in sorted(partitions))
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    producer = (
        KafkaProducer(bootstrap_servers=cfg.bootstrap, **PRODUCER_SETTINGS)
        if cfg.role != "access"
        else None
    )
    payload = os.urandom(max(cfg.records_bytes, cfg.keys_bytes, cfg.results_bytes))
    t = cfg.topics
    pending: dict[bytes, int] = {}
    latencies: list[float] = []
    first = last = seen_first = seen_last = 0.0
    warm_done = 0
    deadline = time.monotonic() + cfg.timeout_s
    try:
        Path(cfg.ready_file).write_text("ready\n")
        while not stop.is_set() and time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=100, max_records=MAX_RECORDS)
            if not batches:
                continue
            for records in batches.values():
                for r in records:
                    h = dict(r.headers or ())
                    if h["bench-warm"] == b"0":
                        seen_first = seen_first or time.time()
                        seen_last = time.time()
                    if producer is not None:
                        headers = [
                            (k, h[k])
                            for k in ("bench-id", "bench-t0", "bench-person", "bench-warm")
                        ]
                        if cfg.role == "pseudonymise":
                            producer.send(
                                t["records"],
                                payload[: cfg.records_bytes],
                                key=r.key,
                                headers=headers,
                            )
                            if h["bench-person"] == b"1":
                                producer.send(
                                    t["keys"], payload[: cfg.keys_bytes], key=r.key, headers=headers
                                )
                        else:
                            producer.send(
                                t["results"],
                                payload[: cfg.results_bytes],
                                key=r.key,
                                headers=headers,
                            )
                        continue
                    rid = h["bench-id"]
                    need = pending.get(rid, 2 if h["bench-person"] == b"1" else 1) - 1
                    if need:
                        pending[rid] = need
                        continue
                    pending.pop(rid, None)
                    if h["bench-warm"] == b"1":
                        warm_done += 1
                        if warm_done == cfg.warm_expected and cfg.warm_file:
                            Path(cfg.warm_file).write_text("warm\n")
                        continue
                    now = time.time()
                    first = first or now
                    last = now
                    latencies.append(now * 1000 - float(h["bench-t0"]))
            if producer is not None:
                producer.flush()
            consumer.commit()
            if cfg.role == "access" and len(latencies) >= cfg.expected:
                break
    finally:
        if cfg.result_file:
            Path(cfg.result_file).write_text(
                json.dumps(
                    {
                        "complete": len(latencies),
                        "last": last,
                        "latencies_ms": latencies,
                        "cpu_s": time.process_time(),
                        "seen": [seen_first, seen_last],
                    }
                )
            )
        if producer is not None:
            producer.close()
        consumer.close(autocommit=False)


def run_ceiling(
    bootstrap: str,
    replay: dict[str, Any],
    *,
    work_dir: Path,
    timeout_s: float = 600.0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The raw kafka-python transport ceiling for the pipeline's hops, on ``replay``."""
    from services.runtime.bus.kafka import KafkaBus
    from services.runtime.topics import topic_specs

    messages = replay["messages"]
    n = len(messages)
    warm = messages[: min(300, n)]
    tag = uuid.uuid4().hex[:8]
    parts = {s.name: s.partitions for s in topic_specs()}
    topics = {
        "in": (INGEST_RECORDS.name, f"bench.ceiling-{tag}.ingest-records"),
        "records": (PSEUDONYMISE_RECORDS.name, f"bench.ceiling-{tag}.records"),
        "keys": (PSEUDONYMISE_LINKAGE_KEYS.name, f"bench.ceiling-{tag}.linkage-keys"),
        "results": (LINK_RESULTS.name, f"bench.ceiling-{tag}.results"),
    }
    from services.runtime.bus.api import TopicSpec

    bus = KafkaBus(bootstrap, client_id="bench-ceiling")
    try:
        bus.create_topics([TopicSpec(name, parts[src]) for src, name in topics.values()])
    finally:
        bus.close()
    names = {k: v[1] for k, v in topics.items()}
    work_dir.mkdir(parents=True, exist_ok=True)
    relays = {
        "pseudonymise": [names["in"]],
        "link": [names["keys"]],
        "access": [names["records"], names["results"]],
    }
    procs: list[tuple[str, subprocess.Popen[bytes], _RelayConfig]] = []
    try:
        for role, inputs in relays.items():
            cfg = _RelayConfig(
                role=role,
                bootstrap=bootstrap,
                group=f"bench-ceiling-{tag}-{role}",
                inputs=inputs,
                topics=names,
                records_bytes=int(replay["records_bytes"]),
                keys_bytes=int(replay["keys_bytes"]),
                results_bytes=int(replay["results_bytes"]),
                expected=n,
                ready_file=str(work_dir / f"{role}.ready"),
                result_file=str(work_dir / f"{role}.json"),
                timeout_s=timeout_s,
                warm_expected=len(warm),
                warm_file=str(work_dir / "warm") if role == "access" else "",
            )
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.pipeline", "_relay", json.dumps(cfg.__dict__)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=(work_dir / f"{role}.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
            procs.append((role, proc, cfg))
        deadline = time.monotonic() + min(120.0, timeout_s)
        for role, proc, cfg in procs:
            while not Path(cfg.ready_file).exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ceiling relay {role} did not start; see {work_dir}")
                time.sleep(0.05)
        producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)

        def send(i: int, key: Any, value: bytes, headers: Any, person: bool, warm: bool) -> None:
            extra = [
                ("bench-id", f"{'w' if warm else ''}{i}".encode()),
                ("bench-t0", repr(time.time() * 1000).encode()),
                ("bench-person", b"1" if person else b"0"),
                ("bench-warm", b"1" if warm else b"0"),
            ]
            producer.send(names["in"], value=value, key=key, headers=[*headers, *extra])

        # A warm-up through every hop first (fresh topics' metadata, connections, fetch
        # sessions), as the pipeline is warmed by the spine before its timed run.
        log(f"bench pipeline: ceiling: relays ready; warming up with {len(warm)} records")
        for i, (key, value, headers, person) in enumerate(warm):
            send(i, key, value, headers, person, True)
        producer.flush()
        while not (work_dir / "warm").exists():
            if time.monotonic() > deadline + timeout_s:
                raise RuntimeError(f"ceiling warm-up did not complete; see {work_dir}")
            time.sleep(0.02)
        log(f"bench pipeline: ceiling: producing {n} records")
        t0 = time.time()
        for i, (key, value, headers, person) in enumerate(messages):
            send(i, key, value, headers, person, False)
        producer.flush()
        produced_s = time.time() - t0
        producer.close()
        sink = next(p for r, p, _c in procs if r == "access")
        sink.wait(timeout=timeout_s)
        result = json.loads((work_dir / "access.json").read_text())
        for role, proc, _cfg in procs:  # the relays write theirs when they stop
            if role != "access":
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=20)
        # When each hop saw the run's first and last timed message (s after the first send).
        seen = {
            role: [round(t - t0, 3) if t else None for t in json.loads(
                (work_dir / f"{role}.json").read_text())["seen"]]
            for role in relays
        }  # fmt: skip
    finally:
        for _role, proc, _cfg in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _role, proc, _cfg in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        _delete_topics(bootstrap, list(names.values()))
    if result["complete"] < n:
        raise RuntimeError(f"ceiling: only {result['complete']} of {n} records completed")
    return {
        "records": n,
        "person_records": sum(1 for m in messages if m[3]),
        "hops": "producer → ingest-records → relay P → records + linkage-keys; keys → relay L "
        "→ results; records + results → sink A",
        "partitions": {k: parts[src] for k, (src, _n) in topics.items()},
        "message_bytes": {
            "in": round(statistics.fmean(len(m[1]) for m in messages)) if messages else 0,
            "records": replay["records_bytes"],
            "keys": replay["keys_bytes"],
            "results": replay["results_bytes"],
        },
        "warm_up_records": len(warm),
        "hops_seen_s": seen,
        "produce_s": round(produced_s, 3),
        "end_to_end_seconds": round(result["last"] - t0, 3),
        "records_per_s": _rate(n, result["last"] - t0),
        "latency_ms": {"complete": _pct(result["latencies_ms"])},
    }


def _delete_topics(bootstrap: str, names: list[str]) -> None:
    from kafka import KafkaAdminClient

    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="bench-ceiling-admin")
        try:
            admin.delete_topics(names)
        finally:
            admin.close()


# ------------------------------------------------------------------------------ the run


def run_pipeline_benchmark(
    *,
    records: int = 3000,
    spine_size: int = 3000,
    seed: int = 20251124,
    backends: tuple[str, ...] = ("embedded", "kafka"),
    kafka_bootstrap: str | None = None,
    postgres_url: str | None = None,
    ceiling: bool = True,
    part_bytes: int = 1024 * 1024,
    drain_timeout_s: float = 900.0,
    work_dir: Path | None = None,
    write: bool = True,
    results_dir: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the pipeline benchmark; return its figures (also written to bench/results/).

    ``kafka_bootstrap`` defaults to FJO_KAFKA_BOOTSTRAP, FJO_TEST_KAFKA_BOOTSTRAP or
    var/kafka/bootstrap; ``"own"`` starts a broker for this run only (a shared broker's
    other producers add work to the same topics: the stages report it as ``foreign``).
    ``postgres_url`` defaults to FJO_TEST_POSTGRES_URL or var/postgres/url. Without them
    the Kafka backend and the ceiling are skipped (and say so).
    """
    work = (work_dir or ROOT / "var" / "bench-pipeline").resolve()
    work.mkdir(parents=True, exist_ok=True)
    with _broker(kafka_bootstrap, work / "kafka-broker") as bootstrap:
        return _run(
            records=records,
            spine_size=spine_size,
            seed=seed,
            backends=backends,
            kafka_bootstrap=bootstrap,
            postgres_url=postgres_url or _default_postgres(),
            ceiling=ceiling,
            part_bytes=part_bytes,
            drain_timeout_s=drain_timeout_s,
            work=work,
            write=write,
            results_dir=results_dir,
            log=log,
            own_broker=kafka_bootstrap == "own",
        )


@contextlib.contextmanager
def _broker(bootstrap: str | None, state_dir: Path) -> Iterator[str | None]:
    """``"own"``: a broker of this run's own (``scripts/kafka.sh`` in ``state_dir``), so no
    other producer shares its topics; else the address given or the default one."""
    if bootstrap != "own":
        yield bootstrap or _default_bootstrap()
        return
    env = dict(os.environ, FJO_KAFKA_STATE_DIR=str(state_dir))
    script = str(ROOT / "scripts" / "kafka.sh")
    done = subprocess.run(
        [script, "start"], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"scripts/kafka.sh start failed: {done.stderr[-2000:]}")
    try:
        yield done.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([script, "stop"], env=env, capture_output=True, timeout=120, check=False)


def _run(
    *,
    records: int,
    spine_size: int,
    seed: int,
    backends: tuple[str, ...],
    kafka_bootstrap: str | None,
    postgres_url: str | None,
    ceiling: bool,
    part_bytes: int,
    drain_timeout_s: float,
    work: Path,
    write: bool,
    results_dir: Path | None,
    log: Callable[[str], None],
    own_broker: bool,
) -> dict[str, Any]:
    skipped: dict[str, str] = {}
    results: dict[str, Any] = {}
    replay: dict[str, Any] | None = None
    world_dir = work / "world"
    if world_dir.exists():
        shutil.rmtree(world_dir)
    w = build_workload(world_dir, records=records, spine_size=spine_size, seed=seed)
    log(
        f"bench pipeline: world: spine {w.spine_valid}, incoming {w.incoming_valid} valid "
        f"(+{w.incoming_invalid} invalid), {w.incoming_persons} person records"
    )
    for name in backends:
        stack: Stack
        if name == "embedded":
            stack = EmbeddedStack(work / "embedded", echo=log)
        elif name == "kafka":
            if not kafka_bootstrap or not postgres_url:
                skipped["kafka"] = "no Kafka bootstrap address or PostgreSQL URL"
                continue
            stack = KafkaStack(
                work / "kafka", kafka_bootstrap, postgres_url, label="bench-pipeline"
            )
        else:
            raise ValueError(f"unknown backend {name!r} (embedded, kafka)")
        figures, rep = _run_backend(
            stack, w, part_bytes=part_bytes, drain_timeout_s=drain_timeout_s, log=log
        )
        results[name] = figures
        if replay is None or name == "kafka":
            replay = rep
        log(
            f"bench pipeline: {name}: {figures['records_per_s']} records/s end to end, "
            f"latency {figures['latency_ms']['complete']}"
        )
    ceiling_result: dict[str, Any] | None = None
    if not ceiling:
        skipped["ceiling"] = "not asked for"
    elif not kafka_bootstrap:
        skipped["ceiling"] = "no Kafka bootstrap address"
    elif replay is None:
        skipped["ceiling"] = "no pipeline run to take the messages from"
    else:
        # A ceiling is the most the transport carries: the best of a few runs (one run
        # sometimes stalls for seconds right after the pipeline's stack stopped).
        runs = [
            run_ceiling(
                kafka_bootstrap,
                replay,
                work_dir=work / f"ceiling-{i}",
                timeout_s=drain_timeout_s,
                log=log,
            )
            for i in range(CEILING_RUNS)
        ]
        ceiling_result = max(runs, key=lambda r: r["records_per_s"] or 0)
        ceiling_result["runs_records_per_s"] = [r["records_per_s"] for r in runs]
        log(
            f"bench pipeline: ceiling: {ceiling_result['records_per_s']} records/s, "
            f"latency {ceiling_result['latency_ms']['complete']}"
        )
    ratios: dict[str, float] = {}
    if ceiling_result and ceiling_result["records_per_s"]:
        for name, figures in results.items():
            if figures["records_per_s"]:
                ratios[name] = round(figures["records_per_s"] / ceiling_result["records_per_s"], 4)
    payload: dict[str, Any] = {
        "benchmark": "pipeline",
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "environment": {**environment(), "kafka_python": kafka.__version__},
        "parameters": {
            "records_target": records,
            "world": w.config,
            "spine_records": w.spine_valid,
            "incoming_valid": w.incoming_valid,
            "incoming_invalid": w.incoming_invalid,
            "incoming_person_records": w.incoming_persons,
            "mean_line_bytes": w.mean_line_bytes,
            "part_bytes": part_bytes,
            "backends": list(backends),
            "kafka_bootstrap": kafka_bootstrap if "kafka" in results or ceiling_result else None,
            "kafka_broker": "own (scripts/kafka.sh, this run only)" if own_broker else "given",
            "ceiling_producer": PRODUCER_SETTINGS,
            "ceiling_max_records_per_poll": MAX_RECORDS,
            "measures": {
                "received": "ingest.records.v1 envelope time (set while ingest handles the "
                "partner's request)",
                "stored": "access_research_records.received_at (written in the access "
                "worker's batch transaction, before its commit)",
                "linked": "first access_link_results.received_at of the record",
                "complete": "stored, and linked for child and adult-party records",
                "records_per_s": "complete records / (last complete - first push request)",
            },
        },
        "results": results,
        "ceiling": ceiling_result,
        "ratio_to_ceiling": ratios,
        "goal_ratio": 0.5,
        "skipped": skipped,
    }
    if write:
        path = write_result("pipeline", payload, results_dir)
        payload["written_to"] = str(path)
        log(f"bench pipeline: written to {path}")
    return payload


def _default_postgres() -> str | None:
    for var in ("FJO_POSTGRES_URL", "FJO_TEST_POSTGRES_URL"):
        if os.environ.get(var):
            return os.environ[var]
    path = ROOT / "var" / "postgres" / "url"
    return path.read_text().strip() if path.exists() else None


def _interrupt(_sig: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.pipeline``: run and print the summary."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_relay"]:
        _relay(_RelayConfig(**json.loads(argv[1])))
        return
    # SIGTERM (a test's timeout, a CI cancel) unwinds like Ctrl-C: the stacks are stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__)
    parser.add_argument("--records", type=int, default=3000, help="incoming partner records")
    parser.add_argument("--spine-size", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20251124)
    parser.add_argument("--backends", default="embedded,kafka", help="embedded, kafka")
    parser.add_argument(
        "--kafka-bootstrap",
        default=None,
        help="default var/kafka/bootstrap; 'own': a broker of this run's own (scripts/kafka.sh)",
    )
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--part-bytes", type=int, default=1024 * 1024)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results")
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="seconds per drain")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    payload = run_pipeline_benchmark(
        records=args.records,
        spine_size=args.spine_size,
        seed=args.seed,
        backends=tuple(b.strip() for b in args.backends.split(",") if b.strip()),
        kafka_bootstrap=args.kafka_bootstrap,
        postgres_url=args.postgres_url,
        ceiling=not args.no_ceiling,
        part_bytes=args.part_bytes,
        work_dir=args.work_dir,
        results_dir=args.results_dir,
        drain_timeout_s=args.drain_timeout,
        write=not args.no_write,
    )
    summary = {
        name: {k: r[k] for k in ("records_per_s", "latency_ms", "records")}
        for name, r in payload["results"].items()
    }
    print(
        json.dumps(
            {
                "results": summary,
                "ceiling": payload["ceiling"],
                "ratio_to_ceiling": payload["ratio_to_ceiling"],
                "skipped": payload["skipped"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
