"""The research store's catalogue: which datasets and variables a project can ask for.

Variables are declarative data: the extract column name (SAIL style), where the value comes
from in the research store, and whether it is pseudonymised per project (ALFs, record tokens,
organisation codes) or a quasi-identifier. Linkage columns (ALF_E, SYSTEM_ID_E, ALF_STS_CD,
ALF_MTCH_PCT) are part of every extract; everything else must be approved by name.

The quasi-identifiers are the catalogue's, not the project's: every indirect identifier an
extract can carry (week of birth, sex, areas, ethnicity, every date). A project, and its
approver, may add variables to the set (``pinned_quasi_identifiers``), never take one away.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from contracts.records.adult import PartyRole
from contracts.records.case import ApplicantType, LawType, OrderSought
from contracts.records.child import Ethnicity, LivingSituation
from contracts.records.hearing import HearingOutcome, HearingStatus, HearingType
from contracts.records.relationship import Relationship
from services.access.domain.pseudonyms import PseudonymKind

__all__ = [
    "CATALOGUE",
    "LINKAGE_COLUMNS",
    "QUASI_IDENTIFIERS",
    "Dataset",
    "Source",
    "Variable",
    "catalogue_variables",
    "pinned_quasi_identifiers",
    "quasi_identifier_problem",
]


class Source(StrEnum):
    """Where a variable's value lives in the research store."""

    RECORD = "record"  # a column of the research record (week_of_birth, sex, lsoa, ...)
    RELATED = "related"  # the token of a related record (case, adult, child)
    CONTENT = "content"  # a field of the record's content
    LINK = "link"  # the current linkage decision


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    source: Source
    field: str
    description: str
    type: str = "string"  # string | date | integer | float | boolean
    pseudonym: PseudonymKind | None = None
    quasi_identifier: bool = False
    banded: bool = False
    """Given in bands, not exactly (``generalisation.MATCH_PROBABILITY_BANDS``); dates are
    always given at the approval's precision."""
    values: tuple[str | int, ...] = ()
    """The value set of a coded variable (from the record contracts); dummy data draws
    from it."""


def _codes(enum: Iterable[StrEnum]) -> tuple[str, ...]:
    return tuple(e.value for e in enum)


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    description: str
    variables: tuple[Variable, ...]
    date_field: str | None
    """Content field dating the record; None: dated by its case (``case_token``)."""


LINKAGE_COLUMNS: tuple[Variable, ...] = (
    Variable(
        "ALF_E",
        Source.LINK,
        "alf",
        "Project-specific encrypted anonymous linking field (the person); empty if unlinked.",
        pseudonym=PseudonymKind.ALF,
    ),
    Variable(
        "SYSTEM_ID_E",
        Source.RECORD,
        "record_token",
        "Project-specific encrypted record identifier.",
        pseudonym=PseudonymKind.RECORD,
    ),
    Variable(
        "ALF_STS_CD",
        Source.LINK,
        "status_code",
        "Linkage status code (1 NHS number, 4 exact on five fields, 39 fuzzy forename, ...).",
        "integer",
        values=(1, 4, 39, 99),
    ),
    Variable(
        "ALF_MTCH_PCT",
        Source.LINK,
        "match_probability",
        "Match probability, 0-1, banded: the band's lower edge (0, 0.5, 0.8, 0.9, 0.95, 0.99).",
        "float",
        banded=True,
    ),
)

_WOB = Variable(
    "WOB",
    Source.RECORD,
    "week_of_birth",
    "Week of birth (the Monday), or the first day of its month, quarter or year as approved.",
    "date",
    quasi_identifier=True,
)
_SEX = Variable(
    "GNDR_CD",
    Source.RECORD,
    "sex",
    "Sex code (1 male, 2 female, 8 not specified, 9 unknown).",
    "integer",
    quasi_identifier=True,
    values=(1, 2, 8, 9),
)
_LSOA = Variable(
    "LSOA_CD",
    Source.RECORD,
    "lsoa",
    "Lower layer super output area of residence.",
    quasi_identifier=True,
)
_LA = Variable(
    "LA_CD_E",
    Source.RECORD,
    "local_authority",
    "Project-specific encrypted local authority.",
    pseudonym=PseudonymKind.ORGANISATION,
    # Pseudonymised, yet a handful of values that group people by area: an attacker maps
    # them back by their sizes, so they count like the area itself.
    quasi_identifier=True,
)
_CASE = Variable(
    "CASE_ID_E",
    Source.RELATED,
    "case",
    "Project-specific encrypted case identifier.",
    pseudonym=PseudonymKind.RECORD,
)
_COURT = Variable(
    "COURT_CD_E",
    Source.CONTENT,
    "court",
    "Project-specific encrypted court code.",
    pseudonym=PseudonymKind.ORGANISATION,
    quasi_identifier=True,
)


def _c(
    name: str,
    field: str,
    description: str,
    type_: str = "string",
    values: tuple[str | int, ...] = (),
) -> Variable:
    # Every date is an indirect identifier (someone who knows when a case was received, or
    # a hearing held, can single it out), so every dated content field is a quasi-identifier.
    return Variable(
        name,
        Source.CONTENT,
        field,
        description,
        type_,
        quasi_identifier=type_ == "date",
        values=values,
    )


