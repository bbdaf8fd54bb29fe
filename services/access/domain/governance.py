"""Data controllers' sign-off: every controller whose data a project uses signs before the
panel's approval can take effect.

Court datasets come from Cafcass (England) and Cafcass Cymru (Wales); every extract carries
the linkage to the population spine (``ALF_E``), so the spine's owner signs every project.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "CONTROLLERS",
    "SPINE_OWNER",
    "controllers_required",
    "missing_sign_offs",
    "sign_off_problem",
]

SPINE_OWNER = "wds"

CONTROLLERS: Mapping[str, str] = {
    "cafcass": "Cafcass",
    "cafcass-cymru": "Cafcass Cymru",
    SPINE_OWNER: "Welsh Demographic Service (the spine's owner)",
}
"""The data controllers (their ``fjo_source`` names) and how people know them."""

_COURT_CONTROLLERS = ("cafcass", "cafcass-cymru")

_DATASET_CONTROLLERS: Mapping[str, tuple[str, ...]] = {
    "case": _COURT_CONTROLLERS,
    "child": _COURT_CONTROLLERS,
    "adult-party": _COURT_CONTROLLERS,
    "party-child-relationship": _COURT_CONTROLLERS,
    "hearing": _COURT_CONTROLLERS,
}


def controllers_required(datasets: Iterable[str]) -> tuple[str, ...]:
    """The controllers who must sign a project asking for ``datasets`` (in the order of
    ``CONTROLLERS``); an unknown dataset needs every controller, never fewer."""
    needed = {SPINE_OWNER}
    for name in datasets:
        needed.update(_DATASET_CONTROLLERS.get(name, tuple(CONTROLLERS)))
    return tuple(c for c in CONTROLLERS if c in needed)


def missing_sign_offs(required: Iterable[str], signed: Iterable[str]) -> list[str]:
    """Who still has to sign."""
    done = set(signed)
    return [c for c in required if c not in done]


def sign_off_problem(
    *, state: str, controller: str, required: Iterable[str], signed: Iterable[str]
) -> str | None:
    """Why this controller may not sign now (None when they may)."""
    if state != "submitted":
        return f"only a submitted project is signed off (it is {state})"
    if controller not in set(required):
        return "the project does not use this controller's data"
    if controller in set(signed):
        return "this controller has signed already"
    return None
