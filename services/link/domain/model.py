"""The linkage model as data: comparisons, levels, blocking rules, parameters, thresholds.

Kept apart from the engine that runs it (``scoring``), serialisable to JSON and versioned, so
a model can be stored in the link database, reviewed, diffed and re-run. Every predicate names
linkage keys as pseudonymise publishes them (HMAC tokens, token lists, Bloom encodings,
flags); nothing here ever refers to a clear identifier.

Predicates (``Level.when``) are small dicts:

- ``{"eq": "dob"}`` / ``{"eq": ["forename", "surname"]}``: the incoming record's token of the
  first key equals the spine record's token of the second (the same key when one is given).
- ``{"in": ["surname", "surnames_previous"]}``: the incoming token is one of the spine
  record's list of tokens (or the spine token is in the incoming record's list).
- ``{"overlap": "given_names"}``: the two records' token lists share a token.
- ``{"dice": "forename", "min": 0.9}``: Dice similarity of the Bloom encodings ``>= min``.
- ``{"flag": "date-of-birth-placeholder"}``: either record carries this flag (a
  :class:`~contracts.events.QualityFlag` value; a model naming any other is refused).
- ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``: combinations.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from contracts.events import QualityFlag

__all__ = [
    "BlockingRule",
    "Comparison",
    "Guard",
    "Level",
    "LinkageModel",
    "Thresholds",
]


@dataclass(frozen=True)
class Level:
    """One comparison level: a predicate plus its m and u probabilities.

    ``u_household`` is u among spine pairs that share a household context (same postcode
    unit): within a family, surname, date of birth and sex agree far more often than between
    strangers, so their agreement says less. ``fixed_m`` keeps EM from moving m.
    ``tf`` names the token whose term frequency replaces u on exact agreement.
    """

    label: str
    when: dict[str, Any]
    m: float = 0.5
    u: float = 0.5
    u_household: float | None = None
    fixed_m: bool = False
    tf: str | None = None


@dataclass(frozen=True)
class Comparison:
    """Ordered levels (first match wins) plus an implicit final 'else' level.

    ``needs`` lists keys that must be present on both sides, else the comparison is null
    (weight 0). ``household_context`` marks the combined postcode/address comparison: its
    levels listed in ``context_levels`` switch the other comparisons to ``u_household``.
    """

    name: str
    levels: tuple[Level, ...]
    needs: tuple[str, ...] = ()
    needs_any: tuple[str, ...] = ()
    null_if_flag: tuple[str, ...] = ()
    else_m: float = 0.5
    else_u: float = 0.5
    else_u_household: float | None = None
    fixed_else_m: bool = False
    context_levels: tuple[int, ...] = ()

    @property
    def n_levels(self) -> int:
        """Levels including the final 'else'."""
        return len(self.levels) + 1

    def m_values(self) -> list[float]:
        return [lv.m for lv in self.levels] + [self.else_m]

    def u_values(self) -> list[float]:
        return [lv.u for lv in self.levels] + [self.else_u]

    def u_household_values(self) -> list[float]:
        out = [lv.u if lv.u_household is None else lv.u_household for lv in self.levels]
        return [*out, self.else_u if self.else_u_household is None else self.else_u_household]

    def with_m(self, m: list[float]) -> Comparison:
        levels = tuple(
            lv if lv.fixed_m else replace(lv, m=mi) for lv, mi in zip(self.levels, m, strict=False)
        )
        return replace(self, levels=levels, else_m=self.else_m if self.fixed_else_m else m[-1])

    def with_u(self, u: list[float], u_household: list[float] | None = None) -> Comparison:
        levels = []
        for i, lv in enumerate(self.levels):
            uh = None if u_household is None else u_household[i]
            levels.append(replace(lv, u=u[i], u_household=uh))
        return replace(
            self,
            levels=tuple(levels),
            else_u=u[-1],
            else_u_household=None if u_household is None else u_household[-1],
        )


@dataclass(frozen=True)
class BlockingRule:
    """Candidate pairs share these keys: ``left`` on the incoming side, ``right`` on the spine
    side (the same keys when ``right`` is empty). A list key on the spine side is indexed
    under each of its tokens. Blocks larger than ``max_block`` are skipped (too common to
    discriminate) and counted, so lost recall is measurable.

    ``lsh_bloom`` adds a locality-sensitive key on a Bloom encoding: the values of
    ``lsh_bits`` bit positions drawn with ``lsh_seed`` (Hamming bit sampling). Similar
    encodings share the key with high probability, so approximate agreement on an address or
    a full name can find candidates without any exact token in common."""

    name: str
    left: tuple[str, ...]
    right: tuple[str, ...] = ()
    max_block: int = 2000
    lsh_bloom: str = ""
    lsh_bits: int = 0
    lsh_seed: int = 0

    @property
    def spine_keys(self) -> tuple[str, ...]:
        return self.right or self.left


@dataclass(frozen=True)
class Guard:
    """A cap on a pair's log2 odds when every comparison named in ``when`` sits at one of
    the listed levels (labels; ``"else"`` is the final level, ``"null"`` a comparison that
    could not be made), optionally only inside the household context.

    Fellegi-Sunter assumes fields agree independently among non-matches; inside a family
    they do not (a twin shares surname, address and date of birth). A guard says what the
    model cannot learn from unlabelled data: a different forename with the same date of birth
    in the same household is a twin until a person says otherwise, so the pair goes to
    review, not to an ALF."""

    when: dict[str, tuple[str, ...]]
    in_household: bool = True
    cap_log2_odds: float = 0.0


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds on the match probability, plus the margin (in bits of weight) by
    which the best candidate must beat the runner-up to be accepted without review."""

    accept: float = 0.9
    review: float = 0.5
    margin_bits: float = 3.0
    one_to_one: bool = True
    """The probability is the record's: its candidates compete for one spine person, and one
    of them is it with the expected link rate (``decide.record_log2_odds``); the margin is
    then implied (a runner-up within ~3 bits keeps the best below 0.9). False: each pair's
    own probability, and ``margin_bits`` between the best two."""