CATALOGUE: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "case",
            "Family-court cases (public and private law) as Cafcass records them.",
            (
                _LA,
                _COURT,
                _c("LAW_TYPE", "law_type", "Public or private law.", values=_codes(LawType)),
                _c(
                    "ORDERS_SOUGHT",
                    "orders_sought",
                    "Orders applied for (';'-separated).",
                    values=_codes(OrderSought),
                ),
                _c(
                    "APPLICANT_TYPE", "applicant_type", "Who applied.", values=_codes(ApplicantType)
                ),
                _c("RECEIVED_DT", "received_date", "Date the application was received.", "date"),
                _c("ISSUED_DT", "issued_date", "Date the application was issued.", "date"),
                _c("FIRST_HEARING_DT", "first_hearing_date", "First hearing date.", "date"),
                _c("FINAL_HEARING_DT", "final_hearing_date", "Final hearing date.", "date"),
                _c("CLOSED_DT", "closed_date", "Date the case closed.", "date"),
            ),
            date_field="received_date",
        ),
        Dataset(
            "child",
            "Children who are subjects of proceedings.",
            (
                _CASE,
                _WOB,
                _SEX,
                _LSOA,
                _LA,
                Variable(
                    "ETHNICITY",
                    Source.CONTENT,
                    "ethnicity",
                    "Ethnic group.",
                    quasi_identifier=True,
                    values=_codes(Ethnicity),
                ),
                _c("DISABILITY", "disability", "Recorded disability.", "boolean"),
                _c(
                    "LIVING_SITUATION",
                    "living_situation",
                    "Where the child lives.",
                    values=_codes(LivingSituation),
                ),
                _c("ADDITIONAL_NEEDS", "additional_needs", "Additional needs.", "boolean"),
            ),
            date_field=None,
        ),
        Dataset(
            "adult-party",
            "Adult parties (mostly birth parents) in proceedings.",
            (
                _CASE,
                _WOB,
                _SEX,
                _LSOA,
                _LA,
                _c(
                    "PARTY_ROLE",
                    "role",
                    "The adult's part in the proceedings.",
                    values=_codes(PartyRole),
                ),
                _c(
                    "REL_TO_CHILD",
                    "relationship_to_child",
                    "Relationship to the child.",
                    values=_codes(Relationship),
                ),
                _c("PARENTAL_RESP", "parental_responsibility", "Has PR.", "boolean"),
                _c("LEGAL_REP", "legal_representation", "Legally represented.", "boolean"),
                _c("LITIGATION_ISSUES", "litigation_issues", "Litigation issues.", "boolean"),
            ),
            date_field=None,
        ),
        Dataset(
            "party-child-relationship",
            "Relationships between adult parties and children.",
            (
                _CASE,
                Variable(
                    "ADULT_ID_E",
                    Source.RELATED,
                    "adult",
                    "Project-specific encrypted adult record.",
                    pseudonym=PseudonymKind.RECORD,
                ),
                Variable(
                    "CHILD_ID_E",
                    Source.RELATED,
                    "child",
                    "Project-specific encrypted child record.",
                    pseudonym=PseudonymKind.RECORD,
                ),
                _c(
                    "RELATIONSHIP",
                    "relationship",
                    "The adult's relationship to the child.",
                    values=_codes(Relationship),
                ),
                _c("PARENTAL_RESP", "parental_responsibility", "Has PR.", "boolean"),
            ),
            date_field=None,
        ),
        Dataset(
            "hearing",
            "Hearings in proceedings.",
            (
                _CASE,
                _COURT,
                _c("HEARING_TYPE", "hearing_type", "Kind of hearing.", values=_codes(HearingType)),
                _c("HEARING_DT", "hearing_date", "Hearing date.", "date"),
                _c("HEARING_END_DT", "end_date", "Hearing end date.", "date"),
                _c(
                    "HEARING_STATUS",
                    "status",
                    "Listed, effective, vacated or adjourned.",
                    values=_codes(HearingStatus),
                ),
                _c(
                    "HEARING_OUTCOME",
                    "outcome",
                    "Outcome of the hearing.",
                    values=_codes(HearingOutcome),
                ),
            ),
            date_field="hearing_date",
        ),
    )
}

QUASI_IDENTIFIERS: tuple[str, ...] = (
    "GNDR_CD",
    "WOB",
    "ETHNICITY",
    "LA_CD_E",
    "COURT_CD_E",
    "RECEIVED_DT",
    "ISSUED_DT",
    "HEARING_DT",
    "FIRST_HEARING_DT",
    "HEARING_END_DT",
    "FINAL_HEARING_DT",
    "CLOSED_DT",
    "LSOA_CD",
)
"""Every variable the catalogue marks as a quasi-identifier, most important first:
k-anonymity suppresses from the end (LSOA first, then the later dates, ..., sex last)."""

_VARIABLES: dict[str, Variable] = {
    v.name: v for v in (*LINKAGE_COLUMNS, *(v for d in CATALOGUE.values() for v in d.variables))
}


def catalogue_variables() -> dict[str, list[str]]:
    """Dataset name → variable names that can be approved for it."""
    return {name: [v.name for v in d.variables] for name, d in CATALOGUE.items()}


def quasi_identifier_problem(name: str) -> str | None:
    """Why ``name`` cannot be added to a project's quasi-identifiers (None: it can).

    Any variable an extract can carry can; record and person pseudonyms cannot: they are
    unique by design, so "at least k rows per value" would suppress every one of them.
    """
    variable = _VARIABLES.get(name)
    if variable is None:
        return "is not a variable of the catalogue"
    if variable.pseudonym is not None and not variable.quasi_identifier:
        return "is a record or person pseudonym, which k-anonymity cannot protect"
    return None


def pinned_quasi_identifiers(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The catalogue's quasi-identifiers followed by ``extra`` (in its order, without
    repeats): what a project asks for, and what an approval pins, is never less."""
    out = list(QUASI_IDENTIFIERS)
    for name in extra:
        if name not in out:
            out.append(name)
    return tuple(out)
