"""A deterministic synthetic population, its spine and Cafcass-like incoming records.

Pure: ``generate(SynthConfig(...))`` returns plain dicts; the same seed gives the same data.
The population lives in households (couples, single parents, children close in age, twins),
women may carry a maiden surname, households move and leave an address history, some people
are not on the spine (unregistered newborns, people new to the area). Incoming records are
drawn from children and their parents, a fifth of them people who are not on the spine, and
are damaged the way family-court records are: typos, nicknames, Welsh spellings, day/month
swaps, placeholder dates of birth (01/01), "Baby" instead of a forename, forename/surname
swaps, a middle name used as the given name, old addresses, missing NHS numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from synth.names import (
    FEMALE_FORENAMES,
    MALE_FORENAMES,
    NICKNAMES,
    POSTCODE_DISTRICTS,
    STREET_NAMES,
    STREET_TYPES,
    SURNAMES,
    WELSH_VARIANTS,
)

__all__ = [
    "CSV_COLUMNS",
    "SPINE_EXTRA_COLUMNS",
    "Person",
    "SynthConfig",
    "SynthData",
    "generate",
    "incoming_row",
    "nhs_check_digit",
]

CSV_COLUMNS = (
    "id",
    "given_name",
    "surname",
    "date_of_birth",
    "sex",
    "postcode",
    "address",
    "nhs_number",
)
SPINE_EXTRA_COLUMNS = ("previous_surnames", "previous_postcodes")
REFERENCE_DATE = date(2025, 1, 1)
_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and damage rates; defaults are the benchmark's."""

    seed: int = 20251124
    spine_size: int = 10_000
    incoming_size: int = 2_000
    out_of_spine_share: float = 0.2
    repeat_share: float = 0.1
    nhs_present: float = 0.15
    twin_rate: float = 0.04
    people_per_unit: int = 30
    postcode_units: tuple[str, ...] = ()
    """Unit postcodes to house people in (e.g. a lookup's, so LSOAs resolve); empty: made up
    from ``POSTCODE_DISTRICTS`` (the benchmark's default)."""


@dataclass
class Person:
    """One member of the synthetic population (clear text; never leaves the benchmark)."""

    pid: int
    forenames: list[str]
    surname: str
    sex: str
    dob: date
    nhs: str
    addresses: list[tuple[str, str]]  # (postcode, address), oldest first, current last
    previous_surnames: list[str] = field(default_factory=list)
    mother: int | None = None
    on_spine: bool = True
    household: int = -1
    """Number of the household the person belongs to (1, 2, ...)."""
    parent: bool = False
    """True for a household's adults, False for the children born into it."""


@dataclass(frozen=True)
class SynthData:
    """Spine rows, incoming rows and the truth (incoming id -> spine id, "" if not on it)."""

    spine: list[dict[str, str]]
    incoming: list[dict[str, str]]
    truth: dict[str, str]
    people: list[Person]


def nhs_check_digit(nine: str) -> int | None:
    """Modulus-11 check digit of the first nine digits; None when no valid digit exists."""
    total = sum(int(d) * (10 - i) for i, d in enumerate(nine))
    check = 11 - total % 11
    if check == 11:
        return 0
    return None if check == 10 else check


