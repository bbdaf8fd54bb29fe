"""Validation errors can be logged and returned without echoing any identifier."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from contracts.errors import error_path, safe_errors
from contracts.events import FieldError
from contracts.records import ChildRecord
from tests.unit.contracts import examples

CANARY_DOB = "2999-12-31"
CANARY_NHS = "12345CANARY"


def invalid_child() -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        ChildRecord.model_validate(
            examples.child(date_of_birth=CANARY_DOB, nhs_number=CANARY_NHS, nickname="Canarina")
        )
    return caught.value


def test_safe_errors_keep_location_message_and_type_only() -> None:
    errors = safe_errors(invalid_child())
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)
    assert {e["loc"] for e in errors} == {
        ("date_of_birth",),
        ("nhs_number",),
        ("(unknown field)",),
    }


def test_safe_errors_never_contain_the_rejected_values() -> None:
    text = json.dumps(safe_errors(invalid_child()))
    assert CANARY_DOB not in text and CANARY_NHS not in text and "Canarina" not in text


def test_the_text_of_a_validation_error_hides_its_inputs() -> None:
    text = str(invalid_child())
    assert CANARY_DOB not in text and CANARY_NHS not in text and "Canarina" not in text


def test_field_errors_for_a_receipt_carry_dotted_paths() -> None:
    with pytest.raises(ValidationError) as caught:
        ChildRecord.model_validate(examples.child(address={"postcode": "nope"}))
    assert FieldError.from_validation_error(caught.value) == (
        FieldError(
            path="address.postcode",
            message="postcode must be a full UK postcode such as CF10 1AA",
            type="postcode_format",
        ),
    )


def test_error_paths_join_names_and_indexes_with_dots() -> None:
    assert error_path(("outcomes", 0, "order_made")) == "outcomes.0.order_made"
    assert error_path(()) == ""


def test_unknown_keys_are_redacted_for_logs_because_a_headerless_csv_makes_data_the_keys() -> None:
    with pytest.raises(ValidationError) as caught:
        ChildRecord.model_validate(examples.child(**{"Canarina Jones": "x"}))
    assert "Canarina" not in json.dumps(safe_errors(caught.value))
    kept = safe_errors(caught.value, keep_unknown_keys=True)
    assert kept[0]["loc"] == ("Canarina Jones",)


def test_field_errors_for_the_partner_keep_the_unknown_key_to_fix() -> None:
    with pytest.raises(ValidationError) as caught:
        ChildRecord.model_validate(examples.child(favourite_colour="blue"))
    (error,) = FieldError.from_validation_error(caught.value)
    assert (error.path, error.type) == ("favourite_colour", "extra_forbidden")
