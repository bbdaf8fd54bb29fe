"""The airlock: what an output asking to leave the workspace must pass, and who releases it.

Pure rules over values. The disclosure checks themselves are ACRO's, computed from the data
the output comes from (``workspace/acro_runner.py``); here are fjo's presets as ACRO
configurations, the life of an output (submitted → returned → resubmitted ..., released or
rejected) and the release rule: two different independent checkers approve the same
revision; a failing output also needs its author's exception request with a reason; a
free-form file is always ``review`` (a person's judgement, never automatic).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "PRESETS",
    "REQUIRED_CHECKERS",
    "AcroPreset",
    "CheckStatus",
    "Decision",
    "OutputKind",
    "OutputState",
    "exception_problem",
    "resubmit_problem",
    "review_outcome",
    "review_problem",
]

REQUIRED_CHECKERS = 2
"""Distinct output checkers who approve one revision before it leaves."""


class OutputKind(StrEnum):
    TABLE = "table"  # cross-tabulation or pivot table (counts, or an aggregate of values)
    REGRESSION = "regression"  # ols, logit, probit: residual degrees of freedom
    HISTOGRAM = "histogram"  # a figure, each bin checked like a cell
    SURVIVAL = "survival"  # a survival table
    FILE = "file"  # free-form (report, figure): always for a person's judgement


class OutputState(StrEnum):
    SUBMITTED = "submitted"  # waiting for checkers
    RETURNED = "returned"  # a checker sent it back; the author may resubmit
    RELEASED = "released"
    REJECTED = "rejected"


class CheckStatus(StrEnum):
    """ACRO's verdict on an output."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    REVIEW = "review"


class Decision(StrEnum):
    COMMENT = "comment"
    RETURN = "return"
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class AcroPreset:
    """One of fjo's output rules as an ACRO configuration (ACRO's ``default.yaml`` keys)."""

    name: str
    safe_threshold: int = 10
    safe_dof_threshold: int = 10
    safe_nk_n: int = 2
    safe_nk_k: float = 0.9
    safe_pratio_p: float = 0.1
    zeros_are_disclosive: bool = True
    survival_safe_threshold: int = 10
    mitigation: str = "none"  # none: flag only; suppress: hide flagged cells (ACRO's)
    round_to: int | None = None
    """Counts left after suppression are rounded to this base (OpenSAFELY)."""

    def acro_config(self) -> dict[str, Any]:
        return {
            "safe_threshold": self.safe_threshold,
            "safe_dof_threshold": self.safe_dof_threshold,
            "safe_nk_n": self.safe_nk_n,
            "safe_nk_k": self.safe_nk_k,
            "safe_pratio_p": self.safe_pratio_p,
            "check_missing_values": False,
            "survival_safe_threshold": self.survival_safe_threshold,
            "zeros_are_disclosive": self.zeros_are_disclosive,
        }


PRESETS: dict[str, AcroPreset] = {
    # ACRO's own defaults (its default.yaml): threshold 10, N-K (2, 0.9), p-ratio 0.1,
    # residual degrees of freedom 10, zeros are disclosive; flagged cells are not hidden.
    "acro": AcroPreset(name="acro"),
    # UK LLC / ONS SRS: at least 10 people per cell, zeros included, dominance (2, 67 %);
    # flagged cells are suppressed by ACRO. ACRO has one N-K rule, so the (1, 50 %) rule
    # some checkers add has no counterpart here.
    "threshold-10": AcroPreset(
        name="threshold-10", safe_nk_k=0.67, safe_pratio_p=0.0, mitigation="suppress"
    ),
    # OpenSAFELY: counts of 7 or fewer (zeros too) redacted, the rest rounded to 5.
    "opensafely": AcroPreset(
        name="opensafely",
        safe_threshold=8,
        safe_nk_k=1.0,
        safe_pratio_p=0.0,
        survival_safe_threshold=8,
        mitigation="suppress",
        round_to=5,
    ),
}


def review_problem(
    *,
    state: OutputState,
    status: CheckStatus,
    exception: str | None,
    decision: Decision,
    already_approved: bool,
) -> str | None:
    """Why this checker's decision cannot be recorded now (None: it can). Who may review at
    all (independent checkers, never the author) is ``policy.output_review_refusal``."""
    if state in (OutputState.RELEASED, OutputState.REJECTED):
        return f"the output is already {state.value}"
    if decision is Decision.COMMENT:
        return None
    if state is not OutputState.SUBMITTED:
        return "the output is with its author; it can be reviewed again once resubmitted"
    if decision is Decision.APPROVE:
        if already_approved:
            return "each checker approves a revision once"
        if status is CheckStatus.FAIL and not exception:
            return "the output fails its checks: it needs its author's exception request"
    return None


def review_outcome(
    state: OutputState, decision: Decision, approvers: Iterable[str], author: str
) -> OutputState:
    """The state after a recorded decision; ``approvers``: who approved this revision."""
    if decision is Decision.RETURN:
        return OutputState.RETURNED
    if decision is Decision.REJECT:
        return OutputState.REJECTED
    if decision is Decision.APPROVE and len(set(approvers) - {author}) >= REQUIRED_CHECKERS:
        return OutputState.RELEASED
    return state


def exception_problem(state: OutputState, approvals: int) -> str | None:
    """An author may ask for an exception while the output waits, before anyone approved
    this revision (a changed reason would not be what they approved)."""
    if state is not OutputState.SUBMITTED:
        return "an exception is requested while the output waits for checkers (or on resubmit)"
    if approvals:
        return "checkers have approved this revision: resubmit to change the exception"
    return None


def resubmit_problem(state: OutputState) -> str | None:
    if state is not OutputState.RETURNED:
        return "only a returned output can be resubmitted"
    return None
