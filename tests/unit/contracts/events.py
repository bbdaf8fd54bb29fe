"""Valid events for the contract tests."""

from __future__ import annotations

from typing import Any

from contracts import examples_of
from contracts.events import (
    ChildRecordReceived,
    LinkageKeysPublished,
    LinkResultPublished,
    MessageDeadLettered,
    PseudonymisedRecordPublished,
)
from contracts.records import ChildRecord

TOKEN = "Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MGFi"


def child_received(**record_changes: Any) -> ChildRecordReceived:
    record = examples_of(ChildRecord)[0] | record_changes
    return ChildRecordReceived.model_validate(
        {"record": record, "delivery_id": "dlv-2024-05-01-0001", "line_number": 1}
    )


def pseudonymised(**changes: Any) -> dict[str, Any]:
    return examples_of(PseudonymisedRecordPublished)[0] | changes


def linkage_keys(**changes: Any) -> dict[str, Any]:
    return examples_of(LinkageKeysPublished)[0] | changes


def link_result(**changes: Any) -> dict[str, Any]:
    return examples_of(LinkResultPublished)[0] | changes


def dead_letter(**changes: Any) -> dict[str, Any]:
    return examples_of(MessageDeadLettered)[0] | changes