def _weighted(rng: random.Random, items: tuple[str, ...], power: float = 1.0) -> str:
    # Zipf-like: index i has weight 1/(i+1)^power; cumulative table cached per tuple.
    key = (id(items), power)
    table = _CUM.get(key)
    if table is None:
        acc, table = 0.0, []
        for i in range(len(items)):
            acc += 1.0 / (i + 1) ** power
            table.append(acc)
        _CUM[key] = table
    x = rng.random() * table[-1]
    lo, hi = 0, len(table) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if table[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return items[lo]


_CUM: dict[tuple[int, float], list[float]] = {}


class _Builder:
    def __init__(self, config: SynthConfig) -> None:
        self.c = config
        self.rng = random.Random(config.seed)
        self.people: list[Person] = []
        self.nhs_seen: set[str] = set()
        self.households = 0
        n_units = max(4, int(config.spine_size / 0.85 / config.people_per_unit))
        self.units = [self._unit() for _ in range(n_units)]

    def _unit(self) -> tuple[str, str]:
        r = self.rng
        if self.c.postcode_units:
            unit = r.choice(self.c.postcode_units)
        else:
            district = _weighted(r, POSTCODE_DISTRICTS, 0.5)
            unit = f"{district} {r.randint(1, 9)}{r.choice(_LETTERS)}{r.choice(_LETTERS)}"
        street = f"{r.choice(STREET_NAMES)} {r.choice(STREET_TYPES)}".strip()
        return unit, street

    def _address(self) -> tuple[str, str]:
        unit, street = self.rng.choice(self.units)
        return unit, f"{self.rng.randint(1, 120)} {street}"

    def _nhs(self) -> str:
        while True:
            nine = f"{self.rng.randint(400_000_000, 799_999_999)}"
            check = nhs_check_digit(nine)
            if check is not None and (nhs := nine + str(check)) not in self.nhs_seen:
                self.nhs_seen.add(nhs)
                return nhs

    def _forenames(self, sex: str) -> list[str]:
        pool = FEMALE_FORENAMES if sex == "F" else MALE_FORENAMES
        names = [_weighted(self.rng, pool, 0.7)]
        if self.rng.random() < 0.35:
            middle = _weighted(self.rng, pool, 0.7)
            if middle != names[0]:
                names.append(middle)
        return names

    def _dob(self, lo_age: float, hi_age: float) -> date:
        days = self.rng.uniform(lo_age, hi_age) * 365.25
        return REFERENCE_DATE - timedelta(days=int(days))

    def person(self, sex: str, surname: str, dob: date, home: list[tuple[str, str]]) -> Person:
        p = Person(
            len(self.people), self._forenames(sex), surname, sex, dob, self._nhs(), list(home)
        )
        p.household = self.households
        p.parent = True
        self.people.append(p)
        return p

    def household(self) -> None:
        self.households += 1
        r = self.rng
        home = [self._address()]
        if r.random() < 0.3:  # moved at least once: the current address is the last one
            home.append(self._address())
        kind = r.random()
        adults: list[Person] = []
        family_surname = _weighted(r, SURNAMES, 0.9)
        if kind < 0.25:
            sex = r.choice("MF")
            adults.append(self.person(sex, family_surname, self._dob(18, 85), home))
            mother = adults[0] if sex == "F" and adults[0].dob < self._dob(20, 20) else None
            if mother is not None and r.random() < 0.3:
                self.children(mother, family_surname, home)
            return
        father = self.person("M", family_surname, self._dob(20, 70), home)
        mother_dob = father.dob + timedelta(days=int(r.gauss(2.5, 3) * 365))
        maiden = _weighted(r, SURNAMES, 0.9)
        married = r.random() < 0.6
        mother = self.person("F", family_surname if married else maiden, mother_dob, home)
        if married and maiden != family_surname:
            mother.previous_surnames.append(maiden)
        if kind < 0.45:
            return
        if kind > 0.85:  # single mother: father not in the household, children take hers
            self.people.pop(father.pid) if father.pid == len(self.people) - 2 else None
        self.children(mother, mother.surname if kind > 0.85 else family_surname, home)

    def children(self, mother: Person, surname: str, home: list[tuple[str, str]]) -> None:
        r = self.rng
        age_mother = (REFERENCE_DATE - mother.dob).days / 365.25
        first = r.uniform(17, min(40, max(17.5, age_mother)))
        birth = mother.dob + timedelta(days=int(first * 365.25))
        for _ in range(r.choice((1, 1, 2, 2, 2, 3, 3, 4, 5))):
            if birth >= REFERENCE_DATE:
                break
            births = 2 if r.random() < self.c.twin_rate else 1
            for _ in range(births):
                sex = r.choice("MF")
                child = self.person(sex, surname, birth, home)
                child.mother = mother.pid
                child.parent = False
            birth += timedelta(days=r.randint(330, 1400))  # siblings close in age

    def renumber(self) -> None:
        # The single-mother pop above may leave gaps; pids are list positions.
        for i, p in enumerate(self.people):
            p.pid = i


def _typo(rng: random.Random, s: str) -> str:
    if len(s) < 3:
        return s
    i = rng.randrange(1, len(s) - 1)
    op = rng.random()
    letters = "abcdefghijklmnopqrstuvwxyz"
    if op < 0.3:
        return s[:i] + rng.choice(letters) + s[i + 1 :]
    if op < 0.55:
        return s[:i] + s[i + 1 :]
    if op < 0.8:
        return s[:i] + rng.choice(letters) + s[i:]
    return s[: i - 1] + s[i] + s[i - 1] + s[i + 1 :]


def _fmt(d: date | None) -> str:
    return d.isoformat() if d else ""


def _spine_row(p: Person, rng: random.Random, sid: str) -> dict[str, str]:
    # The spine may be a little out of date: a recent mover is still at the old address.
    postcode, address = p.addresses[-1]
    history = p.addresses[:-1]
    if len(p.addresses) > 1 and rng.random() < 0.2:
        postcode, address = p.addresses[-2]
        history = p.addresses[:-2]
    return {
        "id": sid,
        "given_name": " ".join(p.forenames),
        "surname": p.surname,
        "date_of_birth": _fmt(p.dob),
        "sex": p.sex,
        "postcode": postcode,
        "address": address,
        "nhs_number": p.nhs,
        "previous_surnames": ";".join(p.previous_surnames),
        "previous_postcodes": ";".join(pc for pc, _ in history),
    }


def _incoming_row(
    p: Person, rid: str, rng: random.Random, people: list[Person], c: SynthConfig
) -> dict[str, str]:
    age = (REFERENCE_DATE - p.dob).days / 365.25
    given = p.forenames[0]
    surname = p.surname
    u = rng.random()
    if age < 1 and rng.random() < 0.4:
        given = "Baby"
        if p.mother is not None and rng.random() < 0.5:
            surname = people[p.mother].surname
    elif u < 0.08 and given in NICKNAMES:
        given = rng.choice(NICKNAMES[given])
    elif u < 0.13 and given in WELSH_VARIANTS:
        given = rng.choice(WELSH_VARIANTS[given])
    elif u < 0.19:
        given = _typo(rng, given)
    elif u < 0.23 and len(p.forenames) > 1:
        given = p.forenames[1]
    if p.previous_surnames and rng.random() < 0.35:
        surname = p.previous_surnames[-1]
    elif rng.random() < 0.05:
        surname = _typo(rng, surname)
    if rng.random() < 0.02:
        given, surname = surname, given
    dob: date | None = p.dob
    v = rng.random()
    if v < 0.03:
        dob = None
    elif v < 0.05:
        dob = date(p.dob.year, 1, 1)
    elif v < 0.08 and p.dob.day <= 12 and p.dob.day != p.dob.month:
        dob = date(p.dob.year, p.dob.day, p.dob.month)
    elif v < 0.10:
        try:
            dob = p.dob.replace(day=min(28, max(1, p.dob.day + rng.choice((-1, 1, 10, -10)))))
        except ValueError:
            dob = p.dob
    elif v < 0.11:
        dob = p.dob.replace(year=p.dob.year + rng.choice((-1, 1)), day=min(p.dob.day, 28))
    sex = p.sex
    if rng.random() < 0.04:
        sex = rng.choice(("", "U"))
    postcode, address = p.addresses[-1]
    if len(p.addresses) > 1 and rng.random() < 0.4:
        postcode, address = p.addresses[-2]
    w = rng.random()
    if w < 0.08:
        postcode = ""
    elif w < 0.11:
        postcode = _typo(rng, postcode.replace(" ", "")).upper()
    elif w < 0.3:
        postcode = postcode.replace(" ", "").lower()
    if rng.random() < 0.35:
        address = ""
    elif rng.random() < 0.25:
        address = address.replace("Road", "Rd").replace("Street", "St").replace("Avenue", "Ave")
    nhs = ""
    if rng.random() < c.nhs_present:
        nhs = p.nhs
        if rng.random() < 0.03:
            nhs = nhs[:4] + str((int(nhs[4]) + 1) % 10) + nhs[5:]
        elif age < 1 and p.mother is not None and rng.random() < 0.2:
            nhs = people[p.mother].nhs  # a baby recorded with its mother's number
    return {
        "id": rid,
        "given_name": given.upper() if rng.random() < 0.3 else given,
        "surname": surname.upper() if rng.random() < 0.3 else surname,
        "date_of_birth": _fmt(dob),
        "sex": sex,
        "postcode": postcode,
        "address": address,
        "nhs_number": nhs,
    }


def incoming_row(
    person: Person, record_id: str, rng: random.Random, people: list[Person], config: SynthConfig
) -> dict[str, str]:
    """One record about ``person`` as a family court would send it, damaged (see module doc)."""
    return _incoming_row(person, record_id, rng, people, config)


def generate(config: SynthConfig | None = None) -> SynthData:
    """The population, its spine, the incoming records and the truth, all from one seed."""
    c = config or SynthConfig()
    b = _Builder(c)
    target_population = int(c.spine_size / 0.87) + 1
    while len(b.people) < target_population:
        b.household()
    b.renumber()
    rng = random.Random(c.seed + 1)
    people = b.people
    for p in people:
        age = (REFERENCE_DATE - p.dob).days / 365.25
        p.on_spine = rng.random() < (0.5 if age < 1 else 0.88)
    on = [p for p in people if p.on_spine][: c.spine_size]
    on_ids = {p.pid for p in on}
    for p in people:
        p.on_spine = p.pid in on_ids
    spine_order = list(on)
    rng.shuffle(spine_order)
    spine_id = {p.pid: f"S{i:07d}" for i, p in enumerate(spine_order)}
    spine = [_spine_row(p, rng, spine_id[p.pid]) for p in spine_order]

    # Cafcass records are about children and the adults around them: weight children up.
    def relevant(p: Person) -> bool:
        age = (REFERENCE_DATE - p.dob).days / 365.25
        return age < 18 or any(q.mother == p.pid for q in people[p.pid + 1 : p.pid + 8])

    pool_in = [p for p in people if p.on_spine and relevant(p)] or on
    pool_out = [p for p in people if not p.on_spine and relevant(p)] or [
        p for p in people if not p.on_spine
    ]
    incoming: list[dict[str, str]] = []
    truth: dict[str, str] = {}
    chosen: list[Person] = []
    for i in range(c.incoming_size):
        if chosen and rng.random() < c.repeat_share:
            p = rng.choice(chosen)
        elif rng.random() < c.out_of_spine_share and pool_out:
            p = rng.choice(pool_out)
        else:
            p = rng.choice(pool_in)
        chosen.append(p)
        rid = f"C{i:07d}"
        incoming.append(_incoming_row(p, rid, rng, people, c))
        truth[rid] = spine_id.get(p.pid, "")
    return SynthData(spine=spine, incoming=incoming, truth=truth, people=people)
