"""A deterministic synthetic population, its spine and Cafcass-like incoming records.

Pure: ``generate(SynthConfig(...))`` returns plain dicts; the same seed gives the same data.
Built to be at least as hard as linking family-court records to a Welsh population spine
(docs/linkage.md, "The benchmark data"; DOMAIN.md, "Linkage pitfalls in family data"):

- a **spine of households**: couples, single parents, three generations under one roof;
  children close in age and twins (a third of them with names alike: the same initial, or
  one letter apart, Mia and Tia), married women under their husband's surname with the
  maiden name as a previous surname (the spine sometimes still holds the maiden name), a
  Zipf-heavy Welsh surname table (Jones, Williams, Davies);
- **a quarter of families moved**: the whole household has a new address; the spine is
  behind for some of them, court records carry the old address for some others;
- **people not on the spine, by kind**, most of them inside spine households: newborns not
  yet registered, relatives' children living with the family, a mother's new partner, and
  whole families new to the area;
- incoming records drawn from children and the adults around them, 70 % without an NHS
  number, and damaged the way family-court records are: "Baby" / "Baby of <mother>",
  placeholder dates of birth (01/01/YYYY), day/month swaps, a middle name used as the given
  name, forename/surname swaps, nicknames and Welsh variants, typos, maiden versus married
  surnames, a child under the other parent's surname, old or missing addresses.

Every incoming record is tagged with the subsets it belongs to (``SynthData.subsets``, see
:data:`SUBSETS`), so linkage can be reported per subset the way a linkage paper would.
"""

from __future__ import annotations

import random
from collections import Counter
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
    "NOT_ON_SPINE_KINDS",
    "REFERENCE_DATE",
    "SPINE_EXTRA_COLUMNS",
    "SUBSETS",
    "Person",
    "SynthConfig",
    "SynthData",
    "generate",
    "incoming_row",
    "nhs_check_digit",
    "subset_counts",
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

NOT_ON_SPINE_KINDS = ("unregistered_newborn", "relatives_child", "new_partner", "new_to_area")
"""Why a person is not on the spine; every such person has exactly one kind."""

SUBSETS: dict[str, str] = {
    "on_spine": "the person is on the spine (a true link exists)",
    "not_on_spine": "the person is not on the spine (any link is wrong)",
    **{f"not_on_spine:{k}": f"not on the spine: {k.replace('_', ' ')}" for k in NOT_ON_SPINE_KINDS},
    "twin": "the person has a twin (on the spine or not)",
    "close_sibling": "a sibling (not a twin) born less than two years apart",
    "moved": "the person's family moved (the spine or the record may have either address)",
    "address_differs": "the record's postcode is not the spine's current one (or is missing)",
    "common_name": "forename among the 20 and surname among the 10 most common",
    "no_nhs": "the record has no NHS number",
    "maiden_married": "the record and the spine hold different surnames of a married woman",
    "other_parent_surname": "a child recorded under the other parent's or a joined surname",
    "baby_name": '"Baby", "Baby of <mother>" or "Baby Girl" instead of a forename',
    "placeholder_dob": "date of birth recorded as 01/01 of the year",
    "dob_missing": "no date of birth",
    "dob_error": "day/month swapped, a day or a year wrong",
    "middle_as_given": "the middle name used as the given name",
    "name_swap": "forename and surname swapped",
    "nickname": "a nickname instead of the given name",
    "welsh_variant": "a Welsh (or English) variant of the given name",
    "name_typo": "a typo in the forename or surname",
}
"""Every tag an incoming record can carry, with what it means."""


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and damage rates; defaults are the benchmark's."""

    seed: int = 20251124
    spine_size: int = 10_000
    incoming_size: int = 2_000
    out_of_spine_share: float = 0.2
    """Share of incoming records about people not on the spine (Cafcass Cymru links ~80 %)."""
    out_of_spine_kinds: tuple[float, float, float, float] = (0.3, 0.2, 0.15, 0.35)
    """Shares of those by kind, in the order of :data:`NOT_ON_SPINE_KINDS`."""
    repeat_share: float = 0.1
    nhs_present: float = 0.30
    moved_share: float = 0.25
    twin_rate: float = 0.03
    """Twin maternities per birth (about 6 % of children are twins: harder than the 3 % of
    England and Wales)."""
    new_to_area_share: float = 0.08
    """Share of households not on the spine at all (moved into the area)."""
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
    """True for a household's adults, False for the children living in it."""
    father: int | None = None
    role: str = "child"
    """``parent``, ``child``, ``grandparent``, ``relatives_child`` or ``partner``."""
    off_spine: str = ""
    """Why the person is not on the spine (one of :data:`NOT_ON_SPINE_KINDS`), else ""."""
    twin: int | None = None
    """The co-twin's pid."""
    moved: bool = False


