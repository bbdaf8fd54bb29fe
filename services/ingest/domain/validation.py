"""Checks one candidate against its record contract and the caller's source: pure, no I/O."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from contracts.events.ingest import FieldError
from contracts.records import RECORD_MODELS, PartnerRecord, RecordType, SourceAgency
from services.ingest.domain.parsing import Candidate

__all__ = [
    "Accepted",
    "Rejected",
    "csv_list_fields",
    "source_may_send",
    "validate_candidate",
]

SOURCE_MISMATCH = FieldError(
    path="source",
    message="a record's source must be the calling partner's own agency",
    type="source_mismatch",
)


_UNCHECKABLE = (ArithmeticError, RecursionError)


def _unchecked(exc: BaseException) -> FieldError:
    return FieldError(
        path="",
        message=f"record could not be checked ({type(exc).__name__})",
        type="record_uncheckable",
    )


@dataclass(frozen=True, slots=True)
class Accepted:
    """A candidate that passed its contract."""

    line: int
    record: PartnerRecord


@dataclass(frozen=True, slots=True)
class Rejected:
    """A candidate that failed: its original text and the reasons, without values."""

    line: int
    raw: str
    errors: tuple[FieldError, ...]


def source_may_send(source: SourceAgency, record_type: RecordType) -> bool:
    """Whether the contract lets ``source`` send records of ``record_type`` at all."""
    return source in RECORD_MODELS[record_type].allowed_sources


def validate_candidate(
    candidate: Candidate, record_type: RecordType, source: SourceAgency
) -> Accepted | Rejected:
    """The validated record, or why not; a record naming another source is refused.

    A record without ``source`` is taken to be the caller's (CSV files rarely repeat it on
    every row); one that names another agency is rejected, never re-labelled.
    """
    if candidate.data is None:
        problem = candidate.problem
        assert problem is not None
        error = FieldError(
            path=".".join(str(p) for p in problem.loc), message=problem.msg, type=problem.type
        )
        return Rejected(candidate.line, candidate.raw, (error,))
    data: dict[str, Any] = candidate.data
    claimed = data.get("source")
    mismatch = claimed is not None and claimed != source.value
    if claimed is None:
        data = {**data, "source": source.value}
    try:
        record = RECORD_MODELS[record_type].model_validate(data)
    except ValidationError as exc:
        errors = FieldError.from_validation_error(exc)
        if mismatch:
            errors = (SOURCE_MISMATCH, *(e for e in errors if e.path != "source"))
        return Rejected(candidate.line, candidate.raw, errors)
    except _UNCHECKABLE as exc:
        # pydantic wraps a validator's ValueError, not these: one record that trips them is
        # rejected on its own, never the delivery it came in (nothing of it is echoed).
        return Rejected(candidate.line, candidate.raw, (_unchecked(exc),))
    if mismatch:
        return Rejected(candidate.line, candidate.raw, (SOURCE_MISMATCH,))
    return Accepted(candidate.line, record)


def csv_list_fields(record_type: RecordType) -> frozenset[str]:
    """Top-level fields of a record kind that hold a list of plain values (``a|b`` in CSV)."""
    model = RECORD_MODELS[record_type]
    return frozenset(
        name for name, field in model.model_fields.items() if _is_scalar_list(field.annotation)
    )


def _is_scalar_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_scalar_list(arg) for arg in typing.get_args(annotation))
    if origin is typing.Annotated:
        return _is_scalar_list(typing.get_args(annotation)[0])
    if origin not in (list, tuple, set, frozenset):
        return False
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    return all(not (isinstance(a, type) and issubclass(a, BaseModel)) for a in args)
