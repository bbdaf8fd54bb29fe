"""Clerical reviewers: link's possible-match queue, the evidence per comparison, decisions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import Response

from services.portal.sessions import SignedIn
from services.portal.web.context import Web, see_other

__all__ = ["reviewer_routes", "waterfall"]

Token = Annotated[str, Path(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
Skipped = Annotated[str, Query(max_length=5000, pattern=r"^[A-Za-z0-9_,-]*$")]


def waterfall(evidence: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Bars of a Splink-style waterfall: from the prior, each comparison's weight (bits) moves
    the running total; ``start``/``end`` are percentages across the chart's range."""
    if not evidence:
        return []
    steps = [("prior", "prior (before any comparison)", float(evidence.get("prior", 0.0)))]
    steps += [
        (c["comparison"], c["level"], float(c["weight"])) for c in evidence.get("comparisons", [])
    ]
    if evidence.get("guard_cap"):
        steps.append(
            ("guard", "capped: forename differs inside a household", evidence["guard_cap"])
        )
    competition = evidence.get("competition") or {}
    if competition.get("weight"):
        others = max(int(competition.get("candidates", 1)) - 1, 0)
        steps.append(
            (
                "other candidates",
                f"{others} other candidate(s) share the person",
                competition["weight"],
            )
        )
    running, points = 0.0, [0.0]
    for _name, _level, weight in steps:
        running += weight
        points.append(running)
    low, high = min(points), max(points)
    span = (high - low) or 1.0

    def pct(x: float) -> float:
        return round((x - low) / span * 100, 2)

    bars, running = [], 0.0
    for name, level, weight in steps:
        before, running = running, running + weight
        bars.append(
            {
                "name": name,
                "level": level,
                "weight": round(weight, 2),
                "total": round(running, 2),
                "left": min(pct(before), pct(running)),
                "width": max(abs(pct(running) - pct(before)), 0.5),
                "for": weight >= 0,
            }
        )
    return bars


def reviewer_routes(web: Web) -> APIRouter:
    router = APIRouter()
    person = Depends(web.person)
    checked = Depends(web.checked)

    @router.get("/review", summary="The next possible match, with its evidence.")
    def queue(request: Request, skip: Skipped = "", who: SignedIn = person) -> Response:
        # One item at a time, counted against the whole queue: every page of it.
        items = web.api(who).get_all("link", "/v1/review")
        skipped = {s for s in skip.split(",") if s}
        waiting = [i for i in items if i["record_token"] not in skipped]
        item = waiting[0] if waiting else None
        return web.render(
            request,
            "reviewer/queue.html",
            who,
            title="Possible matches",
            item=item,
            left=len(waiting),
            total=len(items),
            skip=",".join(sorted(skipped)),
            bars=waterfall(item.get("evidence") if item else None),
        )

    @router.post("/review/{record_token}", summary="Accept or reject a possible match (audited).")
    def decide(
        record_token: Token,
        decision: Annotated[Literal["accept", "reject"], Form()],
        skip: Annotated[str, Form(max_length=5000, pattern=r"^[A-Za-z0-9_,-]*$")] = "",
        who: SignedIn = checked,
    ) -> Response:
        web.api(who).post("link", f"/v1/review/{record_token}", {"accept": decision == "accept"})
        done = "Match accepted" if decision == "accept" else "Match rejected"
        return see_other(f"/review?skip={skip}" if skip else "/review", done)

    return router
