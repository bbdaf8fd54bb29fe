"""Pure domain of pseudonymise: keys, normalisation, tokens, Bloom filters and the split.

Values in, values out: nothing here does I/O except the two loaders the caller calls with a
path (``MasterKey.from_file``, ``load_ons_postcode_lookup``), and nothing is built at import
time except constant tables. See docs/pseudonymisation.md.
"""

from __future__ import annotations

from services.pseudonymise.domain.bloom import (
    DEFAULT_BLOOM_PARAMS,
    BloomEncoder,
    BloomParams,
    bigrams,
    dice,
    from_b64,
    to_b64,
)
from services.pseudonymise.domain.dates import (
    DobParts,
    dob_parts,
    is_placeholder_dob,
    month_of,
    parse_date,
    swapped_day_month,
    week_of_birth,
)
from services.pseudonymise.domain.keys import (
    ALF,
    LINKAGE_BLOOM,
    LINKAGE_EXACT,
    RECORD_TOKEN,
    DerivedKey,
    KeyMaterialError,
    KeyRing,
    KeyVersionError,
    MasterKey,
    RetiredKeyVersionError,
    UnknownKeyVersionError,
    project_purpose,
)
from services.pseudonymise.domain.nhs import (
    is_valid_nhs_number,
    nhs_check_digit,
    normalise_nhs_number,
)
from services.pseudonymise.domain.normalise import (
    NormalisedName,
    canonical_forename,
    canonical_surname,
    fold,
    is_placeholder_name,
    normalise_address,
    normalise_name,
    phonetic,
    phonetic_nysiis,
)
from services.pseudonymise.domain.postcode import (
    SYNTHETIC_MARK,
    AreaLookup,
    AreaQuality,
    OnsPostcodeLookup,
    Postcode,
    load_ons_postcode_lookup,
    parse_postcode,
)
from services.pseudonymise.domain.split import (
    KeyPart,
    LinkageParts,
    Pseudonymiser,
    Role,
    RoleError,
    SplitResult,
    UnclassifiedFieldError,
    sex_code,
)
from services.pseudonymise.domain.tokens import TOKEN_BYTES, RecordTokeniser, Tokeniser

__all__ = [
    "ALF",
    "DEFAULT_BLOOM_PARAMS",
    "LINKAGE_BLOOM",
    "LINKAGE_EXACT",
    "RECORD_TOKEN",
    "SYNTHETIC_MARK",
    "TOKEN_BYTES",
    "AreaLookup",
    "AreaQuality",
    "BloomEncoder",
    "BloomParams",
    "DerivedKey",
    "DobParts",
    "KeyMaterialError",
    "KeyPart",
    "KeyRing",
    "KeyVersionError",
    "LinkageParts",
    "MasterKey",
    "NormalisedName",
    "OnsPostcodeLookup",
    "Postcode",
    "Pseudonymiser",
    "RecordTokeniser",
    "RetiredKeyVersionError",
    "Role",
    "RoleError",
    "SplitResult",
    "Tokeniser",
    "UnclassifiedFieldError",
    "UnknownKeyVersionError",
    "bigrams",
    "canonical_forename",
    "canonical_surname",
    "dice",
    "dob_parts",
    "fold",
    "from_b64",
    "is_placeholder_dob",
    "is_placeholder_name",
    "is_valid_nhs_number",
    "load_ons_postcode_lookup",
    "month_of",
    "nhs_check_digit",
    "normalise_address",
    "normalise_name",
    "normalise_nhs_number",
    "parse_date",
    "parse_postcode",
    "phonetic",
    "phonetic_nysiis",
    "project_purpose",
    "sex_code",
    "swapped_day_month",
    "to_b64",
    "week_of_birth",
]
