"""Partner record contracts: what Cafcass England, Cafcass Cymru and the spine's owner may send."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from contracts.records.adult import AdultPartyRecord, PartyRole
from contracts.records.case import (
    ApplicantType,
    CaseRecord,
    ChildOutcome,
    LawType,
    OrderMade,
    OrderSought,
)
from contracts.records.child import ChildRecord, Ethnicity, LivingSituation
from contracts.records.common import (
    CAFCASS_SOURCES,
    PERSON_RECORD_TYPES,
    Address,
    CaseScopedRecord,
    PartnerRecord,
    RecordType,
    Sex,
    SourceAgency,
)
from contracts.records.hearing import HearingOutcome, HearingRecord, HearingStatus, HearingType
from contracts.records.nhs import nhs_number_is_valid
from contracts.records.postcode import normalise_postcode
from contracts.records.relationship import PartyChildRelationshipRecord, Relationship
from contracts.records.spine import AddressPeriod, SpinePersonRecord

__all__ = [
    "CAFCASS_SOURCES",
    "PERSON_RECORD_TYPES",
    "RECORD_MODELS",
    "Address",
    "AddressPeriod",
    "AdultPartyRecord",
    "ApplicantType",
    "CaseRecord",
    "CaseScopedRecord",
    "ChildOutcome",
    "ChildRecord",
    "Ethnicity",
    "HearingOutcome",
    "HearingRecord",
    "HearingStatus",
    "HearingType",
    "LawType",
    "LivingSituation",
    "OrderMade",
    "OrderSought",
    "PartnerRecord",
    "PartyChildRelationshipRecord",
    "PartyRole",
    "RecordType",
    "Relationship",
    "Sex",
    "SourceAgency",
    "SpinePersonRecord",
    "nhs_number_is_valid",
    "normalise_postcode",
]

RECORD_MODELS: Mapping[RecordType, type[PartnerRecord]] = MappingProxyType(
    {
        model.record_type: model
        for model in (
            CaseRecord,
            ChildRecord,
            AdultPartyRecord,
            PartyChildRelationshipRecord,
            HearingRecord,
            SpinePersonRecord,
        )
    }
)
"""The contract for each record kind: ``RECORD_MODELS[RecordType.CHILD].model_validate(row)``."""
