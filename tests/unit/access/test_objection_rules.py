"""Which projects an opt-out applies to: every one but those whose legal basis is consent."""

from __future__ import annotations

import pytest

from services.access.domain.objections import REMOVING_KINDS, excluding_kinds, opt_outs_apply


@pytest.mark.parametrize(
    ("legal_basis", "applies"),
    [
        (None, True),
        ("", True),
        ("UK GDPR Article 6(1)(e); Article 9(2)(j) with DPA 2018 Sch. 1 para 4", True),
        ("Section 251 support (CAG 19/CAG/0001)", True),
        ("Explicit consent of each participant", False),
        ("UK GDPR Art. 6(1)(a) and 9(2)(a)", False),
        ("Article 6 (1) (a)", False),
    ],
)
def test_opt_outs_apply_unless_the_legal_basis_is_consent(
    legal_basis: str | None, applies: bool
) -> None:
    assert opt_outs_apply(legal_basis) is applies
    kinds = excluding_kinds(legal_basis)
    assert kinds >= REMOVING_KINDS
    assert ("opt-out" in kinds) is applies
