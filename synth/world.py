"""The synthetic family-court world: a spine with address history and two Cafcass feeds.

Built on the synthetic population (``synth.population``: households, twins,
siblings close in age, maiden and married surnames, moves, Welsh names, a share of people
not on the spine) and its damage model (typos, nicknames, Welsh spellings, day/month swaps,
placeholder dates of birth, "Baby", forename/surname swaps, old addresses, missing NHS
numbers). This module adds what a family court records around those people: public and
private law cases with orders sought and made, the children who are their subjects, the
adults who are parties (mostly birth parents) and how they relate to each child, and the
hearings. People live in the unit postcodes of the shipped synthetic postcode lookup, so
every undamaged postcode resolves to an LSOA and a local authority, and a case goes to
Cafcass Cymru when the family lives in Wales, to Cafcass England otherwise.

Everything is pure and deterministic by seed: ``build_world(WorldConfig(...))`` returns the
records as plain dicts (valid against their contracts), a few deliberately invalid lines per
feed with the reason each must be refused for, and the ground truth: every person record
(spine, child, adult party) mapped to its true person and, if on the spine, spine id.
``write_world(world, folder)`` writes it as NDJSON per partner and record type.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from contracts.records import normalise_postcode
from synth.population import REFERENCE_DATE, Person, SynthConfig, generate, incoming_row

__all__ = [
    "FEEDS",
    "InvalidLine",
    "TruthRow",
    "World",
    "WorldConfig",
    "authority_names",
    "build_world",
    "load_postcode_lookup",
    "write_world",
]

ENGLAND = "cafcass-england"
CYMRU = "cafcass-cymru"
WDS = "wds"
CASE_RECORD_TYPES = ("case", "child", "adult-party", "party-child-relationship", "hearing")
FEEDS: tuple[tuple[str, str], ...] = (
    (WDS, "spine-person"),
    *((source, kind) for source in (CYMRU, ENGLAND) for kind in CASE_RECORD_TYPES),
)
"""Every (partner, record type) feed, in the order partners push them (spine first)."""

EXTRACTED_AT = "2025-01-02T02:00:00Z"
_FIRST_CASE = date(2012, 1, 1)
_LAST_CASE = REFERENCE_DATE - timedelta(days=60)
_PREFIX = {ENGLAND: "EN", CYMRU: "CY"}


@dataclass(frozen=True)
class WorldConfig:
    """Sizes of the world; the defaults make a demo that runs in a few minutes on 2 cores."""

    seed: int = 20251124
    spine_size: int = 3_000
    cases: int = 180
    recurrence_share: float = 0.12
    """Share of families that come back to court with a later case (same people again)."""
    invalid_per_feed: int = 2
    """Deliberately invalid lines per Cafcass feed (and the spine), to show quarantine."""


@dataclass(frozen=True)
class TruthRow:
    """Who a person record really is: the population's person id and the spine id, if any."""

    source: str
    record_type: str
    record_id: str
    person_id: int
    spine_id: str  # "" when the person is not on the spine


@dataclass(frozen=True)
class InvalidLine:
    """A line the contract must refuse, and why (a pydantic error type, or ``json_invalid``)."""

    source: str
    record_type: str
    line: str
    reason: str
    error_type: str


@dataclass
class World:
    """Valid records per feed, invalid lines per feed, the truth, and the people behind them."""

    config: WorldConfig
    records: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    invalid: list[InvalidLine] = field(default_factory=list)
    truth: list[TruthRow] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Valid and invalid lines per ``source/record_type``."""
        bad = Counter(f"{i.source}/{i.record_type}" for i in self.invalid)
        return {
            f"{s}/{k}": {"valid": len(rows), "invalid": bad[f"{s}/{k}"]}
            for (s, k), rows in self.records.items()
        }


def load_postcode_lookup(path: Path | None = None) -> dict[str, tuple[str, str]]:
    """The shipped synthetic ONSPD-shaped lookup: unit postcode -> (LSOA, local authority)."""
    if path is None:
        from services.pseudonymise.data import SYNTHETIC_POSTCODE_LOOKUP

        path = SYNTHETIC_POSTCODE_LOOKUP
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    return {row["pcds"]: (row["lsoa21"], row["oslaua"]) for row in csv.DictReader(lines)}


def authority_names() -> dict[str, str]:
    from services.pseudonymise.data.make_postcode_lookup import AUTHORITIES

    return {code: name for code, name, _districts in AUTHORITIES}


def _age(p: Person, on: date) -> float:
    return (on - p.dob).days / 365.25


def _day(rng: random.Random, lo: date, hi: date) -> date:
    return lo + timedelta(days=rng.randint(0, max(0, (hi - lo).days)))


@dataclass
class _Family:
    mother: Person | None
    father: Person | None
    children: list[Person]
    partner: Person | None = None
    """The mother's new partner living with the family (a step-parent to the children)."""


