"""Blocking keys as 64-bit integers, one function for a record and one for a column store.

A blocking key is ``(rule, part values...)`` hashed to 64 bits with a fixed mixing function
(splitmix64's finaliser), written twice: for one compact record in plain Python (the
streaming lookup: straight-line code generated per model), and over whole numpy columns
(building an index of millions). Both give the same integers on every machine and Python
version, so keys can be written into a snapshot and read back by another process; Python's
``hash`` would not do (its tuple hash changed between versions).

A part is a token id (a positive 62-bit integer) or, for a Bloom LSH band, the band's
sampled bits packed into an integer: bit ``i`` of the band value is bit ``p_i`` of the
encoding, ``p_0 < p_1 < ...`` the rule's sampled positions (Hamming bit sampling).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.link.domain.model import BlockingRule
from services.link.domain.records import KeySchema

__all__ = [
    "BLOOM_BITS",
    "KeyFunction",
    "RuleKeys",
    "compile_record_keys",
    "lsh_positions",
    "mix",
    "mix_array",
    "rule_keys",
]

BLOOM_BITS = 1024
"""Width of the Bloom encodings an index holds (pseudonymise's ``bf1`` after one fold)."""

_M = (1 << 64) - 1
_SEED = 0x9E3779B97F4A7C15
_C1 = 0xBF58476D1CE4E5B9
_C2 = 0x94D049BB133111EB


def mix(h: int) -> int:
    """splitmix64's finaliser on a 64-bit integer."""
    h ^= h >> 30
    h = (h * _C1) & _M
    h ^= h >> 27
    h = (h * _C2) & _M
    return h ^ (h >> 31)


def mix_array(h: np.ndarray) -> np.ndarray:
    """:func:`mix` on an array of uint64 (wrapping multiplication, as in C)."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(_C1)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(_C2)
    return h ^ (h >> np.uint64(31))


def _rule_seed(rule_no: int) -> int:
    return mix((rule_no + _SEED) & _M)


def lsh_positions(rule: BlockingRule, width: int = BLOOM_BITS) -> tuple[int, ...]:
    """The bit positions an LSH band samples, ascending."""
    rng = random.Random(rule.lsh_seed)
    return tuple(sorted(rng.sample(range(width), rule.lsh_bits)))


def _band_tables(positions: Sequence[int], width: int) -> list[tuple[int, list[int]]]:
    """Per byte of the big-endian encoding that holds sampled bits: (byte index, a table
    from the byte's value to its contribution to the band value)."""
    by_byte: dict[int, list[tuple[int, int]]] = {}
    n_bytes = width // 8
    for i, p in enumerate(positions):
        by_byte.setdefault(n_bytes - 1 - p // 8, []).append((p % 8, i))
    out = []
    for byte, bits in sorted(by_byte.items()):
        table = [sum(((v >> b) & 1) << i for b, i in bits) for v in range(256)]
        out.append((byte, table))
    return out


KeyFunction = Callable[[tuple], list[tuple[int, int]]]
"""A compact record's blocking keys under every rule, as ``(key, rule number)`` pairs."""


def compile_record_keys(
    rules: Sequence[tuple[int, BlockingRule]],
    schema: KeySchema,
    *,
    spine_side: bool,
    width: int = BLOOM_BITS,
) -> KeyFunction:
    """One generated function giving every blocking key of one compact record (each slot
    read once, straight-line code): a streaming lookup calls it for every record.

    ``spine_side`` picks each rule's spine keys (``right``) instead of its incoming ones.
    List-valued keys give one key per token (the product over lists, as a spine person with
    two previous surnames is found under either)."""
    lines = ["def record_keys(r):", "    out = []"]
    env: dict[str, Any] = {"_mix": mix, "_product": itertools.product, "_M": _M}
    # Each Bloom slot an LSH band samples is laid out as bytes once per record.
    for bs in sorted({schema.bloom_slot[r.lsh_bloom] for _, r in rules if r.lsh_bloom}):
        lines.append(f"    b{bs} = r[{bs}]")
        lines.append(f"    raw{bs} = b{bs}[0].to_bytes({width // 8}, 'big') if b{bs} else None")
    for n, rule in rules:
        keys = rule.spine_keys if spine_side else rule.left
        env[f"_s{n}"] = _rule_seed(n)
        conds: list[str] = []
        pre: list[str] = []
        parts: list[str] = []  # expressions of scalar parts, in order
        lists: list[tuple[int, str]] = []  # (part index, expression of a sorted id list)
        if rule.lsh_bloom:
            bs = schema.bloom_slot[rule.lsh_bloom]
            # The band value unrolled: one table per byte holding sampled bits, OR-ed.
            terms = []
            for j, (byte, table) in enumerate(_band_tables(lsh_positions(rule, width), width)):
                env[f"_t{n}_{j}"] = table
                terms.append(f"_t{n}_{j}[raw{bs}[{byte}]]")
            conds.append(f"raw{bs} is not None")
            parts.append("(" + " | ".join(terms or ["0"]) + ")")
        for k in keys:
            if k in schema.slot:
                s = schema.slot[k]
                conds.append(f"r[{s}] > 0")
                parts.append(f"r[{s}]")
            else:
                s = schema.list_slot[k]
                conds.append(f"r[{s}]")
                lists.append((len(parts), f"sorted(v for v in r[{s}] if v > 0)"))
                parts.append("")
        cond = " and ".join(conds) or "True"
        body = [f"    {p}" for p in pre] + [f"    if {cond}:"]
        if not lists:
            expr = f"_s{n}"
            for p in parts:
                expr = f"_mix({expr} ^ {p})"
            body.append(f"        out.append(({expr}, {n}))")
        else:
            scalars = [p for p in parts if p]
            slots = [i for i, p in enumerate(parts) if not p]
            iterables = ", ".join(e for _, e in lists) + ("," if len(lists) == 1 else "")
            body.append(f"        for combo in _product({iterables}):")
            body.append(f"            h = _s{n}")
            it = iter(scalars)
            for i in range(len(parts)):
                if i in slots:
                    body.append(f"            h = _mix(h ^ combo[{slots.index(i)}])")
                else:
                    body.append(f"            h = _mix(h ^ {next(it)})")
            body.append(f"            out.append((h, {n}))")
        lines += body
    lines.append("    return out")
    exec(compile("\n".join(lines), "<blocking keys>", "exec"), env)  # noqa: S102
    fn: KeyFunction = env["record_keys"]
    return fn


@dataclass(frozen=True)
class RuleKeys:
    """Every blocking key of a column store under one rule: ``keys[i]`` belongs to row
    ``rows[i]`` (a row with a list key appears once per token)."""

    keys: np.ndarray  # uint64
    rows: np.ndarray  # int64


def rule_keys(
    rule_no: int,
    rule: BlockingRule,
    schema: KeySchema,
    columns: Any,
    *,
    spine_side: bool,
    width: int = BLOOM_BITS,
) -> RuleKeys:
    """The keys of every row of ``columns`` (a :class:`~services.link.domain.columns.
    RecordColumns`) under one rule, computed on whole columns; equal to
    :func:`compile_record_keys` row by row."""
    n = len(columns)
    keys = rule.spine_keys if spine_side else rule.left
    ok = np.ones(n, dtype=bool)
    scalar_parts: list[tuple[int, np.ndarray]] = []  # (part index, uint64 per row)
    list_parts: list[tuple[int, str]] = []
    index = 0
    if rule.lsh_bloom:
        f = schema.bloom_keys.index(rule.lsh_bloom)
        pop = columns.pop[:n, f]
        ok &= pop > 0
        bloom = columns.bloom
        if hasattr(bloom, "codes"):  # a snapshot's CodedBlooms: each distinct encoding once
            band = _band_column(bloom.tables[f], rule, width)[bloom.codes[:n, f]]
        else:
            band = _band_column(bloom[:n, f], rule, width)
        scalar_parts.append((index, band))
        index += 1
    for k in keys:
        if k in schema.slot:
            col = columns.tok[:n, schema.token_keys.index(k)]
            ok &= col > 0
            scalar_parts.append((index, col.astype(np.uint64)))
        else:
            list_parts.append((index, k))
        index += 1
    seed = np.uint64(_rule_seed(rule_no))
    if not list_parts:
        rows = np.nonzero(ok)[0]
        h = np.full(len(rows), seed, dtype=np.uint64)
        for _, col in scalar_parts:
            h = mix_array(h ^ col[rows])
        return RuleKeys(h, rows.astype(np.int64))
    if len(list_parts) > 1:
        return _rule_keys_by_record(rule_no, rule, schema, columns, spine_side, width)
    ((list_at, list_key),) = list_parts
    li = schema.list_keys.index(list_key)
    off, val = columns.list_offsets(li), columns.list_values(li)
    lens = off[1 : n + 1] - off[:n]
    ok &= lens > 0
    rows_all = np.nonzero(ok)[0]
    counts = lens[rows_all]
    owner = np.repeat(rows_all, counts)
    starts = off[rows_all]
    pos = np.repeat(starts - np.cumsum(np.concatenate(([0], counts[:-1]))), counts) + np.arange(
        len(owner)
    )
    values = val[pos]
    keep = values > 0
    owner, values = owner[keep], values[keep].astype(np.uint64)
    h = np.full(len(owner), seed, dtype=np.uint64)
    parts = dict(scalar_parts)
    for i in range(index):
        h = mix_array(h ^ (values if i == list_at else parts[i][owner]))
    return RuleKeys(h, owner.astype(np.int64))


def _rule_keys_by_record(
    rule_no: int,
    rule: BlockingRule,
    schema: KeySchema,
    columns: Any,
    spine_side: bool,
    width: int,
) -> RuleKeys:
    """Rules with several list keys (none in the default model): record by record."""
    fn = compile_record_keys([(rule_no, rule)], schema, spine_side=spine_side, width=width)
    keys: list[int] = []
    rows: list[int] = []
    for r in range(len(columns)):
        for k, _ in fn(columns.record(r)):
            keys.append(k)
            rows.append(r)
    return RuleKeys(np.array(keys, dtype=np.uint64), np.array(rows, dtype=np.int64))


def _band_column(bloom: np.ndarray, rule: BlockingRule, width: int) -> np.ndarray:
    """The LSH band value of every row's encoding (``bloom``: uint8 rows, big-endian)."""
    positions = lsh_positions(rule, width)
    n_bytes = width // 8
    out = np.zeros(len(bloom), dtype=np.uint64)
    for i, p in enumerate(positions):
        bit = (bloom[:, n_bytes - 1 - p // 8] >> np.uint8(p % 8)) & np.uint8(1)
        out |= bit.astype(np.uint64) << np.uint64(i)
    return out