@dataclass(frozen=True)
class SynthData:
    """Spine rows, incoming rows, the truth (incoming id -> spine id, "" if not on it) and
    the subsets each incoming record belongs to (incoming id -> tags of :data:`SUBSETS`)."""

    spine: list[dict[str, str]]
    incoming: list[dict[str, str]]
    truth: dict[str, str]
    people: list[Person]
    subsets: dict[str, tuple[str, ...]] = field(default_factory=dict)


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
_COMMON_FORENAMES = frozenset((*FEMALE_FORENAMES[:20], *MALE_FORENAMES[:20]))
_COMMON_SURNAMES = frozenset(SURNAMES[:10])
_BY_INITIAL: dict[tuple[str, str], tuple[str, ...]] = {}
for _sex, _pool in (("F", FEMALE_FORENAMES), ("M", MALE_FORENAMES)):
    for _name in _pool:
        _BY_INITIAL[(_sex, _name[0])] = (*_BY_INITIAL.get((_sex, _name[0]), ()), _name)


def _one_letter_apart(a: str, b: str) -> bool:
    """One letter replaced, added or dropped (Mia/Tia, Ian/Iwan, Leo/Lee)."""
    a, b = a.lower(), b.lower()
    if len(a) > len(b):
        a, b = b, a
    if len(b) - len(a) > 1 or a == b:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    return any(b[:i] + b[i + 1 :] == a for i in range(len(b)))


_RHYMING: dict[tuple[str, str], tuple[str, ...]] = {
    (_sex, _name): tuple(n for n in _pool if _one_letter_apart(n, _name))
    for _sex, _pool in (("F", FEMALE_FORENAMES), ("M", MALE_FORENAMES))
    for _name in _pool
}
"""Names of one sex one letter apart: twins are named Mia and Tia, Ian and Iwan."""


def _age(p: Person, on: date = REFERENCE_DATE) -> float:
    return (on - p.dob).days / 365.25


