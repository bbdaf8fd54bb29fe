"""Validation errors without the offending values, so logs and receipts never echo an identifier."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

__all__ = ["error_path", "safe_errors"]


def safe_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """``loc``, ``msg`` and ``type`` of each error; never ``input`` or ``ctx``.

    Pydantic's ``exc.errors()`` includes the rejected ``input`` (a name, a date of birth...):
    anything that logs, stores or publishes validation errors must use this instead.
    """
    return [
        {"loc": tuple(err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def error_path(loc: tuple[int | str, ...]) -> str:
    """``("address", "postcode")`` -> ``"address.postcode"``; ``""`` for the whole record."""
    return ".".join(str(part) for part in loc)
