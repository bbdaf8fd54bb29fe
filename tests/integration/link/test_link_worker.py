"""The link worker on a real bus: spine and incoming linkage keys in, link results out."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

from contracts.envelope import Envelope, parse_data
from contracts.events import LinkageKeysPublished, LinkResultPublished, LinkStatus
from contracts.services import Service
from contracts.topics import LINK_RESULTS, PSEUDONYMISE_LINKAGE_KEYS
from services.link.bootstrap import build_worker
from services.link.config import LinkSettings
from services.pseudonymise.domain.keys import KeyRing, MasterKey
from services.pseudonymise.domain.postcode import OnsPostcodeLookup
from services.pseudonymise.domain.split import Pseudonymiser
from services.runtime.bus.api import TopicSpec
from services.runtime.db import make_engine
from services.runtime.publishing import frame, publish_all
from tests.integration.conftest import Platform

ROLES = {
    "id": "record_id",
    "given_name": "forename",
    "surname": "surname",
    "date_of_birth": "date_of_birth",
    "sex": "sex",
    "postcode": "postcode",
    "address": "address",
    "nhs_number": "nhs_number",
}


def _keys_event(p: Pseudonymiser, row: dict[str, str], kind: str, source: str) -> Any:
    """What pseudonymise publishes for ``row`` (the contract's own constructor, as its events
    module uses)."""
    split = p.split(
        {k: v or None for k, v in row.items()}, source=source, record_kind=kind, roles=ROLES
    )
    return LinkageKeysPublished.of(
        split.linkage,
        record_token=split.record_token,
        record_type=kind,
        source=source,
        record_version=1,
        key_version=split.key_version,
    )


def _person(
    i: int, given: str, surname: str, dob: str, sex: str, postcode: str, address: str, nhs: str = ""
) -> dict[str, str]:
    return {
        "id": str(i),
        "given_name": given,
        "surname": surname,
        "date_of_birth": dob,
        "sex": sex,
        "postcode": postcode,
        "address": address,
        "nhs_number": nhs,
    }


def _spine(suffix: str) -> list[dict[str, str]]:
    import random

    rng = random.Random(5)
    forenames = [
        "Rhys",
        "Cerys",
        "Dylan",
        "Ffion",
        "Osian",
        "Seren",
        "Huw",
        "Nia",
        "Tomos",
        "Elin",
        "Gethin",
        "Mali",
        "Iwan",
        "Lowri",
        "Aled",
        "Catrin",
    ]
    surnames = [
        "Jones",
        "Williams",
        "Davies",
        "Evans",
        "Thomas",
        "Roberts",
        "Hughes",
        "Lewis",
        "Morgan",
        "Griffiths",
        "Price",
        "Rees",
    ]
    rows = []
    for i in range(240):
        hh = i // 3
        rows.append(
            _person(
                i,
                rng.choice(forenames),
                rng.choice(surnames),
                f"{rng.randint(1960, 2022)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                rng.choice("MF"),
                f"CF{hh % 30 + 1} {hh % 9 + 1}AB",
                f"{hh} Heol y Nant",
            )
        )
    # A family: a girl whose twin sister is not on the spine, and their mother.
    rows.append(_person(900, "Carys", "Prosser", "2019-05-17", "F", "SA1 2BC", "4 Maes y Coed"))
    rows.append(_person(901, "Bethan", "Prosser", "1990-02-11", "F", "SA1 2BC", "4 Maes y Coed"))
    for r in rows:
        r["id"] = f"spine-{r['id']}{suffix}"
    return rows


def test_records_of_one_person_from_two_sources_get_the_same_alf_and_a_twin_gets_none(
    platform: Platform, tmp_path: Path
) -> None:
    suffix = f"-{uuid.uuid4().hex[:6]}"
    p = Pseudonymiser(
        KeyRing.single(MasterKey(hashlib.sha256(suffix.encode()).digest())), OnsPostcodeLookup([])
    )
    spine = _spine(suffix)
    incoming = [
        (
            "cafcass-cymru",
            "child",
            _person(1, "CARYS", "prosser", "2019-05-17", "F", "sa12bc", "", ""),
        ),
        (
            "cafcass-england",
            "child",
            _person(2, "Carys", "Prosser", "2019-05-17", "F", "SA1 2BC", "4 Maes-y-Coed"),
        ),
        (
            "cafcass-cymru",
            "child",  # the twin, not on the spine
            _person(3, "Ffion", "Prosser", "2019-05-17", "F", "SA1 2BC", "4 Maes y Coed"),
        ),
        (
            "cafcass-cymru",
            "adult-party",  # the mother under a day/month swap
            _person(4, "Bethan", "Prosser", "1990-11-02", "F", "SA1 2BC", ""),
        ),
    ]
    for _, _, r in incoming:
        r["id"] = f"in-{r['id']}{suffix}"
    # A topic of this test's own: the registry's topic is shared by the session's tests.
    topic = f"{PSEUDONYMISE_LINKAGE_KEYS.name}.test{suffix}"
    results_topic = f"{LINK_RESULTS.name}.test{suffix}"
    platform.bus.create_topics([TopicSpec(topic, partitions=3), TopicSpec(results_topic)])
    producer = platform.bus.producer()
    events = [_keys_event(p, r, "spine-person", "wds") for r in spine]
    events += [_keys_event(p, r, kind, source) for source, kind, r in incoming]
    publish_all(
        producer,
        [frame(e, source=Service.PSEUDONYMISE, event_id=uuid.uuid4(), topic=topic) for e in events],
    )
    producer.flush()
    producer.close()
    mine = {e.record_token: e for e in events[len(spine) :]}

    settings = LinkSettings(
        database_url=platform.db_url("link"),
        worker_group=f"link-{uuid.uuid4().hex[:8]}",
        alf_key_file=_alf_key(tmp_path),
        input_topic=topic,
        output_topic=results_topic,
    )
    engine = make_engine(settings.database_url)
    worker = build_worker(settings, platform.bus, engine)
    try:
        idle = 0
        for _ in range(600):
            before = worker.stats.consumed
            worker.run_once(timeout_s=0.5)
            idle = idle + 1 if worker.stats.consumed == before else 0
            if worker.stats.processed >= len(events) and idle >= 6:
                break
    finally:
        worker.close()
        engine.dispose()
    assert worker.stats.processed >= len(events), worker.stats.as_dict()

    def done(seen: list) -> bool:
        return {t for t in _results(seen) if t in mine} == set(mine)

    seen = platform.read_all(results_topic, f"check-{uuid.uuid4().hex[:8]}", until=done)
    latest = {t: r for t, r in _results(seen).items() if t in mine}
    one, two, twin, mother = (latest[e.record_token] for e in events[len(spine) :])
    assert one.alf is not None and one.alf == two.alf
    assert one.status in (
        LinkStatus.EXACT_FIVE_FIELDS,
        LinkStatus.PROBABILISTIC,
        LinkStatus.EXACT_FOUR_FORENAME_VARIANT,
    )
    assert twin.alf is None
    assert mother.alf is not None and mother.alf != one.alf


def _alf_key(tmp_path: Path) -> Path:
    path = tmp_path / "alf.key"
    path.write_text(uuid.uuid4().hex + uuid.uuid4().hex)
    return path


def _results(messages: list) -> dict[str, LinkResultPublished]:
    out: dict[str, LinkResultPublished] = {}
    for m in messages:
        event = parse_data(Envelope.from_bytes(m.value))
        assert isinstance(event, LinkResultPublished)
        prev = out.get(event.record_token)
        if prev is None or event.sequence > prev.sequence:
            out[event.record_token] = event
    return out