class _Builder:
    def __init__(self, config: SynthConfig) -> None:
        self.c = config
        self.rng = random.Random(config.seed)
        # Rare choices drawn apart from the main stream, so adding one leaves every other
        # record as it was (benchmarks stay comparable across versions of the generator).
        self.side_rng = random.Random(f"{config.seed}-side")
        self.people: list[Person] = []
        self.nhs_seen: set[str] = set()
        self.households = 0
        self.on_spine = 0
        n_units = max(4, int(config.spine_size / 0.85 / config.people_per_unit))
        self.units = [self._unit() for _ in range(n_units)]
        self.by_district: dict[str, list[int]] = {}
        for i, (unit, _street) in enumerate(self.units):
            self.by_district.setdefault(unit.split()[0], []).append(i)

    def _unit(self) -> tuple[str, str]:
        r = self.rng
        if self.c.postcode_units:
            unit = r.choice(self.c.postcode_units)
        else:
            district = _weighted(r, POSTCODE_DISTRICTS, 0.5)
            unit = f"{district} {r.randint(1, 9)}{r.choice(_LETTERS)}{r.choice(_LETTERS)}"
        street = f"{r.choice(STREET_NAMES)} {r.choice(STREET_TYPES)}".strip()
        return unit, street

    def _address(self, near: str | None = None) -> tuple[str, str]:
        """A house in a random unit; with ``near``, in a unit of the same district."""
        r = self.rng
        if near is not None:
            unit, street = self.units[r.choice(self.by_district[near.split()[0]])]
        else:
            unit, street = r.choice(self.units)
        return unit, f"{r.randint(1, 120)} {street}"

    def _nhs(self) -> str:
        while True:
            nine = f"{self.rng.randint(400_000_000, 799_999_999)}"
            check = nhs_check_digit(nine)
            if check is not None and (nhs := nine + str(check)) not in self.nhs_seen:
                self.nhs_seen.add(nhs)
                return nhs

    def _forenames(
        self, sex: str, like: str | None = None, avoid: frozenset[str] = frozenset()
    ) -> list[str]:
        """Given names; ``avoid``: names already taken in the family (parents do not give
        two children, or a child and themselves, the same first name)."""
        pool = FEMALE_FORENAMES if sex == "F" else MALE_FORENAMES
        r = self.rng
        alike = [n for n in _BY_INITIAL.get((sex, like[0]), ()) if n not in avoid] if like else []
        for _ in range(20):
            # Twins are often given names alike: the same initial (Rhys and Rhian).
            first = r.choice(alike) if alike else _weighted(r, pool, 0.7)
            if first not in avoid:
                break
        rhyming = [n for n in _RHYMING.get((sex, like), ()) if n not in avoid] if like else []
        if rhyming and self.side_rng.random() < 0.5:
            # Or alike by sound: one letter apart, which a typo of the other twin's name
            # could also be (half of the pairs whose names allow it).
            first = self.side_rng.choice(rhyming)
        names = [first]
        if r.random() < 0.4:
            middle = _weighted(r, pool, 0.7)
            if middle != first:
                names.append(middle)
        return names

    def _dob(self, lo_age: float, hi_age: float) -> date:
        days = self.rng.uniform(lo_age, hi_age) * 365.25
        return REFERENCE_DATE - timedelta(days=int(days))

    def person(
        self,
        sex: str,
        surname: str,
        dob: date,
        home: list[tuple[str, str]],
        *,
        role: str = "parent",
        forenames: list[str] | None = None,
    ) -> Person:
        p = Person(
            len(self.people),
            forenames or self._forenames(sex),
            surname,
            sex,
            dob,
            self._nhs(),
            list(home),
            household=self.households,
            parent=role in ("parent", "grandparent", "partner"),
            role=role,
        )
        self.people.append(p)
        return p

    def _home(self) -> tuple[list[tuple[str, str]], bool]:
        r = self.rng
        home = [self._address()]
        moved = r.random() < self.c.moved_share
        if moved:
            # Half the moves stay in the district (a few streets away), half go anywhere.
            home.append(self._address(near=home[0][0] if r.random() < 0.5 else None))
            if r.random() < 0.1:
                home.append(self._address())
        return home, moved

    def household(self) -> None:
        """One household: its adults, children, and any relative or partner living there."""
        self.households += 1
        r = self.rng
        start = len(self.people)
        home, moved = self._home()
        new_to_area = r.random() < self.c.new_to_area_share
        family_surname = _weighted(r, SURNAMES, 0.9)
        kind = r.random()
        if kind < 0.18:  # one adult alone
            self.person(r.choice("MF"), family_surname, self._dob(18, 90), home)
        elif kind < 0.33:  # a couple without children at home
            self._couple(family_surname, home, self._dob(20, 85))
        elif kind < 0.75:  # a couple with children
            father, mother = self._couple(family_surname, home, self._dob(22, 60))
            children_surname = family_surname
            if mother.surname != family_surname and r.random() < 0.3:
                children_surname = mother.surname  # unmarried: the children take hers
            self.children(mother, father, children_surname, home)
        elif kind < 0.93:  # a single mother with her children
            mother = self.person("F", family_surname, self._dob(17, 50), home)
            self.children(mother, None, family_surname, home)
            if r.random() < 0.25:
                self._new_partner(mother, home)
        else:  # three generations: a grandmother, her daughter, the daughter's children
            grandmother = self.person(
                "F", family_surname, self._dob(55, 85), home, role="grandparent"
            )
            age_gm = _age(grandmother)
            daughter = self.person("F", family_surname, self._dob(17, min(40.0, age_gm - 17)), home)
            daughter.mother = grandmother.pid
            self.children(daughter, None, family_surname, home)
        members = self.people[start:]
        has_children = any(p.role == "child" for p in members)
        if has_children and r.random() < 0.06:
            self._relatives_child(family_surname, home)
            members = self.people[start:]
        for p in members:
            p.moved = moved
            if new_to_area:
                p.off_spine = "new_to_area"
            elif p.role == "relatives_child":
                p.off_spine = "relatives_child"
            elif p.role == "partner":
                p.off_spine = "new_partner"
            elif (
                p.role == "child" and _age(p) < 1 and r.random() < (0.6 if _age(p) < 0.3 else 0.25)
            ):
                p.off_spine = "unregistered_newborn"  # registered weeks to months after birth
        # Twins are registered together.
        for p in members:
            if p.twin is not None and p.pid < p.twin:
                q = self.people[p.twin]
                if "unregistered_newborn" in (p.off_spine, q.off_spine):
                    p.off_spine = q.off_spine = "unregistered_newborn"
        for p in members:
            p.on_spine = not p.off_spine
            self.on_spine += p.on_spine

    def _couple(
        self, family_surname: str, home: list[tuple[str, str]], dob: date
    ) -> tuple[Person, Person]:
        r = self.rng
        father = self.person("M", family_surname, dob, home)
        mother_dob = dob + timedelta(days=int(r.gauss(2.5, 3) * 365))
        maiden = _weighted(r, SURNAMES, 0.9)
        married = r.random() < 0.6
        mother = self.person("F", family_surname if married else maiden, mother_dob, home)
        if married and maiden != family_surname:
            mother.previous_surnames.append(maiden)
        return father, mother

    def _new_partner(self, mother: Person, home: list[tuple[str, str]]) -> None:
        r = self.rng
        dob = mother.dob + timedelta(days=int(r.gauss(-2, 4) * 365))
        dob = min(dob, REFERENCE_DATE - timedelta(days=18 * 366))
        self.person("M", _weighted(r, SURNAMES, 0.9), dob, [home[-1]], role="partner")

    def _relatives_child(self, family_surname: str, home: list[tuple[str, str]]) -> None:
        # A niece, nephew or grandchild come to live with the family (from elsewhere).
        r = self.rng
        surname = family_surname if r.random() < 0.5 else _weighted(r, SURNAMES, 0.9)
        self.person(r.choice("MF"), surname, self._dob(0, 16), [home[-1]], role="relatives_child")

    def children(
        self,
        mother: Person,
        father: Person | None,
        surname: str,
        home: list[tuple[str, str]],
    ) -> None:
        r = self.rng
        age_mother = _age(mother)
        first = r.uniform(17, min(40, max(17.5, age_mother)))
        birth = mother.dob + timedelta(days=int(first * 365.25))
        taken = {mother.forenames[0], *([father.forenames[0]] if father else [])}
        for _ in range(r.choice((1, 1, 2, 2, 2, 3, 3, 4, 5))):
            if birth >= REFERENCE_DATE:
                break
            twins = r.random() < self.c.twin_rate
            sex = r.choice("MF")
            names = self._forenames(sex, avoid=frozenset(taken))
            taken.add(names[0])
            child = self._child(sex, surname, birth, home, mother, father, names)
            if twins:
                sex2 = sex if r.random() < 0.4 else r.choice("MF")
                like = child.forenames[0] if r.random() < 0.35 else None
                names = self._forenames(sex2, like=like, avoid=frozenset(taken))
                taken.add(names[0])
                twin = self._child(sex2, surname, birth, home, mother, father, names)
                child.twin, twin.twin = twin.pid, child.pid
            # Siblings close in age: some barely a year apart.
            gap = r.randint(280, 420) if r.random() < 0.1 else r.randint(400, 1500)
            birth += timedelta(days=gap)

    def _child(
        self,
        sex: str,
        surname: str,
        dob: date,
        home: list[tuple[str, str]],
        mother: Person,
        father: Person | None,
        forenames: list[str] | None = None,
    ) -> Person:
        # A child born after a move only ever lived at the new address.
        lived = [a for a in home if a is home[-1] or dob < REFERENCE_DATE - timedelta(days=400)]
        child = self.person(sex, surname, dob, lived, role="child", forenames=forenames)
        child.mother = mother.pid
        child.father = father.pid if father is not None else None
        return child

    def single(self) -> None:
        """A one-person household (fills the spine to its exact size)."""
        self.households += 1
        r = self.rng
        home, moved = self._home()
        p = self.person(r.choice("MF"), _weighted(r, SURNAMES, 0.9), self._dob(18, 90), home)
        p.moved = moved
        self.on_spine += 1


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


