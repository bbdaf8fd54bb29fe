"""Stored linkage keys in link's own record form: token sets among the tokens, the address
history's postcode units as ``previous_postcode_units``, and flags as QualityFlag values.

Rows written before this revision hold the split's dict (``tokens``, ``token_sets``,
``blooms``, ``addresses``, and flags by the split's old names, ``{"nhs_invalid": true}``).
The old names are written out here once, as history: nothing else knows them any more.

Revision ID: 0002
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The split's flag names before revision 0002, with the wire values they were published as.
_OLD_FLAG_VALUES = {
    "nhs_missing": "nhs-number-missing",
    "nhs_invalid": "nhs-number-invalid-check-digit",
    "dob_missing": "date-of-birth-missing",
    "dob_placeholder": "date-of-birth-placeholder",
    "dob_invalid": "dob-invalid",
    "forename_missing": "forename-missing",
    "forename_placeholder": "forename-placeholder",
    "surname_missing": "surname-missing",
    "surname_placeholder": "surname-placeholder",
    "name_placeholder": "name-placeholder",
    "sex_unrecognised": "sex-unknown",
    "postcode_missing": "postcode-missing",
    "postcode_invalid": "postcode-invalid",
    "postcode_partial": "postcode-partial",
    "postcode_unknown": "postcode-not-found",
}


def _convert(old: dict[str, Any]) -> dict[str, Any]:
    if "token_sets" not in old and isinstance(old.get("flags"), list):
        return old  # already in the new form
    tokens: dict[str, Any] = dict(old.get("tokens", {}))
    for name, values in old.get("token_sets", {}).items():
        tokens[name] = list(values)
    current = tokens.get("postcode_unit")
    previous = sorted(
        {
            a["postcode_unit"]
            for a in old.get("addresses", ())
            if a.get("postcode_unit") and a["postcode_unit"] != current
        }
    )
    if previous:
        tokens["previous_postcode_units"] = previous
    flags = sorted(
        _OLD_FLAG_VALUES[name]
        for name, raised in old.get("flags", {}).items()
        if raised and name in _OLD_FLAG_VALUES
    )
    return {"tokens": tokens, "blooms": dict(old.get("blooms", {})), "flags": flags}


def _rewrite(table: str, keys: tuple[str, ...]) -> None:
    conn = op.get_bind()
    cols = ", ".join(keys)
    rows = conn.execute(sa.text(f"SELECT {cols}, linkage FROM {table}")).all()  # noqa: S608
    where = " AND ".join(f"{k} = :{k}" for k in keys)
    stmt = sa.text(f"UPDATE {table} SET linkage = :linkage WHERE {where}")  # noqa: S608
    updates = []
    for row in rows:
        new = json.dumps(_convert(json.loads(row[-1])), sort_keys=True)
        if new != row[-1]:
            updates.append({**dict(zip(keys, row[:-1], strict=True)), "linkage": new})
    if updates:
        conn.execute(stmt, updates)


def upgrade() -> None:
    _rewrite("link_spine_records", ("record_token",))
    _rewrite("link_spine_history", ("record_token", "record_version"))
    _rewrite("link_incoming_keys", ("record_token",))


def downgrade() -> None:
    raise NotImplementedError("the old form named flags that no longer exist; restore a backup")
