"""Partner records carrying canary identifiers, for the leak tests.

Every identifying value here is distinctive, so finding it (or an unkeyed hash of it, see
``tests/leakscan.py``) anywhere downstream of pseudonymise proves a leak. Dates of birth are
not Mondays, because a Monday birth date equals its own week of birth, which research keeps.
"""

from __future__ import annotations

from typing import Any

from contracts.records import RECORD_MODELS, PartnerRecord, RecordType

__all__ = ["CANARIES", "CANARY_DATES", "CANARY_TEXT", "canary_records"]

SOURCE = "cafcass-cymru"
CASE_ID = "CASE-CANARY-7731"
CHILD_ID = "CH-CANARY-88213"
ADULT_ID = "AD-CANARY-55190"
SPINE_ID = "WDS-CANARY-4471902"

CHILD_FORENAME = "Zephyrinax"
CHILD_MIDDLE = "Quorabelle"
FAMILY_SURNAME = "Vantresswick"
ADULT_FORENAME = "Ondraleigh"
ADULT_MAIDEN = "Pellucidwyn"
CHILD_NHS = "7382910466"
ADULT_NHS = "6153849202"
CHILD_DOB = "2013-07-30"
ADULT_DOB = "1988-02-17"
ADDRESS_LINE = "17 Canarywhistle Terrace"
OLD_ADDRESS_LINE = "4 Gwenynfeirch Close"
COURT_CASE_NUMBER = "CF13C99871"

CANARIES: tuple[str, ...] = (
    CASE_ID, CHILD_ID, ADULT_ID, SPINE_ID,
    CHILD_FORENAME, CHILD_MIDDLE, FAMILY_SURNAME, ADULT_FORENAME, ADULT_MAIDEN,
    CHILD_NHS, ADULT_NHS, CHILD_DOB, ADULT_DOB,
    ADDRESS_LINE, OLD_ADDRESS_LINE, COURT_CASE_NUMBER,
)  # fmt: skip


CANARY_DATES: tuple[str, ...] = (CHILD_DOB, ADULT_DOB)
"""Dates of birth: distinctive in a test's own records, but any other record may carry the
same date as an ordinary case or hearing date, so scans of shared stores skip them."""
CANARY_TEXT: tuple[str, ...] = tuple(c for c in CANARIES if c not in CANARY_DATES)
"""Every canary that no legitimate record can contain by chance."""


def _raw(suffix: str = "") -> dict[RecordType, dict[str, Any]]:
    address = {"line_1": ADDRESS_LINE, "postcode": "CF10 4PS"}
    return {
        RecordType.CASE: {
            "source": SOURCE, "record_id": CASE_ID + suffix, "record_version": 1,
            "extracted_at": "2024-05-01T09:30:00Z",
            "court_case_number": COURT_CASE_NUMBER, "law_type": "public",
            "orders_sought": ["s31-care"], "applicant_type": "local-authority",
            "local_authority_code": "W06000015", "received_date": "2020-01-06",
            "outcomes": [{"child_record_id": CHILD_ID + suffix, "order_made": "care-order",
                          "order_date": "2020-09-01"}],
        },
        RecordType.CHILD: {
            "source": SOURCE, "record_id": CHILD_ID + suffix, "record_version": 1,
            "extracted_at": "2024-05-01T09:30:00Z",
            "case_id": CASE_ID + suffix, "forename": CHILD_FORENAME,
            "middle_names": CHILD_MIDDLE, "surname": FAMILY_SURNAME,
            "date_of_birth": CHILD_DOB, "sex": 2, "nhs_number": CHILD_NHS, "address": address,
        },
        RecordType.ADULT_PARTY: {
            "source": SOURCE, "record_id": ADULT_ID + suffix, "record_version": 1,
            "extracted_at": "2024-05-01T09:30:00Z",
            "case_id": CASE_ID + suffix, "forename": ADULT_FORENAME, "surname": FAMILY_SURNAME,
            "previous_surnames": [ADULT_MAIDEN], "date_of_birth": ADULT_DOB, "sex": 2,
            "address": address, "nhs_number": ADULT_NHS, "role": "respondent",
            "relationship_to_child": "mother",
        },
        RecordType.PARTY_CHILD_RELATIONSHIP: {
            "source": SOURCE, "record_id": f"REL-CANARY-1{suffix}", "record_version": 1,
            "extracted_at": "2024-05-01T09:30:00Z",
            "case_id": CASE_ID + suffix, "adult_record_id": ADULT_ID + suffix,
            "child_record_id": CHILD_ID + suffix, "relationship": "mother",
        },
        RecordType.HEARING: {
            "source": SOURCE, "record_id": f"HR-CANARY-1{suffix}", "record_version": 1,
            "extracted_at": "2024-05-01T09:30:00Z",
            "case_id": CASE_ID + suffix, "hearing_type": "final", "hearing_date": "2020-09-01",
            "status": "effective",
        },
        RecordType.SPINE_PERSON: {
            "source": "wds", "record_id": SPINE_ID + suffix, "record_version": 1,
            "extracted_at": "2024-05-01T09:30:00Z",
            "forename": ADULT_FORENAME, "surname": FAMILY_SURNAME,
            "previous_surnames": [ADULT_MAIDEN], "date_of_birth": ADULT_DOB, "sex": 2,
            "nhs_number": ADULT_NHS,
            "address_history": [
                {"address": {"line_1": OLD_ADDRESS_LINE, "postcode": "SA1 3RL"},
                 "from_date": "2006-03-01", "to_date": "2015-05-31"},
                {"address": address, "from_date": "2015-06-01"},
            ],
        },
    }  # fmt: skip


def canary_records(suffix: str = "") -> dict[RecordType, PartnerRecord]:
    """One validated record of every kind; ``suffix`` makes the record ids unique per test."""
    return {kind: RECORD_MODELS[kind].model_validate(raw) for kind, raw in _raw(suffix).items()}
