"""Valid payloads for the contract tests, taken from the models' own declared examples."""

from __future__ import annotations

import copy
from typing import Any

from contracts import examples_of
from contracts.records import (
    AdultPartyRecord,
    CaseRecord,
    ChildRecord,
    HearingRecord,
    PartyChildRelationshipRecord,
    SpinePersonRecord,
)


def example(model: type[Any], **changes: Any) -> dict[str, Any]:
    """A copy of the model's first declared example with ``changes`` (None removes a key)."""
    data = copy.deepcopy(examples_of(model)[0])
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def case(**changes: Any) -> dict[str, Any]:
    return example(CaseRecord, **changes)


def child(**changes: Any) -> dict[str, Any]:
    return example(ChildRecord, **changes)


def adult(**changes: Any) -> dict[str, Any]:
    return example(AdultPartyRecord, **changes)


def relationship(**changes: Any) -> dict[str, Any]:
    return example(PartyChildRelationshipRecord, **changes)


def hearing(**changes: Any) -> dict[str, Any]:
    return example(HearingRecord, **changes)


def spine_person(**changes: Any) -> dict[str, Any]:
    return example(SpinePersonRecord, **changes)
