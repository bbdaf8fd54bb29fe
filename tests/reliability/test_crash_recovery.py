"""Crash recovery: kill -9 each worker and restart the broker mid-stream; nothing lost or doubled.

Two runs of the same workload (``workload.py``: a spine, then cases, children and adult
parties, with poison messages among them) through the three workers as separate processes
on a dedicated Kafka broker each and fresh PostgreSQL databases:

* the clean run publishes it and lets it drain;
* the disturbed run publishes it in the same chunks, in the same order, and meanwhile
  SIGKILLs the pseudonymise worker, then the link worker, then the access worker (each after
  it settled some but not all of its input: its processed-message markers are polled) and
  restarts each; then it restarts the broker (``scripts/kafka.sh restart``) while records flow.

After each drain the research store (records joined with their current link decision), the
link database's results and the dead-letter topics are snapshotted; the runs must agree, and
every count must reconcile. The spine is drained through link before the incoming records
are published, in both runs, because link decisions depend on the spine a record meets.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contracts.topics import INGEST_RECORDS, LINK_RESULTS, PSEUDONYMISE_RECORDS
from services.runtime.bus.kafka import KafkaBus
from services.runtime.publishing import OutgoingMessage
from tests.reliability.harness import (
    Broker,
    DeadLetter,
    Pipeline,
    TopicSizes,
    dead_letters,
    key_env,
    read_at,
    wait_for,
)
from tests.reliability.workload import Workload, make_workload, publish

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.own_broker,
    pytest.mark.postgres,
    pytest.mark.timeout(900),
]

DRAIN_LIMIT_S = 300.0  # a hang guard only


# ------------------------------------------------------------------------------ the schedule


def spine_chunks(w: Workload) -> list[list[OutgoingMessage]]:
    s, p = w.spine, w.poison
    return [s[:110], [p[0].message], s[110:220], s[220:]]


def incoming_chunks(w: Workload) -> list[list[OutgoingMessage]]:
    i, p = w.incoming, w.poison
    return [
        i[:30],
        [p[1].message, p[2].message],
        i[30:60],
        [p[3].message],
        i[60:90],
        i[90:120],
        i[120:],
    ]


def expected_dead(w: Workload) -> dict[str, int]:
    counts = collections.Counter(p.dlq.split(".")[0] for p in w.poison)
    return {s: counts.get(s, 0) for s in ("pseudonymise", "link", "access")}


def spine_drained(p: Pipeline, w: Workload) -> Callable[[], bool]:
    return lambda: p.count("link", "SELECT count(*) FROM link_spine_records") == len(w.spine)


def drained(p: Pipeline, w: Workload) -> Callable[[], bool]:
    dead = expected_dead(w)

    def check() -> bool:
        progress = p.progress()
        if progress["store"] != w.records or progress["dead_lettered"] != dead:
            return False
        results = p.link_results()
        return len(results) == w.incoming_persons and p.decisions() == results

    return check


# ----------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def workload() -> Workload:
    return make_workload()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return key_env(tmp_path_factory.mktemp("keys"))


@dataclass
class Run:
    snapshot: dict[str, Any]
    letters: list[DeadLetter]
    letter_details: list[dict[str, Any]]
    events: list[str]


def _finish(p: Pipeline, broker: Broker, w: Workload, events: list[str]) -> Run:
    wait_for("drain", drained(p, w), timeout_s=DRAIN_LIMIT_S, progress=p.progress)
    snapshot = p.snapshot()
    letters, details = dead_letters(broker.bootstrap)
    for d in details:
        # The original position named in the letter holds exactly the dead-lettered record.
        d["points_at_original"] = (
            read_at(broker.bootstrap, d["letter"].original_topic, d["partition"], d["offset"])
            == d["value"]
        )
    return Run(snapshot, letters, details, events + p.log)


def _pipeline(tmp: Path, broker: Broker, postgres_url: str, keys: dict[str, str]) -> Pipeline:
    return Pipeline(tmp / "stack", broker, postgres_url, keys)


@pytest.fixture(scope="module")
def clean_run(
    start_broker: Callable[[str], Broker],
    postgres_url: str,
    keys: dict[str, str],
    workload: Workload,
    tmp_path_factory: pytest.TempPathFactory,
) -> Run:
    broker = start_broker("clean")
    p = _pipeline(tmp_path_factory.mktemp("clean"), broker, postgres_url, keys).up()
    producer = KafkaBus(broker.bootstrap).producer()
    try:
        for chunk in spine_chunks(workload):
            publish(producer, chunk)
        wait_for("spine", spine_drained(p, workload), timeout_s=DRAIN_LIMIT_S, progress=p.progress)
        for chunk in incoming_chunks(workload):
            publish(producer, chunk)
        return _finish(p, broker, workload, [])
    finally:
        producer.close()
        p.down()
        broker.stop()


# -------------------------------------------------------------------------------------- tests


def test_a_clean_run_reconciles_and_dead_letters_each_poison_message_with_its_reason(
    clean_run: Run, workload: Workload
) -> None:
    snap = clean_run.snapshot
    published = workload.records + sum(
        1 for p in workload.poison if p.message.topic == INGEST_RECORDS.name
    )
    dead = expected_dead(workload)
    # published = in the store + dead-lettered
    assert len(snap["store"]) == workload.records
    assert published == len(snap["store"]) + dead["pseudonymise"]
    # every incoming person record has a current link decision; spine and cases have none
    decided = [row for row in snap["store"] if row[6] is not None]
    assert len(decided) == workload.incoming_persons
    assert sum(1 for row in decided if row[5] is not None) > workload.incoming_persons // 2
    assert snap["spine"] == len(workload.spine)
    assert snap["incoming_keys"] == workload.incoming_persons
    # each worker settled each distinct input exactly once
    results = sum(seq for _, seq, *_ in snap["link_results"])
    assert snap["markers"] == {
        "pseudonymise": published,
        "link": workload.person_records + dead["link"],
        "access": workload.records + results + dead["access"],
    }
    assert snap["dead_lettered"] == dead
    _assert_poison_dead_lettered(clean_run, workload)


def _assert_poison_dead_lettered(run: Run, w: Workload) -> None:
    by_event = {letter.event_id: letter for letter in run.letters}
    for poison in w.poison:
        event_id = dict(poison.message.headers)["fjo-event-id"].decode()
        letter = by_event.get(event_id)
        assert letter is not None, f"{poison.name} is not in a dead-letter topic"
        assert letter.dlq == poison.dlq, poison.name
        assert letter.original_topic == poison.message.topic, poison.name
        assert letter.error_type, poison.name
    assert {letter.event_id for letter in run.letters} == {
        dict(p.message.headers)["fjo-event-id"].decode() for p in w.poison
    }, "only the poison messages are dead-lettered"
    for d in run.letter_details:
        assert d["points_at_original"], d["letter"]
        assert d["error"], d["letter"]
        assert d["attempts"] == "1", f"poison is not retried: {d['letter']}"


def test_after_kill_9_of_each_worker_and_a_broker_restart_the_store_equals_the_clean_runs(
    clean_run: Run,
    start_broker: Callable[[str], Broker],
    postgres_url: str,
    keys: dict[str, str],
    workload: Workload,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    w = workload
    broker = start_broker("disturbed")
    cluster_id = broker.cluster_id()
    p = _pipeline(tmp_path_factory.mktemp("disturbed"), broker, postgres_url, keys).up()
    producer = KafkaBus(broker.bootstrap).producer()
    events: list[str] = []

    def kill_mid_stream(
        service: str,
        in_flight: Callable[[], bool],
        settled: Callable[[], int],
        total: int,
        unsettled_outputs: Callable[[], int] | None = None,
    ) -> None:
        """SIGKILL ``service`` in the middle of a batch (``in_flight``: effects or outputs
        under way, not yet committed) once it settled some, but not all, of ``total``."""
        wait_for(
            f"{service} mid-batch",
            lambda: settled() > 0 and in_flight(),
            timeout_s=DRAIN_LIMIT_S,
            progress=p.progress,
            interval_s=0.005,
        )
        p.kill(service)
        after = settled()  # what it had committed when it died
        note = f"kill -9 {service} with {after} of {total} settled"
        if unsettled_outputs is not None:
            note += f", {unsettled_outputs()} outputs published but not marked processed"
        events.append(note)
        assert 0 < after < total, f"{service} was not killed mid-stream ({after} of {total})"

    def persons(chunks: list[list[OutgoingMessage]]) -> int:
        return sum(1 for chunk in chunks for m in chunk if w.is_linked(m))

    def content_unsettled() -> int:
        return sizes(PSEUDONYMISE_RECORDS.name) - p.markers("pseudonymise", "processed")

    def results_unsettled() -> int:
        published = p.count("link", "SELECT coalesce(sum(sequence), 0) FROM link_results")
        return sizes(LINK_RESULTS.name) - published

    sizes = TopicSizes(broker.bootstrap)
    try:
        spine, incoming = spine_chunks(w), incoming_chunks(w)
        for chunk in spine:
            publish(producer, chunk)
        kill_mid_stream(
            "pseudonymise",
            lambda: content_unsettled() > 0,
            lambda: p.markers("pseudonymise"),
            sum(len(chunk) for chunk in spine),
            content_unsettled,
        )
        p.restart("pseudonymise")
        wait_for("spine", spine_drained(p, w), timeout_s=DRAIN_LIMIT_S, progress=p.progress)

        for chunk in incoming[:3]:
            publish(producer, chunk)
        kill_mid_stream(
            "link",
            lambda: results_unsettled() > 0,
            lambda: p.markers("link") - len(w.spine),
            persons(incoming[:3]) + expected_dead(w)["link"],
            results_unsettled,
        )
        p.restart("link")

        publish(producer, incoming[3])
        publish(producer, incoming[4])
        kill_mid_stream(
            "access",
            lambda: p.in_transaction("access"),
            lambda: p.count("access", "SELECT count(*) FROM access_link_decisions"),
            persons(incoming[:5]),
        )
        publish(producer, incoming[5])
        p.restart("access")

        # The broker goes down while the workers are busy with the last chunks. (The test's
        # own publisher is closed across the outage: kafka-python 3.0 leaks a socket for each
        # refused reconnect, a ResourceWarning in this process. The workers' are not.)
        pending = persons(incoming[:6]) - len(p.decisions())
        producer.close()
        sizes.close()
        broker.restart()
        events.append(f"broker restarted on {broker.bootstrap}, {pending} decisions pending")
        assert pending > 0, "the broker restart was not mid-stream"
        assert broker.cluster_id() == cluster_id
        producer = KafkaBus(broker.bootstrap).producer()
        publish(producer, incoming[6])
        disturbed = _finish(p, broker, w, events)
    finally:
        producer.close()
        sizes.close()
        p.down()

    print("\n".join(disturbed.events))  # shown with -rA or on failure
    clean = clean_run.snapshot
    snap = disturbed.snapshot
    tokens = [row[0] for row in snap["store"]]
    assert len(tokens) == len(set(tokens)) == w.records, "one row per record token"
    history = collections.Counter((row[0], row[1]) for row in snap["history"])
    assert max(history.values()) == 1, "each link result is kept once"
    assert snap["markers"] == clean["markers"], "each input settled exactly once"
    assert snap["dead_lettered"] == clean["dead_lettered"]
    for part in ("spine", "incoming_keys", "link_results", "history", "store", "link_audit"):
        assert snap[part] == clean[part], f"{part} differs from the clean run's"
    assert sorted(set(disturbed.letters)) == sorted(set(clean_run.letters))
    _assert_poison_dead_lettered(disturbed, w)
