"""Validation errors without the offending values, so logs and receipts never echo an identifier."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

__all__ = ["UNKNOWN_FIELD", "error_path", "safe_errors"]


UNKNOWN_FIELD = "(unknown field)"


def safe_errors(exc: ValidationError, *, keep_unknown_keys: bool = False) -> list[dict[str, Any]]:
    """``loc``, ``msg`` and ``type`` of each error; never ``input`` or ``ctx``.

    Pydantic's ``exc.errors()`` includes the rejected ``input`` (a name, a date of birth...):
    anything that logs, stores or publishes validation errors must use this instead. The key
    of an unknown field is partner input too (a headerless CSV makes a data row the keys), so
    it becomes ``"(unknown field)"`` unless ``keep_unknown_keys`` (for the partner's receipt
    and the identifiable quarantine, which may show it).
    """
    out: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" and loc and not keep_unknown_keys:
            loc = (*loc[:-1], UNKNOWN_FIELD)
        out.append({"loc": loc, "msg": err["msg"], "type": err["type"]})
    return out


def error_path(loc: tuple[int | str, ...]) -> str:
    """``("address", "postcode")`` -> ``"address.postcode"``; ``""`` for the whole record."""
    return ".".join(str(part) for part in loc)
