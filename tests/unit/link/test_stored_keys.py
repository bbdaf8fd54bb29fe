"""Link's stored keys: the typed record form round-trips, and rows stored in the split's old
dict form (flags by the split's names) are migrated to it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from contracts.events import QualityFlag
from services.link.bootstrap import MIGRATIONS, VERSION_TABLE
from services.link.domain import EncodedRecord, LinkageModel, default_model
from services.runtime.db import make_engine
from services.runtime.migrations import upgrade
from tests.unit.link.fakes import keys


def test_a_record_round_trips_through_its_stored_form() -> None:
    rec = keys("C1", "baby", "pugh", "2020-01-01", "F", "SA1 2BC", "4 maes", "943", False)
    assert rec.flags == {
        QualityFlag.FORENAME_PLACEHOLDER,
        QualityFlag.DATE_OF_BIRTH_PLACEHOLDER,
        QualityFlag.NHS_NUMBER_INVALID,
    }
    assert EncodedRecord.from_json("C1", rec.to_json()) == rec


def test_rows_stored_in_the_old_split_form_are_migrated_to_the_record_form(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'link.db'}")
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE, revision="0001")
    old = {
        "tokens": {"surname": "s:pugh", "postcode_unit": "pu:new"},
        "token_sets": {"surnames": ["s:pugh"]},
        "blooms": {"surname": "AAEC"},
        "addresses": [{"postcode_unit": "pu:old"}, {"postcode_unit": "pu:new"}],
        "flags": {"dob_placeholder": True, "nhs_invalid": False, "sex_unrecognised": True},
    }
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO link_incoming_keys (record_token, record_type, record_version, "
                "linkage) VALUES ('R1', 'child', 1, :linkage)"
            ),
            {"linkage": json.dumps(old)},
        )
    upgrade(engine, MIGRATIONS, version_table=VERSION_TABLE)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT linkage FROM link_incoming_keys")).scalar_one()
    engine.dispose()
    rec = EncodedRecord.from_json("R1", stored)
    assert rec.tokens == {
        "surname": "s:pugh",
        "postcode_unit": "pu:new",
        "surnames": ("s:pugh",),
        "previous_postcode_units": ("pu:old",),
    }
    assert rec.flags == {QualityFlag.DATE_OF_BIRTH_PLACEHOLDER, QualityFlag.SEX_UNKNOWN}


def test_a_model_naming_a_flag_that_does_not_exist_is_refused() -> None:
    data = json.loads(default_model().to_json())
    data["comparisons"][0]["null_if_flag"] = ["forename_placeholder"]  # the split's old name
    with pytest.raises(ValueError, match="unknown quality flags \\['forename_placeholder'\\]"):
        LinkageModel.from_dict(data)
    assert LinkageModel.from_json(default_model().to_json()) == default_model()
