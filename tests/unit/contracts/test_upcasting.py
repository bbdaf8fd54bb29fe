"""Old payloads are brought to the latest version by pure upcasters before they meet the model.

A toy event family lives in its own registry here; fjo's real registry has no old versions yet.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import Field

from contracts.envelope import Envelope, parse_data
from contracts.events import Event
from contracts.registry import (
    EVENT_TYPES,
    EventRegistry,
    UnknownEventType,
    UnsupportedEventVersion,
    upcast,
)


class ToyMeasured(Event):
    """Toy event at v3: v1 had ``size`` in centimetres only, v2 added ``unit``, v3 renamed size."""

    event_type: ClassVar[str] = "toy.measured.v3"
    length: float = Field(description="Length.", examples=[1.5])
    unit: str = Field(description="Unit.", examples=["m"])

    def partition_key(self) -> str:
        return "toy"


def upcast_v1_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "unit": "cm"}


def upcast_v2_v3(data: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in data.items() if k != "size"}
    out["length"] = data["size"] / 100 if data["unit"] == "cm" else data["size"]
    out["unit"] = "m"
    return out


def toy_registry() -> EventRegistry:
    registry = EventRegistry([ToyMeasured])
    registry.register_upcaster("toy.measured.v1", upcast_v1_v2)
    registry.register_upcaster("toy.measured.v2", upcast_v2_v3)
    return registry


def test_a_v1_payload_is_upcast_through_every_step_to_the_latest_model() -> None:
    event = toy_registry().parse("toy.measured.v1", 1, {"size": 150})
    assert event == ToyMeasured(length=1.5, unit="m")


def test_a_payload_at_the_latest_version_passes_unchanged() -> None:
    assert upcast("toy.measured.v3", 3, {"length": 2, "unit": "m"}, registry=toy_registry()) == {
        "length": 2,
        "unit": "m",
    }


def test_upcasting_never_changes_the_callers_data() -> None:
    data = {"size": 150}
    toy_registry().upcast("toy.measured.v1", 1, data)
    assert data == {"size": 150}


def test_parse_data_upcasts_an_old_envelope_with_the_given_registry() -> None:
    old = Envelope.model_validate(
        {
            "event_id": "6f1c1f5e-3f43-4a51-9a39-0d1f2b8d2a11",
            "type": "toy.measured.v2",
            "source": "link",
            "time": "2024-05-01T09:31:02Z",
            "partition_key": "toy",
            "schema_version": 2,
            "data": {"size": 3, "unit": "m"},
        }
    )
    assert parse_data(old, registry=toy_registry()) == ToyMeasured(length=3, unit="m")


def test_a_version_newer_than_the_reader_is_refused() -> None:
    with pytest.raises(UnsupportedEventVersion, match="newer"):
        toy_registry().upcast("toy.measured.v4", 4, {})


def test_a_gap_in_the_upcaster_chain_is_refused() -> None:
    registry = EventRegistry([ToyMeasured])
    registry.register_upcaster("toy.measured.v2", upcast_v2_v3)
    with pytest.raises(UnsupportedEventVersion, match=r"no upcaster from toy\.measured\.v1"):
        registry.upcast("toy.measured.v1", 1, {"size": 1})


def test_an_upcaster_cannot_start_at_or_after_the_latest_version() -> None:
    with pytest.raises(ValueError, match="not older"):
        EventRegistry([ToyMeasured]).register_upcaster("toy.measured.v3", upcast_v1_v2)


def test_a_family_registers_once() -> None:
    with pytest.raises(ValueError, match="already registered"):
        EventRegistry([ToyMeasured, ToyMeasured])


def test_a_type_suffix_that_disagrees_with_the_version_is_refused() -> None:
    with pytest.raises(UnsupportedEventVersion):
        toy_registry().upcast("toy.measured.v1", 2, {})


def test_an_unknown_type_is_reported_as_such() -> None:
    with pytest.raises(UnknownEventType):
        EVENT_TYPES.model_for("toy.measured.v1")


def test_the_real_registry_holds_the_latest_type_of_every_event_and_no_toy() -> None:
    assert "ingest.child-received.v1" in EVENT_TYPES.event_types
    assert all(not t.startswith("toy.") for t in EVENT_TYPES.event_types)
