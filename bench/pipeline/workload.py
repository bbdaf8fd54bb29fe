"""The pipeline benchmark's workload: a synthetic world on disk (the spine feed and the
Cafcass feeds) and the partners who push it over ingest's HTTP API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.records import PERSON_RECORD_TYPES

__all__ = ["ISSUER", "Workload", "build_workload", "push_feeds"]

ISSUER = "https://dev.fjo.invalid"
RECORDS_PER_CASE = 11.5  # incoming records per case in fjo synth's world (measured)


@dataclass(frozen=True)
class Workload:
    """The world on disk: the spine feed and the incoming (Cafcass) feeds, with counts."""

    folder: Path
    config: dict[str, Any]
    spine: list[tuple[str, str, Path]]
    incoming: list[tuple[str, str, Path]]
    spine_valid: int
    spine_invalid: int
    incoming_valid: int
    incoming_invalid: int
    incoming_persons: int
    mean_line_bytes: float
    spine_ids: list[tuple[str, str, str]]
    incoming_ids: list[tuple[str, str, str]]
    """(source, record type, record id) of every valid record: followed to access by token."""


def build_workload(folder: Path, *, records: int, spine_size: int, seed: int) -> Workload:
    """A world whose Cafcass feeds hold about ``records`` valid records."""
    from synth.world import FEEDS, WorldConfig, build_world, write_world

    def world_for(cases: int) -> Any:
        return build_world(WorldConfig(seed=seed, spine_size=spine_size, cases=max(2, cases)))

    def incoming(w: Any) -> int:
        return sum(len(rows) for (s, _k), rows in w.records.items() if s != "wds")

    cases = max(2, round(records / RECORDS_PER_CASE))
    world = world_for(cases)
    got = incoming(world)
    if got and abs(got - records) > 0.05 * records:  # one refinement by the observed ratio
        world = world_for(round(cases * records / got))
    files = write_world(world, folder)
    counts = world.counts()
    spine = [(s, k, files[f"{s}/{k}"]) for s, k in FEEDS if s == "wds"]
    feeds = [(s, k, files[f"{s}/{k}"]) for s, k in FEEDS if s != "wds"]
    persons = {t.value for t in PERSON_RECORD_TYPES}
    lines = [p.stat().st_size for _s, _k, p in feeds]
    valid_in = sum(counts[f"{s}/{k}"]["valid"] for s, k, _ in feeds)
    invalid_in = sum(counts[f"{s}/{k}"]["invalid"] for s, k, _ in feeds)
    return Workload(
        folder=folder,
        config={
            "seed": seed,
            "spine_size": world.config.spine_size,
            "cases": world.config.cases,
        },
        spine=spine,
        incoming=feeds,
        spine_valid=sum(counts[f"{s}/{k}"]["valid"] for s, k, _ in spine),
        spine_invalid=sum(counts[f"{s}/{k}"]["invalid"] for s, k, _ in spine),
        incoming_valid=valid_in,
        incoming_invalid=invalid_in,
        incoming_persons=sum(counts[f"{s}/{k}"]["valid"] for s, k, _ in feeds if k in persons),
        mean_line_bytes=round(sum(lines) / max(1, valid_in + invalid_in), 1),
        spine_ids=[(s, k, r["record_id"]) for s, k, _p in spine for r in world.records[(s, k)]],
        incoming_ids=[(s, k, r["record_id"]) for s, k, _p in feeds for r in world.records[(s, k)]],
    )


def push_feeds(
    url: str, issuer: Any, feeds: Sequence[tuple[str, str, Path]], part_bytes: int
) -> list[dict[str, Any]]:
    """Push ``feeds`` as their partners would: each partner in its own thread, its feeds in
    order, with ``fjo push``'s resumable upload; the receipts."""
    from fjo.push_cli import push_file

    by_source: dict[str, list[tuple[str, str, Path]]] = {}
    for feed in feeds:
        by_source.setdefault(feed[0], []).append(feed)

    def partner(source: str) -> list[dict[str, Any]]:
        token = issuer.mint(
            f"{source}-uploader", audience="fjo-ingest", roles=["partner"], source=source
        )
        out = []
        for _s, kind, path in by_source[source]:
            receipt = push_file(
                path,
                source=source,
                record_type=kind,
                url=url,
                token=token,
                part_bytes=part_bytes,
                state_file=path.with_name(f"{path.name}.{uuid.uuid4().hex[:6]}.fjo-push.json"),
            )
            out.append({**receipt, "feed": f"{source}/{kind}"})
        return out

    with ThreadPoolExecutor(max_workers=len(by_source), thread_name_prefix="partner") as pool:
        results = list(pool.map(partner, list(by_source)))
    return [r for rs in results for r in rs]