def _spine_row(p: Person, rng: random.Random, sid: str, stale: bool) -> dict[str, str]:
    """The spine's view of ``p``: a little out of date and, rarely, mistyped.

    ``stale``: the household's move has not reached the register (the old address is still
    current for most of its members)."""
    addresses = p.addresses
    if stale and len(addresses) > 1 and rng.random() < 0.85:
        addresses = addresses[:-1]
    postcode, address = addresses[-1]
    history = addresses[:-1]
    surname, previous = p.surname, list(p.previous_surnames)
    if previous and rng.random() < 0.15:
        surname, previous = previous[-1], []  # the register never heard of the marriage
    forenames = list(p.forenames)
    if rng.random() < 0.01:
        forenames[0] = _typo(rng, forenames[0])
    if rng.random() < 0.01:
        surname = _typo(rng, surname)
    return {
        "id": sid,
        "given_name": " ".join(forenames),
        "surname": surname,
        "date_of_birth": _fmt(p.dob),
        "sex": p.sex,
        "postcode": postcode,
        "address": address,
        "nhs_number": p.nhs,
        "previous_surnames": ";".join(previous),
        "previous_postcodes": ";".join(pc for pc, _ in history),
    }


def _damage(
    p: Person, rid: str, rng: random.Random, people: list[Person], c: SynthConfig
) -> tuple[dict[str, str], set[str]]:
    """One record about ``p`` as a family court would send it, and the damage done."""
    tags: set[str] = set()
    age = _age(p)
    mother = people[p.mother] if p.mother is not None else None
    given = p.forenames[0]
    surname = p.surname
    u = rng.random()
    if age < 1 and rng.random() < 0.4:
        tags.add("baby_name")
        v = rng.random()
        if v < 0.5:
            given = "Baby"
        elif v < 0.8 and mother is not None:
            given = f"Baby of {mother.forenames[0]}"
        else:
            given = "Baby Girl" if p.sex == "F" else "Baby Boy"
        if mother is not None and mother.surname != surname and rng.random() < 0.5:
            surname = mother.surname
            tags.add("other_parent_surname")
    elif u < 0.12:
        # A nickname or a Welsh/English variant where the name has one (most have neither).
        table, tag = (NICKNAMES, "nickname") if u < 0.07 else (WELSH_VARIANTS, "welsh_variant")
        if given in table:
            given = rng.choice(table[given])
            tags.add(tag)
    elif u < 0.18:
        given = _typo(rng, given)
        tags.add("name_typo")
    elif u < 0.30 and len(p.forenames) > 1:
        if u < 0.24:
            given = p.forenames[1]
            tags.add("middle_as_given")
        else:
            given = " ".join(p.forenames)  # all given names in the forename field
    if p.previous_surnames and rng.random() < 0.35:
        surname = p.previous_surnames[-1]
    elif p.role == "child" and mother is not None and mother.surname != surname:
        v = rng.random()
        if v < 0.08:
            surname = mother.surname
            tags.add("other_parent_surname")
        elif v < 0.11:
            surname = f"{surname}-{mother.surname}"
            tags.add("other_parent_surname")
    if rng.random() < 0.05:
        surname = _typo(rng, surname)
        tags.add("name_typo")
    if rng.random() < 0.02 and "baby_name" not in tags:
        given, surname = surname, given
        tags.add("name_swap")
    dob: date | None = p.dob
    v = rng.random()
    if v < 0.03:
        dob = None
        tags.add("dob_missing")
    elif v < 0.06:
        dob = date(p.dob.year, 1, 1)
        tags.add("placeholder_dob")
    elif v < 0.09 and p.dob.day <= 12 and p.dob.day != p.dob.month:
        dob = date(p.dob.year, p.dob.day, p.dob.month)
        tags.add("dob_error")
    elif v < 0.11:
        dob = p.dob.replace(day=min(28, max(1, p.dob.day + rng.choice((-1, 1, 10, -10)))))
        tags.add("dob_error")
    elif v < 0.12:
        dob = p.dob.replace(year=p.dob.year + rng.choice((-1, 1)), day=min(p.dob.day, 28))
        tags.add("dob_error")
    sex = p.sex
    if rng.random() < 0.04:
        sex = rng.choice(("", "U"))
    postcode, address = p.addresses[-1]
    if len(p.addresses) > 1 and rng.random() < 0.25:
        postcode, address = p.addresses[-2]  # the court has the address before the move
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
        elif age < 1 and mother is not None and rng.random() < 0.2:
            nhs = mother.nhs  # a baby recorded with its mother's number
    row = {
        "id": rid,
        "given_name": given.upper() if rng.random() < 0.3 else given,
        "surname": surname.upper() if rng.random() < 0.3 else surname,
        "date_of_birth": _fmt(dob),
        "sex": sex,
        "postcode": postcode,
        "address": address,
        "nhs_number": nhs,
    }
    return row, tags


