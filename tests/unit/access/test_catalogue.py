"""The catalogue decides the quasi-identifiers; a project can only add to them."""

from __future__ import annotations

from services.access.domain.catalogue import (
    CATALOGUE,
    QUASI_IDENTIFIERS,
    pinned_quasi_identifiers,
    quasi_identifier_problem,
)


def test_every_variable_marked_as_a_quasi_identifier_is_in_the_ordered_set_and_only_those() -> None:
    marked = {v.name for d in CATALOGUE.values() for v in d.variables if v.quasi_identifier}
    assert marked == set(QUASI_IDENTIFIERS)
    assert len(QUASI_IDENTIFIERS) == len(set(QUASI_IDENTIFIERS))


def test_every_date_and_the_demographics_and_areas_are_quasi_identifiers() -> None:
    dates = {v.name for d in CATALOGUE.values() for v in d.variables if v.type == "date"}
    assert dates | {"GNDR_CD", "LSOA_CD", "LA_CD_E", "ETHNICITY"} <= set(QUASI_IDENTIFIERS)


def test_a_project_adds_to_the_set_and_never_takes_away() -> None:
    assert pinned_quasi_identifiers() == QUASI_IDENTIFIERS
    assert pinned_quasi_identifiers(["DISABILITY", "GNDR_CD", "DISABILITY"]) == (
        *QUASI_IDENTIFIERS,
        "DISABILITY",
    )


def test_unknown_names_and_record_pseudonyms_cannot_be_added() -> None:
    assert quasi_identifier_problem("NOT_A_COLUMN") == "is not a variable of the catalogue"
    for pseudonym in ("ALF_E", "SYSTEM_ID_E", "CASE_ID_E", "CHILD_ID_E"):
        assert quasi_identifier_problem(pseudonym) is not None
    for fine in ("DISABILITY", "ALF_STS_CD", "LA_CD_E", "WOB"):
        assert quasi_identifier_problem(fine) is None
