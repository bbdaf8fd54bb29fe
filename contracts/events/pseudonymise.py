"""Pseudonymise's events: each record split into content (access) and linkage keys (link)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from types import MappingProxyType
from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints, field_validator
from pydantic_core import PydanticCustomError

from contracts._model import ContractModel
from contracts.events.common import (
    Base64UrlToken,
    BloomEncoding,
    Event,
    KeyName,
    QualityFlag,
    QualityFlags,
    RecordToken,
)
from contracts.identifiers import identifier_fields
from contracts.objections import ObjectionKind, ObjectionSubject
from contracts.records import (
    PERSON_RECORD_TYPES,
    RECORD_MODELS,
    Address,
    AddressPeriod,
    RecordType,
    Sex,
    SourceAgency,
)
from contracts.records.common import LocalAuthorityCode
from contracts.records.dates import IsoDate

__all__ = [
    "IDENTIFIER_FIELD_NAMES",
    "EncodedAddress",
    "LinkageKeys",
    "LinkageKeysPublished",
    "LsoaCode",
    "PseudonymisedRecordPublished",
    "RecordObjected",
]

LsoaCode = Annotated[str, StringConstraints(pattern=r"^[EW]01[0-9]{6}$")]
"""ONS code of a 2021 Lower layer Super Output Area in England or Wales."""

_MODELS_WITH_IDENTIFIERS: tuple[type[BaseModel], ...] = (
    *RECORD_MODELS.values(),
    Address,
    AddressPeriod,
)
IDENTIFIER_FIELD_NAMES: frozenset[str] = frozenset(
    path.rsplit(".", 1)[-1]
    for model in _MODELS_WITH_IDENTIFIERS
    for path in identifier_fields(model)
)
"""Names of every identifying field of every record contract; content may use none of them."""

_EXAMPLE_RECORD_PSEUDONYM = "Zm9vYmFyYmF6cXV4cXV1eHh5enp5MTIzNDU2Nzg5MGFi"


def _identifier_keys(value: JsonValue) -> set[str]:
    if isinstance(value, dict):
        found = {key for key in value if key in IDENTIFIER_FIELD_NAMES}
        for item in value.values():
            found |= _identifier_keys(item)
        return found
    if isinstance(value, list):
        found = set()
        for item in value:
            found |= _identifier_keys(item)
        return found
    return set()


class PseudonymisedRecordPublished(Event):
    """A record's content with identifiers removed and demographics coarsened (SAIL's File 2).

    ``content`` holds the record's non-identifying fields; references to other records are
    carried as tokens in ``related_tokens``. Keyed by record token.
    """

    event_type: ClassVar[str] = "pseudonymise.record-published.v1"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record_token": _EXAMPLE_RECORD_PSEUDONYM,
                    "record_type": "child",
                    "source": "cafcass-cymru",
                    "record_version": 1,
                    "key_version": 1,
                    "week_of_birth": "2018-11-19",
                    "sex": 2,
                    "lsoa": "W01001870",
                    "local_authority": "W06000015",
                    "related_tokens": {"case": "Y2FzZXRva2VuY2FzZXRva2VuY2FzZXRva2Vu"},
                    "content": {"ethnicity": "white-british", "living_situation": "with-mother"},
                    "flags": ["nhs-number-invalid-check-digit"],
                }
            ]
        }
    )

    record_token: RecordToken = Field(
        description="The record's pseudonym (keyed HMAC of source, record type and record_id).",
        examples=[_EXAMPLE_RECORD_PSEUDONYM],
    )
    record_type: RecordType = Field(description="The record kind.", examples=["child"])
    source: SourceAgency = Field(
        description="The agency that sent the record.", examples=["cafcass-cymru"]
    )
    record_version: int = Field(
        ge=1, description="The source's record version; a higher one supersedes.", examples=[1]
    )
    key_version: int = Field(
        ge=1, description="Version of the record-token key that made the tokens.", examples=[1]
    )
    week_of_birth: IsoDate | None = Field(
        default=None,
        description="Monday of the ISO week of birth (SAIL's WOB), for person records.",
        examples=["2018-11-19"],
    )
    sex: Sex | None = Field(default=None, description="SAIL GENDER_CD (1, 2, 8, 9).", examples=[2])
    lsoa: LsoaCode | None = Field(
        default=None,
        description="2021 LSOA of the postcode, instead of the address.",
        examples=["W01001870"],
    )
    local_authority: LocalAuthorityCode | None = Field(
        default=None,
        description="Local authority of the postcode or case (ONS code).",
        examples=["W06000015"],
    )
    related_tokens: dict[KeyName, RecordToken] = Field(
        default_factory=dict,
        description="Tokens of records this one refers to, by role: case, adult, child.",
        examples=[{"case": "Y2FzZXRva2VuY2FzZXRva2VuY2FzZXRva2Vu"}],
    )
    content: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="The record's non-identifying fields as JSON; no key names an identifier.",
        examples=[{"ethnicity": "white-british", "living_situation": "with-mother"}],
    )
    flags: QualityFlags = Field(
        default=(),
        description="Data-quality flags (QualityFlag values), sorted.",
        examples=[["nhs-number-invalid-check-digit"]],
    )

    @field_validator("week_of_birth")
    @classmethod
    def _is_a_monday(cls, value: date | None) -> date | None:
        if value is not None and value.isoweekday() != 1:
            raise PydanticCustomError("week_of_birth_not_monday", "week_of_birth must be a Monday")
        return value

    @field_validator("content")
    @classmethod
    def _no_identifier_fields(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        found = _identifier_keys(value)
        if found:
            raise PydanticCustomError(
                "identifier_in_content",
                "content must not carry identifier fields: {fields}",
                {"fields": ", ".join(sorted(found))},
            )
        return value

    def partition_key(self) -> str:
        """The record token."""
        return self.record_token


class EncodedAddress(ContractModel):
    """One address of a person's history, encoded: postcode tokens and an address Bloom filter."""

    from_month: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}-[0-9]{2}$",
        description="First month at the address (YYYY-MM), if known.",
        examples=["2015-01"],
    )
    to_month: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}-[0-9]{2}$",
        description="Last month at the address (YYYY-MM); None while current.",
        examples=[None],
    )
    hmac_tokens: dict[KeyName, Base64UrlToken] = Field(
        default_factory=dict,
        description="Postcode unit, sector and district tokens of this address.",
        examples=[{"postcode_unit": "isNCuXOJXk_4t26W5uHIsw"}],
    )
    bloom_filter: BloomEncoding | None = Field(
        default=None,
        description="Keyed Bloom filter of the address lines, for approximate comparison.",
        examples=["AAECAwQFBgcICQoLDA0ODw"],
    )


