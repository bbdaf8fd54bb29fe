"""What events share: the base class (type string, partition key), token and flag types."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, StringConstraints

from contracts._model import ContractModel

__all__ = [
    "Base64",
    "Base64UrlToken",
    "BloomEncoding",
    "DeliveryId",
    "Event",
    "KeyName",
    "QualityFlag",
    "QualityFlags",
    "RecordToken",
]


class Event(ContractModel):
    """An event payload: ``event_type`` names it, ``partition_key()`` orders it on the bus.

    The key lives with the event so that every producer of a type keys it the same way.
    """

    event_type: ClassVar[str]

    def partition_key(self) -> str:
        """The bus key: events with the same key stay in order."""
        raise NotImplementedError


DeliveryId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"),
]
"""Ingest's id of one partner delivery (a batch, file or stream)."""

Base64UrlToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{16,128}$")]
"""A keyed HMAC output in unpadded base64url (43 characters for HMAC-SHA-256)."""

RecordToken = Base64UrlToken
"""A record's pseudonym: keyed HMAC of (source, record type, record_id); never the id itself."""

Base64 = Annotated[
    str,
    StringConstraints(
        max_length=1_048_576,
        pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$",
    ),
]
"""Standard padded base64 (Bloom filter bit arrays)."""

BloomEncoding = Annotated[str, StringConstraints(max_length=1_048_576, pattern=r"^[A-Za-z0-9_-]*$")]
"""A keyed Bloom filter's bit array, big-endian bytes in unpadded base64url."""

KeyName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
"""Name of one linkage key, e.g. ``nhs_number`` or ``surname_soundex``."""


class QualityFlag(StrEnum):
    """Data-quality findings pseudonymise records; research uses them to study who fails to link.

    The one vocabulary of flags: pseudonymise's split raises them, both events carry their
    values, and link's model predicates name them (``{"flag": "date-of-birth-placeholder"}``).
    Values are wire strings: a member is never renamed, only added.
    """

    NHS_NUMBER_MISSING = "nhs-number-missing"
    NHS_NUMBER_INVALID = "nhs-number-invalid-check-digit"
    DATE_OF_BIRTH_MISSING = "date-of-birth-missing"
    DATE_OF_BIRTH_PLACEHOLDER = "date-of-birth-placeholder"
    """1 January or another placeholder pattern."""
    DATE_OF_BIRTH_INVALID = "dob-invalid"
    """A date of birth was given but is not a date (the value published since v1)."""
    FORENAME_MISSING = "forename-missing"
    FORENAME_PLACEHOLDER = "forename-placeholder"
    """'Baby', 'Baby of ...', 'Unknown'."""
    SURNAME_MISSING = "surname-missing"
    SURNAME_PLACEHOLDER = "surname-placeholder"
    """'Unknown', 'Not known' as the surname."""
    NAME_PLACEHOLDER = "name-placeholder"
    """The forename or the surname is a placeholder."""
    SEX_UNKNOWN = "sex-unknown"
    POSTCODE_MISSING = "postcode-missing"
    POSTCODE_INVALID = "postcode-invalid"
    """Not a postcode at all."""
    POSTCODE_PARTIAL = "postcode-partial"
    """An outward code or sector only."""
    POSTCODE_NOT_FOUND = "postcode-not-found"
    """A well-formed postcode with no LSOA in the lookup."""


def _sorted_unique(flags: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted(set(flags)))


QualityFlags = Annotated[
    tuple[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")], ...],
    AfterValidator(_sorted_unique),
]
"""Flags as kebab-case strings, sorted and unique; known ones are ``QualityFlag`` values, and
readers accept new ones so that adding a flag is not a breaking change."""
