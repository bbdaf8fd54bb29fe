"""One run of the workload on a stack (``fjo.stack``) and what is measured of it: every
incoming record followed from ingest's envelope to access's rows, per stage the records each
worker settled and its CPU, latencies and the messages the ceiling replays."""

from __future__ import annotations

import json
import math
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bench.pipeline.workload import ISSUER, Workload, push_feeds
from contracts.records import PERSON_RECORD_TYPES
from contracts.topics import (
    INGEST_QUARANTINE,
    INGEST_RECORDS,
    LINK_RESULTS,
    PSEUDONYMISE_LINKAGE_KEYS,
    PSEUDONYMISE_RECORDS,
    TOPICS,
)
from fjo.stack.api import Stack
from services.runtime.bus.api import Headers

__all__ = ["percentiles", "rate", "run_on"]

DEAD_LETTER_TOPICS = tuple(d for t in TOPICS for d in t.dead_letter_topics)
MARKER_TABLES = {
    "pseudonymise": "processed_messages",
    "link": "processed_messages",
    "access": "access_processed_messages",
}
KEY_VERSION = 1  # the stacks' dev key ring holds one master key, version 1


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


def percentiles(values: Sequence[float]) -> dict[str, float] | None:
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


def rate(n: int, seconds: float) -> float | None:
    return round(n / seconds, 1) if seconds > 0 else None


def run_on(
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
        spine_receipts = push_feeds(stack.url("ingest-api"), issuer, w.spine, part_bytes)
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
        receipts = push_feeds(stack.url("ingest-api"), issuer, w.incoming, part_bytes)
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
    figures["push_records_per_s"] = rate(accepted, pushed_s)
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
        "records_per_s": rate(len(complete_lat), last - t_push),
        "latency_ms": {
            "complete": percentiles(complete_lat),
            "stored": percentiles(store_lat),
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
                "records_per_s": rate(len(stamps), last - first),
                "records_per_s_from_first_push": rate(len(stamps), last),
            }
    return out