@dataclass(frozen=True)
class LinkageModel:
    """A complete, versioned linkage model."""

    version: str
    comparisons: tuple[Comparison, ...]
    blocking_rules: tuple[BlockingRule, ...]
    training_rules: tuple[BlockingRule, ...] = ()
    thresholds: Thresholds = field(default_factory=Thresholds)
    guards: tuple[Guard, ...] = ()
    expected_link_rate: float = 0.8
    min_u: float = 1e-9
    tf_min_u: float = 1e-7
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A misspelt flag would be a predicate that never holds: refuse it instead.
        known = {f.value for f in QualityFlag}
        unknown = sorted({f for f in self.flags_used() if f not in known})
        if unknown:
            raise ValueError(
                f"model {self.version!r} names unknown quality flags {unknown} "
                f"(known: {sorted(known)})"
            )

    def flags_used(self) -> Iterator[str]:
        """Every quality flag the model's predicates and deterministic steps name."""

        def walk(pred: dict[str, Any]) -> Iterator[str]:
            if "flag" in pred:
                yield str(pred["flag"])
            for p in pred.get("all", ()) or pred.get("any", ()):
                yield from walk(p)
            if "not" in pred:
                yield from walk(pred["not"])

        for c in self.comparisons:
            yield from c.null_if_flag
            for lv in c.levels:
                yield from walk(lv.when)
        det = self.notes.get("deterministic", {})
        for key in ("nhs_refused_if_flags", "exact_not_if_flags"):
            yield from det.get(key, ())
        if det.get("forename_variant"):
            yield from walk(det["forename_variant"])

    def comparison(self, name: str) -> Comparison:
        for c in self.comparisons:
            if c.name == name:
                return c
        raise KeyError(name)

    def replace_comparison(self, comparison: Comparison) -> LinkageModel:
        return replace(
            self,
            comparisons=tuple(
                comparison if c.name == comparison.name else c for c in self.comparisons
            ),
        )

    def prior_log2_odds(self, spine_size: int) -> float:
        """Prior odds that a random incomingxspine pair is a match, in bits."""
        lam = self.expected_link_rate / max(spine_size, 1)
        lam = min(max(lam, 1e-12), 1 - 1e-12)
        return math.log2(lam / (1 - lam))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinkageModel:
        comparisons = tuple(
            Comparison(
                **{
                    **c,
                    "levels": tuple(Level(**lv) for lv in c["levels"]),
                    "needs": tuple(c.get("needs", ())),
                    "needs_any": tuple(c.get("needs_any", ())),
                    "null_if_flag": tuple(c.get("null_if_flag", ())),
                    "context_levels": tuple(c.get("context_levels", ())),
                }
            )
            for c in data["comparisons"]
        )

        def rules(items: list[dict[str, Any]]) -> tuple[BlockingRule, ...]:
            return tuple(
                BlockingRule(
                    name=r["name"],
                    left=tuple(r["left"]),
                    right=tuple(r.get("right", ())),
                    max_block=r.get("max_block", 2000),
                    lsh_bloom=r.get("lsh_bloom", ""),
                    lsh_bits=r.get("lsh_bits", 0),
                    lsh_seed=r.get("lsh_seed", 0),
                )
                for r in items
            )

        return cls(
            version=data["version"],
            comparisons=comparisons,
            blocking_rules=rules(data["blocking_rules"]),
            training_rules=rules(data.get("training_rules", [])),
            thresholds=Thresholds(**data.get("thresholds", {})),
            guards=tuple(
                Guard(**{**g, "when": {k: tuple(v) for k, v in g["when"].items()}})
                for g in data.get("guards", [])
            ),
            expected_link_rate=data.get("expected_link_rate", 0.8),
            min_u=data.get("min_u", 1e-9),
            tf_min_u=data.get("tf_min_u", 1e-7),
            notes=data.get("notes", {}),
        )

    @classmethod
    def from_json(cls, text: str) -> LinkageModel:
        return cls.from_dict(json.loads(text))