class _Builder:
    def __init__(self, config: WorldConfig) -> None:
        self.c = config
        self.lookup = load_postcode_lookup()
        self.la_names = authority_names()
        data = generate(
            SynthConfig(
                seed=config.seed,
                spine_size=config.spine_size,
                incoming_size=0,
                postcode_units=tuple(sorted(self.lookup)),
            )
        )
        self.synth_config = SynthConfig(seed=config.seed)
        self.people = data.people
        self.spine_rows = data.spine
        by_nhs = {p.nhs: p for p in self.people}
        self.spine_id: dict[int, str] = {by_nhs[r["nhs_number"]].pid: r["id"] for r in data.spine}
        self.rng = random.Random(config.seed + 7)
        self.damage_rng = random.Random(config.seed + 11)
        self.world = World(config=config, people=self.people)
        self.records = self.world.records
        for feed in FEEDS:
            self.records[feed] = []
        self.serial: Counter[str] = Counter()

    # ------------------------------------------------------------------------------ spine

    def spine(self) -> None:
        people = {p.pid: p for p in self.people}
        by_nhs = {p.nhs: p for p in self.people}
        rows = self.records[(WDS, "spine-person")]
        for row in self.spine_rows:
            p = by_nhs[row["nhs_number"]]
            current = (row["postcode"], row["address"])
            upto = p.addresses.index(current) if current in p.addresses else len(p.addresses) - 1
            periods = self._periods(p, p.addresses[: upto + 1])
            forenames = row["given_name"].split()
            record: dict[str, Any] = {
                "source": WDS,
                "record_id": row["id"],
                "record_version": 1,
                "extracted_at": EXTRACTED_AT,
                "forename": forenames[0],
                "surname": row["surname"],
                "date_of_birth": row["date_of_birth"],
                "sex": row["sex"],
                "nhs_number": row["nhs_number"],
                "address_history": periods,
            }
            if len(forenames) > 1:
                record["middle_names"] = " ".join(forenames[1:])
            if p.previous_surnames:
                record["previous_surnames"] = list(p.previous_surnames)
            rows.append(record)
            self._truth(WDS, "spine-person", row["id"], people[p.pid])

    def _periods(self, p: Person, addresses: list[tuple[str, str]]) -> list[dict[str, Any]]:
        # Moves are spread between the first registration and the reference date.
        start = max(p.dob, date(1995, 1, 1))
        span = max(1, (REFERENCE_DATE - start).days)
        n = len(addresses)
        cuts = [start + timedelta(days=span * (i + 1) // (n + 1)) for i in range(n - 1)]
        froms = [start, *cuts]
        periods: list[dict[str, Any]] = []
        for i, (postcode, line) in enumerate(addresses):
            period: dict[str, Any] = {
                "address": {"line_1": line, "postcode": postcode},
                "from_date": froms[i].isoformat(),
            }
            if i + 1 < n:
                period["to_date"] = (froms[i + 1] - timedelta(days=1)).isoformat()
            periods.append(period)
        return periods

    # ------------------------------------------------------------------------------ cases

    def families(self) -> list[_Family]:
        households: dict[int, list[Person]] = defaultdict(list)
        for p in self.people:
            households[p.household].append(p)
        families: list[_Family] = []
        people = self.people
        for members in households.values():
            children = sorted((p for p in members if not p.parent), key=lambda p: p.dob)
            if not children or _age(children[-1], REFERENCE_DATE) > 17.5:
                continue
            # The parents of the youngest child (a relative's child is in the care of the
            # household's mother); a grandmother is not the mother.
            youngest = children[-1]
            mother = (
                people[youngest.mother]
                if youngest.mother is not None
                else next((p for p in members if p.role == "parent" and p.sex == "F"), None)
            )
            father = people[youngest.father] if youngest.father is not None else None
            partner = next((p for p in members if p.role == "partner"), None)
            families.append(_Family(mother, father, children, partner))
        return families

    def cases(self) -> None:
        r = self.rng
        families = self.families()
        r.shuffle(families)
        made = 0
        owed = 0.0
        i = 0
        while made < self.c.cases and families:
            family = families[i % len(families)]
            i += 1
            if i > 20 * self.c.cases:
                break
            youngest = family.children[-1]
            lo = max(_FIRST_CASE, youngest.dob + timedelta(days=r.choice((3, 20, 200, 700))))
            if lo >= _LAST_CASE:
                continue
            received = _day(r, lo, _LAST_CASE)
            if not self._case(family, received):
                continue
            made += 1
            # The family comes back: a later case about the same (and newer) children. Owed
            # returns accumulate at recurrence_share per case and are paid by the first case
            # early enough to have a later one, so the share holds in a small world too (a
            # draw per case left some seeds' 24-case worlds without any return).
            owed += self.c.recurrence_share
            last_start = _LAST_CASE - timedelta(days=400)
            if made < self.c.cases and owed >= 1 and received < last_start:
                latest = min(received + timedelta(days=1500), _LAST_CASE - timedelta(days=1))
                later = _day(r, received + timedelta(days=400), latest)
                if self._case(family, later):
                    made += 1
                    owed -= 1

    def _case(self, family: _Family, received: date) -> bool:
        r = self.rng
        subjects = [c for c in family.children if c.dob < received and _age(c, received) < 18]
        if not subjects:
            return False
        home_postcode = subjects[-1].addresses[-1][0]
        _lsoa, la = self.lookup.get(home_postcode, ("", "W06000015"))
        source = CYMRU if la.startswith("W") else ENGLAND
        baby = _age(subjects[-1], received) < 1
        public = r.random() < (0.8 if baby else 0.4)
        law = "public" if public else "private"
        prefix = _PREFIX[source]
        self.serial[source] += 1
        n = self.serial[source]
        case_id = f"{prefix}-CASE-{n:06d}"
        court = f"{self.la_names.get(la, 'Family')} Family Court"
        issued = received - timedelta(days=r.randint(0, 6))
        first = issued + timedelta(days=r.randint(5, 28))
        weeks = r.gauss(30, 10) if public else r.gauss(25, 12)
        final = first + timedelta(days=max(14, int(weeks * 7)))
        closed = final + timedelta(days=r.randint(0, 40))
        still_open = closed > REFERENCE_DATE
        if public:
            orders = ["s31-care", "s38-interim-care"]
            u = r.random()
            if u < 0.15:
                orders = ["s31-supervision", "s38-interim-supervision"]
            elif u < 0.22:
                orders = ["s44-emergency-protection", "s31-care", "s38-interim-care"]
            elif u < 0.25:
                orders = ["s36-education-supervision"]
        else:
            orders = ["s8-child-arrangements"]
            u = r.random()
            if u < 0.15:
                orders.append("s8-prohibited-steps")
            elif u < 0.22:
                orders = ["s8-specific-issue"]
            elif u < 0.27:
                orders.append("s4-parental-responsibility")

        children = [self._child(source, case_id, c, received, public) for c in subjects]
        adults = self._adults(source, case_id, family, subjects, received, public)
        outcomes: list[dict[str, Any]] = []
        if not still_open:
            for child_id in children:
                outcomes.append(
                    {
                        "child_record_id": child_id,
                        "order_made": self._order_made(public, orders),
                        "order_date": final.isoformat(),
                    }
                )
        case: dict[str, Any] = {
            "source": source,
            "record_id": case_id,
            "record_version": 1,
            "extracted_at": EXTRACTED_AT,
            "court_case_number": f"{court[:2].upper()}{received:%y}{'C' if public else 'P'}"
            f"{r.randint(1, 99999):05d}",
            "law_type": law,
            "orders_sought": orders,
            "applicant_type": "local-authority"
            if public
            else r.choice(("parent", "parent", "other-relative")),
            "local_authority_code": la,
            "court": court,
            "received_date": received.isoformat(),
            "issued_date": issued.isoformat(),
            "first_hearing_date": first.isoformat(),
            "outcomes": outcomes,
        }
        if not still_open:
            case["final_hearing_date"] = final.isoformat()
            case["closed_date"] = closed.isoformat()
        if r.random() < 0.05:
            case.pop("court_case_number")  # recording completeness is not perfect
        self.records[(source, "case")].append(case)
        self._hearings(source, case_id, court, public, first, final, still_open)
        for adult_id, relationship, pr in adults:
            for child_id in children:
                self.serial[f"{source}/rel"] += 1
                rel: dict[str, Any] = {
                    "source": source,
                    "record_id": f"{prefix}-REL-{self.serial[f'{source}/rel']:06d}",
                    "record_version": 1,
                    "extracted_at": EXTRACTED_AT,
                    "case_id": case_id,
                    "adult_record_id": adult_id,
                    "child_record_id": child_id,
                    "relationship": relationship,
                    "parental_responsibility": pr,
                }
                self.records[(source, "party-child-relationship")].append(rel)
        return True

    def _order_made(self, public: bool, orders: list[str]) -> str:
        r = self.rng.random()
        if public:
            if "s36-education-supervision" in orders:
                return "education-supervision-order" if r < 0.8 else "no-order"
            table = (
                (0.42, "care-order"),
                (0.55, "placement-order"),
                (0.70, "supervision-order"),
                (0.84, "special-guardianship-order"),
                (0.93, "child-arrangements-order"),
                (0.97, "no-order"),
                (1.0, "withdrawn"),
            )
        else:
            table = (
                (0.66, "child-arrangements-order"),
                (0.72, "prohibited-steps-order"),
                (0.76, "specific-issue-order"),
                (0.80, "parental-responsibility-order"),
                (0.87, "no-order"),
                (0.97, "withdrawn"),
                (1.0, "refused"),
            )
        return next(order for cut, order in table if r < cut)

    def _person_fields(self, p: Person, record_id: str) -> dict[str, Any]:
        """Identifiers of ``p`` as the court recorded them (the benchmark's damage model)."""
        row = incoming_row(p, record_id, self.damage_rng, self.people, self.synth_config)
        out: dict[str, Any] = {}
        for key, name in (("given_name", "forename"), ("surname", "surname")):
            if row[key]:
                out[name] = row[key]
        if row["date_of_birth"]:
            out["date_of_birth"] = row["date_of_birth"]
        if row["sex"]:
            out["sex"] = row["sex"]
        if row["nhs_number"]:
            nhs = row["nhs_number"]
            out["nhs_number"] = (
                f"{nhs[:3]} {nhs[3:6]} {nhs[6:]}" if self.rng.random() < 0.3 else nhs
            )
        address: dict[str, Any] = {}
        if row["address"]:
            address["line_1"] = row["address"]
        # A damaged postcode that no longer has a postcode's shape is left out, as a partner
        # system with a format check would; one with the shape but a typo stays in.
        postcode = normalise_postcode(row["postcode"]) if row["postcode"] else None
        if postcode is not None:
            address["postcode"] = row["postcode"]
        if address:
            out["address"] = address
        return out

    def _child(self, source: str, case_id: str, p: Person, on: date, public: bool) -> str:
        r = self.rng
        self.serial[f"{source}/child"] += 1
        record_id = f"{_PREFIX[source]}-CH-{self.serial[f'{source}/child']:06d}"
        record: dict[str, Any] = {
            "source": source,
            "record_id": record_id,
            "record_version": 1,
            "extracted_at": EXTRACTED_AT,
            "case_id": case_id,
            **self._person_fields(p, record_id),
        }
        if len(p.forenames) > 1 and record.get("forename") == p.forenames[0] and r.random() < 0.5:
            record["middle_names"] = " ".join(p.forenames[1:])
        if r.random() < 0.9:
            record["ethnicity"] = r.choices(
                ("white-british", "white-other", "mixed-white-and-black-caribbean",
                 "asian-pakistani", "black-african", "mixed-other", "not-stated", "unknown"),
                weights=(72, 6, 5, 4, 3, 4, 3, 3),
            )[0]  # fmt: skip
        if r.random() < 0.8:
            record["disability"] = r.random() < 0.08
        infant = _age(p, on) < 1
        if public:
            situation = r.choices(
                ("with-mother", "with-both-parents", "foster-care", "with-relative-or-friend",
                 "hospital", "mother-and-baby-placement", "residential-care"),
                weights=(30, 15, 25, 12, 8 * infant, 8 if infant else 1, 0 if infant else 3),
            )[0]  # fmt: skip
        else:
            situation = r.choices(
                ("with-mother", "with-father", "with-both-parents", "with-relative-or-friend"),
                weights=(60, 20, 10, 10),
            )[0]
        record["living_situation"] = situation
        if r.random() < 0.7:
            record["additional_needs"] = r.random() < 0.12
        self.records[(source, "child")].append(record)
        self._truth(source, "child", record_id, p)
        return record_id

    def _adults(
        self,
        source: str,
        case_id: str,
        family: _Family,
        subjects: list[Person],
        on: date,
        public: bool,
    ) -> list[tuple[str, str, bool]]:
        r = self.rng
        parties: list[tuple[Person, str, str, bool]] = []  # person, relationship, role, PR
        if family.mother is not None:
            role = "respondent" if public or r.random() < 0.35 else "applicant"
            parties.append((family.mother, "mother", role, True))
        if family.father is not None and r.random() < (0.7 if public else 0.95):
            role = (
                "respondent"
                if public or (parties and parties[0][2] == "applicant")
                else "applicant"
            )
            parties.append((family.father, "father", role, r.random() < 0.85))
        if family.partner is not None and r.random() < 0.5:
            parties.append(
                (family.partner, "step-parent", "respondent" if public else "other", False)
            )
        out: list[tuple[str, str, bool]] = []
        for p, relationship, role, pr in parties:
            self.serial[f"{source}/adult"] += 1
            record_id = f"{_PREFIX[source]}-AD-{self.serial[f'{source}/adult']:06d}"
            fields = self._person_fields(p, record_id)
            record: dict[str, Any] = {
                "source": source,
                "record_id": record_id,
                "record_version": 1,
                "extracted_at": EXTRACTED_AT,
                "case_id": case_id,
                **fields,
                "role": role,
                "relationship_to_child": relationship,
                "parental_responsibility": pr,
                "legal_representation": r.random() < (0.9 if public else 0.45),
                "litigation_issues": r.random() < 0.06,
            }
            if p.previous_surnames and r.random() < 0.5:
                record["previous_surnames"] = list(p.previous_surnames)
            self.records[(source, "adult-party")].append(record)
            self._truth(source, "adult-party", record_id, p)
            out.append((record_id, relationship, pr))
        return out

    def _hearings(
        self,
        source: str,
        case_id: str,
        court: str,
        public: bool,
        first: date,
        final: date,
        still_open: bool,
    ) -> None:
        r = self.rng
        if public:
            plan = ["case-management", "interim", "irh", "final"]
            if r.random() < 0.4:
                plan.insert(2, "interim")
        else:
            plan = ["fhdra", "dra", "final"] if r.random() < 0.6 else ["fhdra", "final"]
        span = max(1, (final - first).days)
        for i, kind in enumerate(plan):
            day = first + timedelta(days=span * i // max(1, len(plan) - 1))
            future = day > REFERENCE_DATE
            if future:
                status, outcome = "listed", None
            else:
                u = r.random()
                status = "effective" if u < 0.82 else ("adjourned" if u < 0.93 else "vacated")
                outcome = {
                    "effective": "final-order-made" if kind == "final" else "directions-given",
                    "adjourned": "adjourned",
                    "vacated": None,
                }[status]
                if status == "effective" and kind == "interim":
                    outcome = "interim-order-made"
            if still_open and kind == "final" and not future:
                status, outcome = "listed", None
            self.serial[f"{source}/hearing"] += 1
            record: dict[str, Any] = {
                "source": source,
                "record_id": f"{_PREFIX[source]}-HR-{self.serial[f'{source}/hearing']:06d}",
                "record_version": 1,
                "extracted_at": EXTRACTED_AT,
                "case_id": case_id,
                "hearing_type": kind,
                "hearing_date": day.isoformat(),
                "status": status,
                "court": court,
            }
            if kind == "final" and public and r.random() < 0.3:
                record["end_date"] = (day + timedelta(days=r.randint(1, 4))).isoformat()
            if outcome is not None:
                record["outcome"] = outcome
            self.records[(source, "hearing")].append(record)

    def _truth(self, source: str, record_type: str, record_id: str, p: Person) -> None:
        self.world.truth.append(
            TruthRow(source, record_type, record_id, p.pid, self.spine_id.get(p.pid, ""))
        )

    # --------------------------------------------------------------------------- invalid

    def invalid(self) -> None:
        n = self.c.invalid_per_feed
        for (source, kind), rows in self.records.items():
            if not rows:
                continue
            for i in range(n):
                base = dict(rows[(i * 7919) % len(rows)])
                base["record_id"] = f"{base['record_id']}-BAD{i + 1}"
                line, reason, error = _spoil(kind, base, i)
                self.world.invalid.append(InvalidLine(source, kind, line, reason, error))


def _spoil(kind: str, record: dict[str, Any], i: int) -> tuple[str, str, str]:
    """Make ``record`` invalid in one of a few realistic ways; (line, reason, error type)."""
    variant = i % 4
    if variant == 3:
        text = json.dumps(record, ensure_ascii=False)
        return text[: len(text) // 2], "truncated line (not JSON)", "json_invalid"
    if kind in ("child", "adult-party", "spine-person"):
        if variant == 0:
            record["date_of_birth"] = "2031-05-17"
            return _line(record), "date of birth in the future", "date_in_future"
        if variant == 1:
            record["nhs_number"] = "12345 678"
            return _line(record), "NHS number not 10 digits", "nhs_number_format"
        record["sex"] = "X"
        return _line(record), "unknown sex code", "sex_code"
    if kind == "case":
        if variant == 0:
            record["law_type"] = "private" if record["law_type"] == "public" else "public"
            return (
                _line(record),
                "orders sought do not match the law type",
                "order_law_type_mismatch",
            )
        if variant == 1:
            record["received_date"] = "04/03/2019"
            return _line(record), "date not written YYYY-MM-DD", "date_format"
        record.pop("law_type")
        return _line(record), "law type missing", "missing"
    if kind == "hearing":
        if variant == 0:
            record["end_date"] = "2001-01-01"
            return _line(record), "hearing ends before it starts", "date_order"
        if variant == 1:
            record["status"] = "postponed"
            return _line(record), "unknown hearing status", "enum"
        record.pop("hearing_date")
        return _line(record), "hearing date missing", "missing"
    # party-child-relationship
    if variant == 0:
        record["relationship"] = "neighbour"
        return _line(record), "unknown relationship", "enum"
    if variant == 1:
        record["child_record_id"] = "CH 0001"
        return _line(record), "record id with a space", "string_pattern_mismatch"
    record.pop("adult_record_id")
    return _line(record), "adult record id missing", "missing"


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False)


def build_world(config: WorldConfig | None = None) -> World:
    """The whole world from one seed: spine, both agencies' feeds, invalid lines, truth."""
    b = _Builder(config or WorldConfig())
    b.spine()
    b.cases()
    b.invalid()
    return b.world


def write_world(world: World, folder: Path) -> dict[str, Path]:
    """Write ``<folder>/<source>/<record_type>.ndjson`` (valid lines, then the invalid ones),
    ``truth.csv``, ``invalid.json`` and ``world.json``; return the feed files by key.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    bad: dict[tuple[str, str], list[InvalidLine]] = defaultdict(list)
    for line in world.invalid:
        bad[(line.source, line.record_type)].append(line)
    invalid_index: list[dict[str, Any]] = []
    for (source, kind), rows in world.records.items():
        path = folder / source / f"{kind}.ndjson"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="\n") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
            for n, line in enumerate(bad[(source, kind)], start=len(rows) + 1):
                out.write(line.line + "\n")
                invalid_index.append(
                    {**asdict(line), "file": str(path.relative_to(folder)), "line_no": n}
                )
        files[f"{source}/{kind}"] = path
    with (folder / "truth.csv").open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["source", "record_type", "record_id", "person_id", "spine_id"])
        for t in world.truth:
            writer.writerow([t.source, t.record_type, t.record_id, t.person_id, t.spine_id])
    (folder / "invalid.json").write_text(
        json.dumps(invalid_index, indent=1, ensure_ascii=False) + "\n"
    )
    summary = {
        "config": asdict(world.config),
        "feeds": world.counts(),
        "truth_rows": len(world.truth),
    }
    (folder / "world.json").write_text(json.dumps(summary, indent=2) + "\n")
    return files
