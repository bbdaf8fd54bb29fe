"""The demo's people: who signs in to the portal through the dev sign-in, with which roles."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PERSONAS", "Persona", "persona"]


@dataclass(frozen=True, slots=True)
class Persona:
    subject: str
    name: str
    what: str
    roles: tuple[str, ...]
    source: str | None = None
    """The data controller (or partner) a person acts for: the token's ``fjo_source``."""


PERSONAS: tuple[Persona, ...] = (
    Persona("alice", "Alice Morgan", "researcher, owns the demo project", ("researcher",)),
    Persona("bob", "Bob Evans", "researcher, a member of the demo project", ("researcher",)),
    Persona("carol", "Carol Price", "information governance review panel", ("approver",)),
    Persona("cerys", "Cerys Jones", "signs for Cafcass", ("data-controller",), "cafcass"),
    Persona(
        "catrin", "Catrin Hughes", "signs for Cafcass Cymru", ("data-controller",), "cafcass-cymru"
    ),
    Persona(
        "gareth", "Gareth Lloyd", "signs for the spine's owner (WDS)", ("data-controller",), "wds"
    ),
    Persona("dave", "Dave Roberts", "output checker", ("output-checker",)),
    Persona("erin", "Erin Thomas", "output checker", ("output-checker",)),
    Persona("rita", "Rita Davies", "clerical reviewer of possible matches", ("link-reviewer",)),
    Persona("root", "Olu Adeyemi", "operator and administrator", ("admin", "operator")),
)


def persona(subject: str) -> Persona | None:
    return next((p for p in PERSONAS if p.subject == subject), None)
