"""The demo's leak check: every identifier of the world looked for (``fjo.leakscan``: in
clear, encoded and as unkeyed hashes) in everything downstream of pseudonymise."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from contracts.topics import DOWNSTREAM_TOPICS
from fjo.stack.embedded import EmbeddedStack
from synth.world import World

__all__ = ["leak_check", "scan_places", "world_identifiers"]

_EARLIEST_CONTENT_DATE = date(2011, 1, 1)


def world_identifiers(world: World) -> tuple[set[str], set[str], int]:
    """Identifier values of every record and invalid line of the world, for the leak scan.

    Returns (canaries, hashed-only canaries, values too short to scan). Values that cannot
    be told apart in clear from what research keeps by design are looked for only encoded
    and as unkeyed hashes: dates of birth that are Mondays (a week of birth) or fall in the
    years of cases and hearings, and names made only of words that also occur in the
    records' content (the surname Foster and the living situation ``foster-care``) or in the
    platform's own people (a child named Gareth, and Gareth the spine owner's signatory,
    whose subject the access database keeps by design for every sign-off he makes).
    """
    from contracts.identifiers import IdentifierKind, identifier_field_kinds
    from contracts.records import RECORD_MODELS, RecordType
    from fjo.leakscan import MIN_CANARY_LENGTH
    from fjo.personas import PERSONAS

    canaries: set[str] = set()
    hashed: set[str] = set()
    short = 0
    content_words: set[str] = set()

    def add(value: Any, kind: IdentifierKind) -> None:
        nonlocal short
        if isinstance(value, list | tuple):
            for v in value:
                add(v, kind)
            return
        if isinstance(value, dict):
            # An address period's from/to dates are not identifiers; its address is.
            for k, v in value.items():
                if not k.endswith("_date"):
                    add(v, kind)
            return
        if not isinstance(value, str) or not value.strip():
            return
        if len(value.strip()) < MIN_CANARY_LENGTH:
            short += 1
            return
        if kind is IdentifierKind.DATE_OF_BIRTH or kind is IdentifierKind.DATE_OF_DEATH:
            try:
                d = date.fromisoformat(value)
            except ValueError:
                canaries.add(value)
                return
            if d.weekday() != 0 and d < _EARLIEST_CONTENT_DATE:
                canaries.add(value)
            else:
                hashed.add(value)
            return
        if kind is IdentifierKind.NAME:
            names.add(value)
            return
        canaries.add(value)

    names: set[str] = set()

    def walk(record: Mapping[str, Any], kinds: Mapping[str, IdentifierKind]) -> None:
        for path, kind in kinds.items():
            values: list[Any] = [record]
            for part in path.split("."):
                nxt: list[Any] = []
                for v in values:
                    if isinstance(v, list | tuple):
                        nxt.extend(x.get(part) for x in v if isinstance(x, dict))
                    elif isinstance(v, dict):
                        nxt.append(v.get(part))
                values = nxt
            for v in values:
                add(v, kind)

    for (_source, kind), rows in world.records.items():
        kinds = identifier_field_kinds(RECORD_MODELS[RecordType(kind)])
        top = {path.split(".")[0] for path in kinds}
        for row in rows:
            walk(row, kinds)
            for key, value in row.items():
                if key not in top:
                    content_words.update(_words(json.dumps(value)))
    for line in world.invalid:
        try:
            row = json.loads(line.line)
        except ValueError:
            continue
        if isinstance(row, dict):
            walk(row, identifier_field_kinds(RECORD_MODELS[RecordType(line.record_type)]))
    for p in PERSONAS:
        content_words.update(_words(f"{p.subject} {p.name}"))
    for name in names:
        words = _words(name)
        (hashed if words and words <= content_words else canaries).add(name)
    return canaries, hashed - canaries, short


def _words(text: str) -> set[str]:
    return {w.casefold() for w in re.findall(r"[^\W_]+", text)}


def scan_places(world: World, places: Iterable[tuple[str, bytes]]) -> dict[str, Any]:
    """Scan each (name, blob) place for the world's identifiers (``fjo.leakscan``: clear,
    encoded, unkeyed hashes); the findings per place and in all."""
    from fjo.leakscan import LeakScanner

    canaries, hashed, short = world_identifiers(world)
    scanner = LeakScanner(canaries, hashed_only=hashed, bounded_clear=True)
    scanned: dict[str, dict[str, Any]] = {}
    for name, blob in places:
        result = scanner.scan(blob)
        scanned[name] = {
            "bytes": len(blob),
            "findings": result.findings[:20],
            "finding_count": len(result.findings),
            "chance_hits": result.chance_hits,
        }
    total = sum(p["finding_count"] for p in scanned.values())
    return {
        "clean": total == 0,
        "findings": total,
        "canaries": len(canaries),
        "hashed_only": len(hashed),
        "too_short_to_scan": short,
        "bytes_scanned": sum(p["bytes"] for p in scanned.values()),
        "chance_hits": sum(p["chance_hits"] for p in scanned.values()),
        "places": scanned,
    }


def leak_check(world: World, stack: EmbeddedStack, extract_dir: Path) -> dict[str, Any]:
    """Scan every store, topic, log and file downstream of pseudonymise for the world's
    identifiers."""
    return scan_places(world, _embedded_places(stack, extract_dir))


def _embedded_places(stack: EmbeddedStack, extract_dir: Path) -> Iterator[tuple[str, bytes]]:
    """The link and access databases, the downstream topics and the whole shared bus file
    (link and access open it, so every byte of it is downstream), the link and access logs
    and the extract's files (one at a time: a blob is dropped once scanned)."""
    for service in ("link", "access"):
        db = stack.database(service)
        for path in (db, db.with_name(db.name + "-wal")):
            if path.exists():
                yield f"database {path.name}", path.read_bytes()
    for topic in DOWNSTREAM_TOPICS:
        parts: list[bytes] = []
        for m in stack.read(topic.name):
            parts.extend(b for b in (m.key, m.value, *(v for _k, v in m.headers)) if b)
        yield f"topic {topic.name} ({len(parts)} parts)", b"\n".join(parts)
    for path in (stack.bus_path, stack.bus_path.with_name(stack.bus_path.name + "-wal")):
        if path.exists():
            yield f"shared bus file {path.name}", path.read_bytes()
    logs = stack.state_dir / "logs"
    for log in sorted(logs.glob("*.log")):
        if log.name.startswith(("link-", "access-")):
            yield f"log {log.name}", log.read_bytes()
    for f in sorted(extract_dir.glob("*")):
        if f.is_file():
            yield f"extract {f.name}", f.read_bytes()
