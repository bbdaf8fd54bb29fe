"""A small, deterministic family-court workload for the reliability tests, plus poison.

Spine first (``spine``: households of parents and children on the Welsh Demographic Service,
some moved, some with a maiden name), then what the Cafcass services send about some of
them (``incoming``: cases, their children and adult parties, with typos, missing NHS numbers
and old postcodes, and a few people the spine does not know). Every event is framed the way
ingest frames it (``services.runtime.publishing.frame``, source ingest) with an event id
derived from the record, so two runs publish byte-identical events in the same order.

``poison`` is what must be dead-lettered while the rest flows: an undecodable payload and a
record event whose record breaks its contract on the ingest topic (pseudonymise's DLQ), a
linkage-keys event whose contract is broken (link's DLQ) and an undecodable link result
(access's DLQ).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from contracts.envelope import Envelope
from contracts.events import RECORD_RECEIVED_EVENTS
from contracts.records import PERSON_RECORD_TYPES, RECORD_MODELS, RecordType
from contracts.services import Service
from contracts.topics import INGEST_RECORDS, LINK_RESULTS, PSEUDONYMISE_LINKAGE_KEYS
from services.pseudonymise.config import DEFAULT_POSTCODE_LOOKUP
from services.runtime.bus.api import Producer
from services.runtime.delivery import EVENT_ID_HEADER, TYPE_HEADER
from services.runtime.publishing import OutgoingMessage, frame, publish_all

__all__ = ["Poison", "Workload", "make_workload", "publish"]

_NS = uuid.UUID("5c0ffee0-7e57-4a11-9bad-00000000f10a")
EXTRACTED = "2024-05-01T09:30:00Z"

FEMALE = [
    "Cerys",
    "Sian",
    "Ffion",
    "Megan",
    "Olivia",
    "Amelia",
    "Seren",
    "Eleri",
    "Nia",
    "Lowri",
    "Isla",
    "Ava",
    "Mali",
    "Gwen",
    "Charlotte",
    "Emily",
    "Bethan",
    "Carys",
]
MALE = [
    "Dylan",
    "Rhys",
    "Gethin",
    "Osian",
    "Oliver",
    "Harry",
    "Jack",
    "Tomos",
    "Iwan",
    "George",
    "Noah",
    "Cai",
    "Elis",
    "Owain",
    "Jacob",
    "Leo",
    "Aled",
    "Dafydd",
]
SURNAMES = [
    "Jones",
    "Davies",
    "Williams",
    "Evans",
    "Thomas",
    "Roberts",
    "Hughes",
    "Lewis",
    "Morgan",
    "Griffiths",
    "Edwards",
    "Smith",
    "Price",
    "Jenkins",
    "Powell",
    "Rees",
    "Pritchard",
    "Llewellyn",
    "Vaughan",
    "Owen",
    "Parry",
    "Bowen",
    "Howells",
    "Ellis",
]
STREETS = ["Heol y Frenhines", "Stryd Fawr", "Ffordd yr Eglwys", "Church Road", "High Street",
           "Heol Ddu", "Station Road", "Maes y Coed", "Park Avenue", "Lon Isaf"]  # fmt: skip


def _postcodes() -> list[str]:
    lines = Path(DEFAULT_POSTCODE_LOOKUP).read_text().splitlines()
    rows = [line.split(",")[0] for line in lines if line and not line.startswith(("#", "pcds"))]
    return sorted(rows)


def _nhs(rng: random.Random) -> str:
    while True:
        digits = [rng.randrange(10) for _ in range(9)]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1), strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10:
            return "".join(map(str, digits)) + str(check)


def _typo(rng: random.Random, name: str) -> str:
    i = rng.randrange(1, len(name) - 1)
    return name[:i] + name[i + 1] + name[i] + name[i + 2 :]  # swap two letters


@dataclass(frozen=True)
class Person:
    record_id: str
    forename: str
    surname: str
    dob: date
    sex: int
    nhs: str
    postcode: str
    old_postcode: str | None
    maiden: str | None


@dataclass(frozen=True)
class Poison:
    """A message that must end up in ``dlq`` (and nowhere else)."""

    name: str
    dlq: str
    message: OutgoingMessage


@dataclass
class Workload:
    """What two runs publish identically."""

    spine: list[OutgoingMessage]
    incoming: list[OutgoingMessage]
    poison: list[Poison]
    #: each record's kind, by its record id
    kinds: dict[str, RecordType] = field(default_factory=dict)
    #: event ids of the incoming person records (the ones link links)
    linked: frozenset[str] = frozenset()

    def is_linked(self, message: OutgoingMessage) -> bool:
        """Whether ``message`` is an incoming person record (link decides on it)."""
        return dict(message.headers).get(EVENT_ID_HEADER, b"").decode() in self.linked

    @property
    def records(self) -> int:
        return len(self.spine) + len(self.incoming)

    @property
    def person_records(self) -> int:
        return sum(1 for kind in self.kinds.values() if kind in PERSON_RECORD_TYPES)

    @property
    def incoming_persons(self) -> int:
        return sum(
            1
            for kind in self.kinds.values()
            if kind in PERSON_RECORD_TYPES and kind is not RecordType.SPINE_PERSON
        )


def _event(kind: RecordType, raw: dict[str, Any], delivery: str) -> OutgoingMessage:
    record = RECORD_MODELS[kind].model_validate(raw)
    event = RECORD_RECEIVED_EVENTS[kind](record=record, delivery_id=delivery)
    event_id = uuid.uuid5(_NS, f"{raw['source']}:{kind.value}:{raw['record_id']}:v1")
    return frame(event, source=Service.INGEST, event_id=event_id, delivery_id=delivery)


def make_workload(households: int = 100, cases: int = 34, seed: int = 7) -> Workload:
    """About ``households`` * 3 spine persons and ``cases`` * 6 incoming records."""
    rng = random.Random(seed)
    postcodes = _postcodes()
    families: list[list[Person]] = []
    n = 0

    def person(forename: str, surname: str, dob: date, sex: int, postcode: str, **kw: Any):
        nonlocal n
        n += 1
        return Person(f"WDS-{n:07d}", forename, surname, dob, sex, _nhs(rng), postcode,
                      kw.get("old_postcode"), kw.get("maiden"))  # fmt: skip

    for _ in range(households):
        surname = rng.choice(SURNAMES)
        postcode = rng.choice(postcodes)
        old = rng.choice(postcodes) if rng.random() < 0.3 else None
        mother_dob = date(1975, 1, 1) + timedelta(days=rng.randrange(15 * 365))
        father_dob = mother_dob + timedelta(days=rng.randrange(-1500, 1500))
        maiden = rng.choice(SURNAMES) if rng.random() < 0.4 else None
        family = [
            person(rng.choice(FEMALE), surname, mother_dob, 2, postcode, old_postcode=old,
                   maiden=maiden if maiden != surname else None),
            person(rng.choice(MALE), surname, father_dob, 1, postcode, old_postcode=old),
        ]  # fmt: skip
        first_child = mother_dob + timedelta(days=365 * 20 + rng.randrange(10 * 365))
        for k in range(rng.choice([1, 1, 2])):
            sex = rng.choice([1, 2])
            dob = first_child + timedelta(days=k * rng.randrange(300, 1500))
            if k and rng.random() < 0.15:
                dob = family[-1].dob  # twins
            names = FEMALE if sex == 2 else MALE
            family.append(person(rng.choice(names), surname, dob, sex, postcode))
        families.append(family)

    kinds: dict[str, RecordType] = {}
    spine: list[OutgoingMessage] = []
    for family in families:
        for p in family:
            history = []
            if p.old_postcode:
                moved = p.dob + timedelta(days=365 * 18 if p.dob.year < 2000 else 200)
                history.append({
                    "address": {"line_1": f"{rng.randrange(1, 90)} {rng.choice(STREETS)}",
                                "postcode": p.old_postcode},
                    "from_date": p.dob.isoformat(),
                    "to_date": (moved - timedelta(days=1)).isoformat(),
                })  # fmt: skip
            else:
                moved = p.dob
            history.append({
                "address": {"line_1": f"{rng.randrange(1, 90)} {rng.choice(STREETS)}",
                            "postcode": p.postcode},
                "from_date": moved.isoformat(),
            })  # fmt: skip
            raw = {
                "source": "wds", "record_id": p.record_id, "record_version": 1,
                "extracted_at": EXTRACTED, "forename": p.forename, "surname": p.surname,
                "previous_surnames": [p.maiden] if p.maiden else [],
                "date_of_birth": p.dob.isoformat(), "sex": p.sex, "nhs_number": p.nhs,
                "address_history": history,
            }  # fmt: skip
            kinds[p.record_id] = RecordType.SPINE_PERSON
            spine.append(_event(RecordType.SPINE_PERSON, raw, "dlv-spine"))

    incoming: list[OutgoingMessage] = []
    chosen = rng.sample(families, cases)
    for c, family in enumerate(chosen):
        source = "cafcass-cymru" if c % 3 else "cafcass-england"
        case_id = f"CASE-R-{c:05d}"
        delivery = f"dlv-{source}"
        children = family[2:]
        unknown_child = c % 8 == 0  # a child the spine does not know
        if unknown_child:
            fresh = Person(f"X-{c}", rng.choice(FEMALE), rng.choice(SURNAMES),
                           date(2016, 1, 4) + timedelta(days=rng.randrange(2000)), 2,
                           _nhs(rng), rng.choice(postcodes), None, None)  # fmt: skip
            children = [*children, fresh]
        child_ids = [f"CH-R-{c:05d}-{k}" for k in range(len(children))]
        received = date(2019, 1, 7) + timedelta(days=rng.randrange(1500))
        raw_case = {
            "source": source, "record_id": case_id, "record_version": 1,
            "extracted_at": EXTRACTED, "law_type": rng.choice(["public", "private"]),
            "received_date": received.isoformat(),
            "outcomes": [{"child_record_id": cid, "order_made": "care-order",
                          "order_date": (received + timedelta(days=200)).isoformat()}
                         for cid in child_ids],
        }  # fmt: skip
        kinds[case_id] = RecordType.CASE
        incoming.append(_event(RecordType.CASE, raw_case, delivery))
        for cid, child in zip(child_ids, children, strict=True):
            forename = child.forename
            if rng.random() < 0.15:
                forename = _typo(rng, forename)
            raw = {
                "source": source, "record_id": cid, "record_version": 1,
                "extracted_at": EXTRACTED, "case_id": case_id, "forename": forename,
                "surname": child.surname, "date_of_birth": child.dob.isoformat(),
                "sex": child.sex, "address": {"line_1": "1 Heol y Frenhines",
                                              "postcode": child.postcode},
            }  # fmt: skip
            if rng.random() < 0.8:
                raw["nhs_number"] = child.nhs
            kinds[cid] = RecordType.CHILD
            incoming.append(_event(RecordType.CHILD, raw, delivery))
        for a, (adult, role) in enumerate(
            zip(family[:2], ["respondent", "applicant"], strict=True)
        ):
            ad_id = f"AD-R-{c:05d}-{a}"
            # Mothers known by their maiden name to the court; some on an old address.
            surname = adult.maiden if adult.maiden and rng.random() < 0.5 else adult.surname
            postcode = adult.old_postcode if adult.old_postcode and rng.random() < 0.5 else None
            raw = {
                "source": source, "record_id": ad_id, "record_version": 1,
                "extracted_at": EXTRACTED, "case_id": case_id, "role": role,
                "forename": adult.forename, "surname": surname,
                "date_of_birth": adult.dob.isoformat(), "sex": adult.sex,
                "address": {"line_1": "2 Stryd Fawr", "postcode": postcode or adult.postcode},
                "relationship_to_child": "mother" if adult.sex == 2 else "father",
            }  # fmt: skip
            if rng.random() < 0.6:
                raw["nhs_number"] = adult.nhs
            kinds[ad_id] = RecordType.ADULT_PARTY
            incoming.append(_event(RecordType.ADULT_PARTY, raw, delivery))
    linked = frozenset(
        dict(m.headers)[EVENT_ID_HEADER].decode()
        for m in incoming
        if dict(m.headers)[TYPE_HEADER] != b"ingest.case-received.v1"
    )
    return Workload(spine, incoming, _poison(), kinds, linked)


def _poison() -> list[Poison]:
    def ids(name: str) -> tuple[tuple[str, bytes], ...]:
        return ((EVENT_ID_HEADER, str(uuid.uuid5(_NS, "poison:" + name)).encode()),)

    undecodable = OutgoingMessage(
        INGEST_RECORDS.name,
        "poison-undecodable",
        b"\x00\xff{not an envelope at all",
        ((TYPE_HEADER, b"ingest.child-received.v1"), *ids("undecodable")),
    )
    # A well-formed envelope whose child record breaks its contract (sex "purple").
    good = _event(
        RecordType.CHILD,
        {"source": "cafcass-cymru", "record_id": "CH-POISON-1", "record_version": 1,
         "extracted_at": EXTRACTED, "case_id": "CASE-POISON-1", "forename": "Nobody",
         "surname": "Poison", "sex": 2},
        "dlv-poison",
    )  # fmt: skip
    doc = json.loads(good.value)
    doc["data"]["record"]["sex"] = "purple"
    broken_record = OutgoingMessage(
        INGEST_RECORDS.name,
        good.key,
        json.dumps(doc).encode(),
        ((TYPE_HEADER, b"ingest.child-received.v1"), *ids("broken-record")),
    )
    # A linkage-keys envelope without its keys (link's contract).
    envelope = Envelope.from_bytes(good.value)
    keys_doc = json.loads(envelope.to_bytes())
    keys_doc["type"] = "pseudonymise.linkage-keys-published.v1"
    keys_doc["data"] = {"record_token": "not-a-token"}
    broken_keys = OutgoingMessage(
        PSEUDONYMISE_LINKAGE_KEYS.name,
        "poison-keys",
        json.dumps(keys_doc).encode(),
        ((TYPE_HEADER, b"pseudonymise.linkage-keys-published.v1"), *ids("broken-keys")),
    )
    undecodable_result = OutgoingMessage(
        LINK_RESULTS.name,
        "poison-result",
        b"\xfe\xfe not json",
        ((TYPE_HEADER, b"link.result-published.v1"), *ids("undecodable-result")),
    )
    return [
        Poison("undecodable record event", "pseudonymise.dead-letters.v1", undecodable),
        Poison("record breaking its contract", "pseudonymise.dead-letters.v1", broken_record),
        Poison("linkage keys breaking their contract", "link.dead-letters.v1", broken_keys),
        Poison("undecodable link result", "access.dead-letters.v1", undecodable_result),
    ]


def publish(producer: Producer, messages: Iterable[OutgoingMessage]) -> int:
    """Publish and flush (so each chunk is on the broker before the test moves on)."""
    count = publish_all(producer, messages)
    producer.flush()
    return count
