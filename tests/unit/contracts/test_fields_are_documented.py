"""Every field of every contract model has a description and at least one example."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from contracts.envelope import Envelope
from contracts.events import ALL_EVENTS
from contracts.identifiers import models_in
from contracts.records import RECORD_MODELS


def all_models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    queue: list[type[BaseModel]] = [Envelope, *ALL_EVENTS, *RECORD_MODELS.values()]
    while queue:
        model = queue.pop()
        if model in found:
            continue
        found.append(model)
        for field in model.model_fields.values():
            queue.extend(models_in(field.annotation))
    return sorted(found, key=lambda m: m.__name__)


MODELS = all_models()


def test_the_walk_reaches_nested_models() -> None:
    names = {m.__name__ for m in MODELS}
    assert {"Address", "AddressPeriod", "ChildOutcome", "FieldError"} <= names


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_has_a_description_and_an_example(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} has no description"
        assert field.examples, f"{model.__name__}.{name} has no example"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_has_a_docstring(model: type[BaseModel]) -> None:
    assert (model.__doc__ or "").strip()


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_is_frozen_and_forbids_unknown_fields(model: type[BaseModel]) -> None:
    assert model.model_config.get("frozen") is True
    assert model.model_config.get("extra") == "forbid"


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_example_is_a_valid_value_of_the_fields_type(model: type[BaseModel]) -> None:
    # Cross-field rules need the whole model (its declared examples are parsed elsewhere);
    # here each example is checked against the field's own type and constraints.
    for name, field in model.model_fields.items():
        annotation = (
            Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        )
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)
        for example in field.examples or []:
            try:
                adapter.validate_json(json.dumps(example))
            except ValidationError as exc:
                pytest.fail(f"{model.__name__}.{name} example is invalid: {exc}")
