"""Which split role each field of each partner contract plays, read off the contracts.

The contracts mark every identifying field (``identifier_field_kinds``); this table turns
those marks into the split's roles. Fields without a mark are content. A new identifying
field in a contract that this table does not place makes ``roles_for`` fail (closed), so an
identifier can never slip through as content.
"""

from __future__ import annotations

from functools import cache

from contracts.identifiers import IdentifierKind, identifier_field_kinds
from contracts.records import RECORD_MODELS, RecordType

__all__ = ["UnplacedIdentifierError", "roles_for"]

# Record metadata travels in the event's own fields, not in content.
_METADATA = {"source": "drop", "record_id": "record_id", "record_version": "drop"}

# References to other records become those records' tokens, so joins survive.
_REFERENCES = {
    "case_id": "ref:case",
    "adult_record_id": "ref:adult-party",
    "child_record_id": "ref:child",
    "outcomes.child_record_id": "ref:child",
    # The court's own case number: the same case seen by both Cafcass bodies joins on it.
    "court_case_number": "ref:court-case",
}

_BY_KIND = {
    IdentifierKind.NHS_NUMBER: "nhs_number",
    IdentifierKind.DATE_OF_BIRTH: "date_of_birth",
    IdentifierKind.DATE_OF_DEATH: "date_of_death",
}

_BY_NAME = {
    "forename": "forename",
    "middle_names": "middle_names",
    "surname": "surname",
    "previous_surnames": "previous_surnames",
    "address": "address",
    "address_history": "address_history",
    "sex": "sex",
}


class UnplacedIdentifierError(LookupError):
    """A contract marks a field as identifying and no split role is known for it."""


@cache
def roles_for(record_type: RecordType) -> dict[str, str]:
    """Field name (dotted for nested fields) → split role, for one record kind."""
    model = RECORD_MODELS[record_type]
    kinds = identifier_field_kinds(model)
    roles: dict[str, str] = {}
    for name in model.model_fields:
        if name in _METADATA:
            roles[name] = _METADATA[name]
        elif name in _REFERENCES:
            roles[name] = _REFERENCES[name]
        elif name in _BY_NAME:
            roles[name] = _BY_NAME[name]
        elif name in kinds:
            if kinds[name] not in _BY_KIND:
                raise UnplacedIdentifierError(f"{record_type}.{name} ({kinds[name].value})")
            roles[name] = _BY_KIND[kinds[name]]
        else:
            roles[name] = "content"
    for path in kinds:
        if "." in path:
            if path not in _REFERENCES:
                raise UnplacedIdentifierError(f"{record_type}.{path} ({kinds[path].value})")
            roles[path] = _REFERENCES[path]
    return roles
