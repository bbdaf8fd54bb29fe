"""Request and response bodies of the access API (documented in its OpenAPI)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from services.access.domain.catalogue import QUASI_IDENTIFIERS, quasi_identifier_problem
from services.runtime.pagination import Page

__all__ = [
    "AccreditationIn",
    "ApprovalIn",
    "DecisionIn",
    "ExtractOut",
    "ExtractPage",
    "MemberIn",
    "ProjectIn",
    "ProjectOut",
    "ProjectPage",
    "ProjectPatch",
    "ResearcherIn",
    "ResearcherOut",
    "ResearcherPage",
    "SignOffIn",
]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: object) -> object:
    # Pydantic would also read a number, or a string of digits, as Unix time: `0` would be
    # 1970-01-01, silently. A day is written YYYY-MM-DD, as the document says.
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("a date must be written YYYY-MM-DD")


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
"""A calendar day in ISO 8601 form (``2027-03-31``), never a timestamp."""


def _quasi_identifier(value: str) -> str:
    # Refused by position (the error's loc), never echoed: an unknown name was once dropped
    # silently, which let a project switch k-anonymity off.
    problem = quasi_identifier_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


QuasiIdentifier = Annotated[str, Field(max_length=64), AfterValidator(_quasi_identifier)]
"""A catalogue variable that k-anonymity may protect (``domain/catalogue.py``)."""


class _In(BaseModel):
    # Numbers and flags are taken only as JSON numbers and booleans (fields say Strict*):
    # lax parsing read `"revoked": 0` as false and `"top": [false]` as 0.0.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResearcherIn(_In):
    subject: str = Field(
        min_length=1, max_length=200, description="Token subject.", examples=["alice"]
    )
    display_name: str = Field(min_length=1, max_length=200, examples=["Dr A. Researcher"])
    organisation: str | None = Field(None, max_length=200, examples=["Swansea University"])
    accredited_until: IsoDate | None = Field(
        None,
        description="Accreditation valid up to and including this day.",
        examples=["2027-03-31"],
    )


class AccreditationIn(_In):
    accredited_until: IsoDate | None = Field(description="New expiry (None: not accredited).")
    revoked: StrictBool = Field(False, description="Withdraw the accreditation now.")


class ResearcherOut(BaseModel):
    subject: str
    display_name: str
    organisation: str | None
    accredited_until: date | None
    revoked: bool
    accredited: bool = Field(description="Accredited today.")


class ProjectIn(_In):
    title: str = Field(min_length=3, max_length=300, examples=["Newborns in care proceedings"])
    summary: str = Field("", max_length=20_000)
    datasets: list[str] = Field(default_factory=list, examples=[["case", "child"]])
    variables: list[str] = Field(default_factory=list, examples=[["WOB", "GNDR_CD", "LAW_TYPE"]])
    window_start: IsoDate | None = Field(None, examples=["2015-01-01"])
    window_end: IsoDate | None = Field(None, examples=["2019-12-31"])
    k: StrictInt | None = Field(
        None, ge=2, description="Stricter k for this project (never laxer)."
    )
    quasi_identifiers: list[QuasiIdentifier] | None = Field(
        None,
        max_length=64,
        description="Quasi-identifiers to add to the catalogue's (which are always included: "
        f"{', '.join(QUASI_IDENTIFIERS)}); an unknown name is refused.",
        examples=[["DISABILITY"]],
    )
    legal_basis: str | None = Field(
        None,
        max_length=2000,
        description="The legal basis for processing (e.g. UK GDPR Art. 6(1)(e) and 9(2)(j)).",
        examples=["UK GDPR Article 6(1)(e); Article 9(2)(j) with DPA 2018 Sch. 1 para 4"],
    )
    dsa_reference: str | None = Field(
        None,
        max_length=100,
        description="Reference of the data-sharing agreement the project works under.",
        examples=["DSA-FJO-2025-014"],
    )


class ProjectPatch(_In):
    title: str | None = Field(None, min_length=3, max_length=300)
    summary: str | None = Field(None, max_length=20_000)
    datasets: list[str] | None = None
    variables: list[str] | None = None
    window_start: IsoDate | None = None
    window_end: IsoDate | None = None
    quasi_identifiers: list[QuasiIdentifier] | None = Field(
        None, max_length=64, description="Replace the added quasi-identifiers."
    )
    legal_basis: str | None = Field(
        None,
        max_length=2000,
        description="The legal basis for processing (e.g. UK GDPR Art. 6(1)(e) and 9(2)(j)).",
        examples=["UK GDPR Article 6(1)(e); Article 9(2)(j) with DPA 2018 Sch. 1 para 4"],
    )
    dsa_reference: str | None = Field(
        None,
        max_length=100,
        description="Reference of the data-sharing agreement the project works under.",
        examples=["DSA-FJO-2025-014"],
    )


class MemberIn(_In):
    subject: str = Field(min_length=1, max_length=200, examples=["bob"])


class ApprovalIn(_In):
    datasets: list[str] = Field(examples=[["case", "child"]])
    variables: list[str] = Field(examples=[["WOB", "GNDR_CD", "LAW_TYPE"]])
    window_start: IsoDate = Field(examples=["2015-01-01"])
    window_end: IsoDate = Field(examples=["2019-12-31"])
    members: list[str] = Field(description="Approved members (owner included).")
    access_until: IsoDate = Field(description="Access ends after this day (then: expired).")
    date_precision: Literal["week", "month", "quarter", "year"] = Field(
        "month",
        description="How precisely the extracts give every date (week of birth included): "
        "the first day of its week, month, quarter or year.",
    )
    quasi_identifiers: list[QuasiIdentifier] = Field(
        min_length=1,
        max_length=64,
        description="The quasi-identifiers the extracts are made k-anonymous on, most "
        "important first, as the project shows them: the approval pins them. Every one the "
        "project lists must be there; the approver may add more.",
        examples=[list(QUASI_IDENTIFIERS)],
    )
    conditions: str = Field("", max_length=5000)
    egress: list[Literal["row-level-download"]] = Field(
        default_factory=list,
        max_length=1,
        description="Egress beyond the airlock that the panel permits explicitly: "
        "`row-level-download` lets members download the extract's data files. None by "
        "default: the data stay in the project's workspace.",
        examples=[[]],
    )
    retention_days: StrictInt | None = Field(
        None,
        ge=0,
        le=36_500,
        description="Days the workspace is kept after the project ends, when the data-sharing "
        "agreement sets a period other than the service's (`retention.workspace_days`).",
    )
    publish_in_register: StrictBool = Field(
        True,
        description="Publish the project (title, purpose, organisation, datasets, legal basis, "
        "dates) and its released outputs' titles in the public register. Withholding it needs "
        "a reason, which is recorded.",
    )
    register_withheld_reason: str = Field(
        "",
        max_length=2000,
        description="Why the project is withheld from the register (required when it is).",
    )

    @model_validator(mode="after")
    def _withholding_needs_a_reason(self) -> Self:
        if not self.publish_in_register and not self.register_withheld_reason.strip():
            raise ValueError("withholding a project from the register needs a reason")
        if self.publish_in_register and self.register_withheld_reason:
            raise ValueError("a published project has no reason to be withheld")
        return self


class DecisionIn(_In):
    comment: str = Field(
        "", max_length=5000, description="What the owner is told (return) or why (reject)."
    )


class SignOffIn(_In):
    comment: str = Field("", max_length=5000, description="The controller's note, if any.")


class ProjectOut(BaseModel):
    id: str
    title: str
    summary: str
    owner: str
    state: str
    members: list[str]
    requested: dict[str, Any]
    approval: dict[str, Any] | None
    k: int
    quasi_identifiers: list[str]
    access_until: date | None
    created_at: datetime
    controllers_required: list[str] = Field(
        default_factory=list, description="Data controllers who must sign before approval."
    )
    sign_offs: list[dict[str, Any]] = Field(
        default_factory=list, description="Controllers' sign-offs: controller, by, at, comment."
    )
    decisions: list[dict[str, Any]] = Field(
        default_factory=list, description="The panel's returns and rejections with comments."
    )


class ExtractOut(BaseModel):
    id: str
    project_id: str
    requested_by: str
    state: Literal["queued", "running", "succeeded", "refused", "failed"]
    requested_at: datetime
    finished_at: datetime | None
    rows: int | None
    disclosure: dict[str, Any] = Field(description="What disclosure control did (counts only).")
    files: list[dict[str, Any]] = Field(description="Files with rows, bytes and SHA-256.")
    error: str | None
    rebuild_needed: bool = Field(
        False,
        description="The extract holds records an objection, erasure or opt-out has since "
        "taken out: build a new one (it leaves them out) and stop using this one.",
    )
    rebuild_reason: str | None = Field(None, description="Why it was flagged (no identifier).")


class ResearcherPage(Page[ResearcherOut]):
    """A page of researchers, oldest registration first."""


class ProjectPage(Page[ProjectOut]):
    """A page of the projects the caller may see, oldest first."""


class ExtractPage(Page[ExtractOut]):
    """A page of a project's extracts, oldest request first."""
