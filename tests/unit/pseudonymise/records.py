"""Partner records shaped like the contracts' (plain dicts) and their field roles."""

from __future__ import annotations

from typing import Any

COMMON_ROLES: dict[str, str] = {
    "source": "drop",  # passed to split as an argument
    "record_id": "record_id",
    "record_version": "content",
    "extracted_at": "content",
}

CHILD_ROLES: dict[str, str] = {
    **COMMON_ROLES,
    "case_id": "ref:case",
    "forename": "forename",
    "middle_names": "middle_names",
    "surname": "surname",
    "date_of_birth": "date_of_birth",
    "sex": "sex",
    "nhs_number": "nhs_number",
    "address": "address",
    "ethnicity": "content",
    "living_situation": "content",
}

ADULT_ROLES: dict[str, str] = {
    **COMMON_ROLES,
    "case_id": "ref:case",
    "forename": "forename",
    "surname": "surname",
    "previous_surnames": "previous_surnames",
    "date_of_birth": "date_of_birth",
    "sex": "sex",
    "nhs_number": "nhs_number",
    "address": "address",
    "role": "content",
}

SPINE_ROLES: dict[str, str] = {
    **COMMON_ROLES,
    "forename": "forename",
    "middle_names": "middle_names",
    "surname": "surname",
    "previous_surnames": "previous_surnames",
    "date_of_birth": "date_of_birth",
    "sex": "sex",
    "nhs_number": "nhs_number",
    "date_of_death": "date_of_death",
    "address_history": "address_history",
}

CASE_ROLES: dict[str, str] = {
    **COMMON_ROLES,
    "court_case_number": "drop",
    "law_type": "content",
    "orders_sought": "content",
    "outcomes": "content",
    "outcomes.child_record_id": "ref:child",
}


def child(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": "cafcass-cymru",
        "record_id": "CHILD-0001",
        "record_version": 1,
        "extracted_at": "2024-05-01T09:00:00Z",
        "case_id": "CASE-0001",
        "forename": "Dafydd",
        "middle_names": "Rhys",
        "surname": "Evans",
        "date_of_birth": "2016-03-04",
        "sex": 1,
        "nhs_number": "9434765919",
        "address": {"line_1": "1 Heol y Frenhines", "line_2": "Caerdydd", "postcode": "CF10 4PS"},
        "ethnicity": "white",
        "living_situation": "foster-care",
    }
    record.update(overrides)
    return record


def adult(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": "cafcass-cymru",
        "record_id": "ADULT-0001",
        "record_version": 1,
        "extracted_at": "2024-05-01T09:00:00Z",
        "case_id": "CASE-0001",
        "forename": "Catrin",
        "surname": "Evans",
        "previous_surnames": ["Pritchard"],
        "date_of_birth": "1990-11-23",
        "sex": 2,
        "nhs_number": "4010232137",
        "address": {"line_1": "1 Heol y Frenhines", "postcode": "CF10 4PS"},
        "role": "mother",
    }
    record.update(overrides)
    return record


def spine(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": "wds",
        "record_id": "WDS-0001",
        "record_version": 3,
        "extracted_at": "2024-05-01T09:00:00Z",
        "forename": "Catrin",
        "middle_names": None,
        "surname": "Evans",
        "previous_surnames": ["Pritchard"],
        "date_of_birth": "1990-11-23",
        "sex": 2,
        "nhs_number": "4010232137",
        "date_of_death": None,
        "address_history": [
            {
                "address": {"line_1": "22 Stryd Fawr", "postcode": "SA1 3RL"},
                "from_date": "2008-09-14",
                "to_date": "2014-02-28",
            },
            {
                "address": {"line_1": "1 Heol y Frenhines", "postcode": "CF10 4PS"},
                "from_date": "2014-03-01",
                "to_date": None,
            },
        ],
    }
    record.update(overrides)
    return record


def case(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "source": "cafcass-cymru",
        "record_id": "CASE-0001",
        "record_version": 1,
        "extracted_at": "2024-05-01T09:00:00Z",
        "court_case_number": "CF24C00123",
        "law_type": "public",
        "orders_sought": ["care", "interim-care"],
        "outcomes": [
            {"child_record_id": "CHILD-0001", "order_made": "care", "order_date": "2017-01-09"}
        ],
    }
    record.update(overrides)
    return record