def incoming_row(
    person: Person, record_id: str, rng: random.Random, people: list[Person], config: SynthConfig
) -> dict[str, str]:
    """One record about ``person`` as a family court would send it, damaged (see module doc)."""
    return _damage(person, record_id, rng, people, config)[0]


def _structural_tags(p: Person, people: list[Person]) -> set[str]:
    tags = {"on_spine"} if p.on_spine else {"not_on_spine", f"not_on_spine:{p.off_spine}"}
    if p.twin is not None:
        tags.add("twin")
    if p.mother is not None and p.role == "child":
        for q in people[max(0, p.pid - 12) : p.pid + 12]:
            if (
                q.mother == p.mother
                and q.pid not in (p.pid, p.twin)
                and abs((q.dob - p.dob).days) < 730
            ):
                tags.add("close_sibling")
                break
    if p.moved:
        tags.add("moved")
    if p.forenames[0] in _COMMON_FORENAMES and p.surname in _COMMON_SURNAMES:
        tags.add("common_name")
    return tags


def _record_tags(row: dict[str, str], p: Person, spine_row: dict[str, str] | None) -> set[str]:
    tags: set[str] = set()
    if not row["nhs_number"]:
        tags.add("no_nhs")
    if spine_row is not None:
        pc = row["postcode"].replace(" ", "").upper()
        if pc != spine_row["postcode"].replace(" ", ""):
            tags.add("address_differs")
        names = {p.surname.lower(), *(s.lower() for s in p.previous_surnames)}
        ours, theirs = row["surname"].lower(), spine_row["surname"].lower()
        if len(names) > 1 and ours != theirs and ours in names and theirs in names:
            tags.add("maiden_married")
    return tags