_EMPTY: Mapping[str, str] = MappingProxyType({})
_QUALITY_FLAGS = frozenset(f.value for f in QualityFlag)


@dataclass(frozen=True, slots=True)
class LinkageKeys:
    """A person's identifiers encoded to compare, as one typed value.

    What pseudonymise's split makes, what :class:`LinkageKeysPublished` carries (the fields
    have the event's names) and what link matches on: no dict of loosely named flags, no
    JSON in between. ``flags`` are :class:`QualityFlag` members, the names link's model uses.
    """

    hmac_tokens: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Exact-comparison tokens by key name (base64url keyed HMAC)."""
    token_sets: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    """Keys with several values (given names, previous surnames...), each sorted."""
    bloom_filters: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    """Keyed Bloom encodings by key name (unpadded base64url)."""
    addresses: tuple[EncodedAddress, ...] = ()
    """The address history, encoded."""
    flags: frozenset[QualityFlag] = frozenset()
    """Data-quality findings."""


class LinkageKeysPublished(Event):
    """A person record's identifiers encoded to compare, not read: HMAC tokens and Bloom filters.

    Only person kinds (child, adult party, spine person) have linkage keys. Keyed by record token.
    """

    event_type: ClassVar[str] = "pseudonymise.linkage-keys-published.v1"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record_token": _EXAMPLE_RECORD_PSEUDONYM,
                    "record_type": "child",
                    "source": "cafcass-cymru",
                    "record_version": 1,
                    "key_version": 1,
                    "hmac_tokens": {
                        "nhs_number": "bmhzdG9rZW5uaHN0b2tlbm5oc3Rva2Vubmhz",
                        "dob_year": "ZG9ieWVhcmRvYnllYXJkb2J5ZWFy",
                    },
                    "bloom_filters": {"forename": "AAECAwQFBgcICQoLDA0ODw"},
                    "flags": [],
                }
            ]
        }
    )

    record_token: RecordToken = Field(
        description="The record's pseudonym, as in pseudonymise.record-published.",
        examples=[_EXAMPLE_RECORD_PSEUDONYM],
    )
    record_type: RecordType = Field(
        description="The record kind: child, adult-party or spine-person.", examples=["child"]
    )
    source: SourceAgency = Field(
        description="The agency that sent the record.", examples=["cafcass-cymru"]
    )
    record_version: int = Field(
        ge=1, description="The source's record version; a higher one supersedes.", examples=[1]
    )
    key_version: int = Field(
        ge=1,
        description="Version of the linkage key behind these encodings.",
        examples=[1],
    )
    hmac_tokens: dict[KeyName, Base64UrlToken] = Field(
        default_factory=dict,
        description="Exact-comparison keys by name (NHS number, date-of-birth parts, postcode "
        "parts, name tokens and their normalised forms), keyed HMAC in base64url.",
        examples=[{"nhs_number": "bmhzdG9rZW5uaHN0b2tlbm5oc3Rva2Vubmhz"}],
    )
    bloom_filters: dict[KeyName, BloomEncoding] = Field(
        default_factory=dict,
        description="Approximate-comparison encodings by name (names, address): keyed Bloom "
        "filters in unpadded base64url.",
        examples=[{"forename": "AAECAwQFBgcICQoLDA0ODw"}],
    )
    token_sets: dict[KeyName, tuple[Base64UrlToken, ...]] = Field(
        default_factory=dict,
        description="Keys with several values (all given names, previous surnames and their "
        "normalised forms), keyed HMAC in base64url, sorted.",
        examples=[{"previous_surnames": ["8ToQQvCNbfco2xe_Ezor0A"]}],
    )
    addresses: tuple[EncodedAddress, ...] = Field(
        default=(),
        description="The person's address history, encoded (spine persons).",
        examples=[
            [{"from_month": "2015-01", "hmac_tokens": {"postcode_unit": "isNCuXOJXk_4t26W5uHIsw"}}]
        ],
    )
    bloom_scheme: str | None = Field(
        default=None,
        description="Parameters of the Bloom encodings (length, hash count, hardening): only "
        "encodings of one scheme and key version compare.",
        examples=["bf1:l=2048:fold=1:k=20[address=10,forename=30,full_name=20,surname=30]"],
    )
    flags: QualityFlags = Field(
        default=(),
        description="Data-quality flags (QualityFlag values), sorted.",
        examples=[["date-of-birth-placeholder"]],
    )

    @field_validator("record_type")
    @classmethod
    def _person_kind(cls, value: RecordType) -> RecordType:
        if value not in PERSON_RECORD_TYPES:
            raise PydanticCustomError(
                "not_a_person_record",
                "linkage keys exist only for child, adult-party and spine-person records",
            )
        return value

    @classmethod
    def of(
        cls,
        keys: LinkageKeys,
        *,
        record_token: str,
        record_type: RecordType,
        source: SourceAgency,
        record_version: int,
        key_version: int,
        bloom_scheme: str | None = None,
    ) -> Self:
        """The event carrying ``keys`` for one record."""
        return cls(
            record_token=record_token,
            record_type=record_type,
            source=source,
            record_version=record_version,
            key_version=key_version,
            hmac_tokens=dict(keys.hmac_tokens),
            token_sets={k: tuple(sorted(v)) for k, v in keys.token_sets.items()},
            bloom_filters=dict(keys.bloom_filters),
            addresses=keys.addresses,
            bloom_scheme=bloom_scheme,
            flags=tuple(f.value for f in keys.flags),
        )

    def keys(self) -> LinkageKeys:
        """The keys this event carries; flags a newer producer added, which no
        :class:`QualityFlag` names yet, are left out (no model can refer to them)."""
        return LinkageKeys(
            hmac_tokens=MappingProxyType(dict(self.hmac_tokens)),
            token_sets=MappingProxyType(dict(self.token_sets)),
            bloom_filters=MappingProxyType(dict(self.bloom_filters)),
            addresses=self.addresses,
            flags=frozenset(QualityFlag(f) for f in self.flags if f in _QUALITY_FLAGS),
        )

    def partition_key(self) -> str:
        """The record token."""
        return self.record_token


class RecordObjected(Event):
    """An objection, erasure request or opt-out about one record (or a spine person), without
    the partner's id: the record is named by its record token.

    Published on ``pseudonymise.records.v1`` and, for person records, on
    ``pseudonymise.linkage-keys.v1``, keyed by the record token: it follows the record's own
    events there, and on those compacted topics it becomes the record's latest value, so
    compaction removes the record's content and keys from the bus too. An opt-out leaves
    them (the person stays linked), but is published the same way so that every consumer
    sees it in order.
    """

    event_type: ClassVar[str] = "pseudonymise.record-objected.v1"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "receipt_id": "5b0e8f8e-7d8a-4d62-9a55-0b1b6f3c2a10",
                    "kind": "objection",
                    "subject": "record",
                    "record_token": _EXAMPLE_RECORD_PSEUDONYM,
                    "record_type": "child",
                    "source": "cafcass-cymru",
                    "erased_versions": 1,
                }
            ]
        }
    )

    receipt_id: uuid.UUID = Field(
        description="Ingest's receipt id of the request (never the client's own request id).",
        examples=["5b0e8f8e-7d8a-4d62-9a55-0b1b6f3c2a10"],
    )
    kind: ObjectionKind = Field(description="What was asked.", examples=["objection"])
    subject: ObjectionSubject = Field(
        description="One record, or a person (then the record is a spine person).",
        examples=["record"],
    )
    record_token: RecordToken = Field(
        description="The record's pseudonym, as in pseudonymise.record-published.",
        examples=[_EXAMPLE_RECORD_PSEUDONYM],
    )
    record_type: RecordType = Field(description="The record kind.", examples=["child"])
    source: SourceAgency = Field(
        description="The agency that sent the record.", examples=["cafcass-cymru"]
    )
    erased_versions: int = Field(
        default=0,
        ge=0,
        description="Versions of the record pseudonymise shredded from its vault (0 for an "
        "opt-out, or for a record it keeps nothing of).",
        examples=[1],
    )

    def partition_key(self) -> str:
        """The record token."""
        return self.record_token
