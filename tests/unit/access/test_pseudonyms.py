"""Project-specific pseudonyms: stable within a project, unjoinable across projects."""

from __future__ import annotations

import hashlib

import pytest

from services.access.domain.pseudonyms import (
    ProjectPseudonymiser,
    PseudonymKind,
    derive_project_key,
)

MASTER = b"m" * 32


def test_the_same_alf_gets_the_same_pseudonym_throughout_a_project() -> None:
    a = ProjectPseudonymiser(MASTER, "project-a")
    again = ProjectPseudonymiser(MASTER, "project-a")
    assert a.pseudonym(PseudonymKind.ALF, "alf-1") == again.pseudonym(PseudonymKind.ALF, "alf-1")


def test_two_projects_give_the_same_person_different_pseudonyms() -> None:
    a = ProjectPseudonymiser(MASTER, "project-a")
    b = ProjectPseudonymiser(MASTER, "project-b")
    alfs = [f"alf-{i}" for i in range(1000)]
    pa = {a.pseudonym(PseudonymKind.ALF, x) for x in alfs}
    pb = {b.pseudonym(PseudonymKind.ALF, x) for x in alfs}
    assert len(pa) == len(pb) == 1000
    assert pa.isdisjoint(pb)


def test_kinds_have_separate_keys_so_an_alf_and_a_record_token_never_coincide() -> None:
    p = ProjectPseudonymiser(MASTER, "project-a")
    assert p.pseudonym(PseudonymKind.ALF, "x") != p.pseudonym(PseudonymKind.RECORD, "x")


def test_a_pseudonym_is_not_an_unkeyed_hash_of_the_value() -> None:
    p = ProjectPseudonymiser(MASTER, "project-a")
    value = p.pseudonym(PseudonymKind.ALF, "alf-1")
    assert value is not None
    for digest in (hashlib.sha256(b"alf-1").hexdigest(), hashlib.md5(b"alf-1").hexdigest()):
        assert value not in digest


def test_unlinked_stays_unlinked() -> None:
    assert ProjectPseudonymiser(MASTER, "p").pseudonym(PseudonymKind.ALF, None) is None


def test_a_new_key_version_changes_every_pseudonym() -> None:
    assert derive_project_key(MASTER, "p", key_version=1) != derive_project_key(
        MASTER, "p", key_version=2
    )


def test_a_short_master_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        derive_project_key(b"short", "p")