def generate(config: SynthConfig | None = None) -> SynthData:
    """The population, its spine, the incoming records, the truth and the subsets."""
    c = config or SynthConfig()
    b = _Builder(c)
    while b.on_spine < c.spine_size:
        if c.spine_size - b.on_spine < 16:
            b.single()
        else:
            b.household()
    people = b.people
    rng = random.Random(c.seed + 1)
    on = [p for p in people if p.on_spine]
    stale = {h for h in {p.household for p in on if p.moved} if rng.random() < 0.35}
    spine_order = list(on)
    rng.shuffle(spine_order)
    spine_id = {p.pid: f"S{i:07d}" for i, p in enumerate(spine_order)}
    spine = [_spine_row(p, rng, spine_id[p.pid], p.household in stale) for p in spine_order]
    spine_rows = {p.pid: row for p, row in zip(spine_order, spine, strict=True)}

    # Cafcass records are about children and the adults around them.
    parents = {x for p in people if _age(p) < 18 for x in (p.mother, p.father) if x is not None}

    def relevant(p: Person) -> bool:
        return _age(p) < 18 or p.pid in parents or p.role == "partner"

    pool_in = [p for p in on if relevant(p)] or on
    pools_out = [[p for p in people if p.off_spine == k] for k in NOT_ON_SPINE_KINDS]
    kinds = [i for i, pool in enumerate(pools_out) if pool]
    weights = [c.out_of_spine_kinds[i] for i in kinds]
    incoming: list[dict[str, str]] = []
    truth: dict[str, str] = {}
    subsets: dict[str, tuple[str, ...]] = {}
    chosen: list[Person] = []
    for i in range(c.incoming_size):
        if chosen and rng.random() < c.repeat_share:
            p = rng.choice(chosen)
        elif kinds and rng.random() < c.out_of_spine_share:
            p = rng.choice(pools_out[rng.choices(kinds, weights)[0]])
        else:
            p = rng.choice(pool_in)
        chosen.append(p)
        rid = f"C{i:07d}"
        row, tags = _damage(p, rid, rng, people, c)
        incoming.append(row)
        truth[rid] = spine_id.get(p.pid, "")
        srow = spine_rows.get(p.pid)
        tags |= _structural_tags(p, people) | _record_tags(row, p, srow)
        subsets[rid] = tuple(t for t in SUBSETS if t in tags)
    return SynthData(spine=spine, incoming=incoming, truth=truth, people=people, subsets=subsets)


def subset_counts(data: SynthData) -> Counter[str]:
    """How many incoming records carry each tag."""
    return Counter(t for tags in data.subsets.values() for t in tags)
