"""The split-file operation: one identifiable record in, content and linkage keys out.

``Pseudonymiser(keyring, postcodes).split(record, source=..., record_kind=..., roles=...)``
returns a :class:`SplitResult` of the record's two halves:

* ``content`` — what the record is about, with no direct identifier (a plain, JSON-ready
  dict): the record token in place of the source's id, keyed tokens for cross-references,
  week of birth, sex code, LSOA and local authority, the content fields;
* ``linkage`` — the identifiers encoded for comparison, as the contract's typed
  :class:`~contracts.events.LinkageKeys`: HMAC tokens, token sets, Bloom filters, per-address
  encodings for an address history, and the :class:`~contracts.events.QualityFlag` s raised
  (which both halves publish).

Which field is which is the caller's to say, with a role per field (see :class:`Role`). A
field with no role is refused (:class:`UnclassifiedFieldError`) unless ``unknown="drop"``:
the privacy boundary fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal

from contracts.events import EncodedAddress, LinkageKeys, QualityFlag
from services.pseudonymise.domain.bloom import (
    DEFAULT_BLOOM_PARAMS,
    BloomEncoder,
    BloomParams,
    to_b64,
)
from services.pseudonymise.domain.dates import dob_parts, month_of, parse_date
from services.pseudonymise.domain.keys import LINKAGE_BLOOM, LINKAGE_EXACT, RECORD_TOKEN, KeyRing
from services.pseudonymise.domain.nhs import is_valid_nhs_number, normalise_nhs_number
from services.pseudonymise.domain.normalise import (
    EMPTY_NAME,
    NormalisedName,
    canonical_forename,
    canonical_surname,
    normalise_address,
    normalise_name,
    one_edit_forms,
    phonetic,
    phonetic_nysiis,
)
from services.pseudonymise.domain.postcode import (
    AreaQuality,
    OnsPostcodeLookup,
    Postcode,
    parse_postcode,
)
from services.pseudonymise.domain.tokens import RecordTokeniser, Tokeniser

__all__ = [
    "ADDRESS_FROM_KEYS",
    "ADDRESS_TO_KEYS",
    "KeyPart",
    "LinkageParts",
    "Pseudonymiser",
    "Role",
    "RoleError",
    "SplitResult",
    "UnclassifiedFieldError",
    "parse_roles",
    "sex_code",
]


class Role(StrEnum):
    """What a field of a partner record is, for the split.

    A reference to another record is written ``"ref:<record kind>"`` (e.g. ``"ref:case"``)
    and becomes the record token that record gets, so joins survive pseudonymisation.
    """

    RECORD_ID = "record_id"  # the source's own id of this record -> record token
    REFERENCE = "ref"  # written "ref:<kind>": another record's id -> its record token
    NHS_NUMBER = "nhs_number"
    FORENAME = "forename"  # given names; the first word is the forename, the rest middle names
    MIDDLE_NAMES = "middle_names"
    SURNAME = "surname"
    PREVIOUS_SURNAMES = "previous_surnames"  # text or a list (maiden / former surnames)
    DATE_OF_BIRTH = "date_of_birth"
    DATE_OF_DEATH = "date_of_death"  # -> month of death in content only
    SEX = "sex"
    POSTCODE = "postcode"  # current postcode -> LSOA/LA in content, tokens in linkage
    ADDRESS = "address"  # text, list of lines, or {line_1..line_5, postcode}; role order
    ADDRESS_HISTORY = "address_history"  # list of {address: {...}, from_date, to_date}
    CONTENT = "content"  # passes through unchanged: must not hold an identifier
    DROP = "drop"  # removed


_PERSON_ROLES = frozenset(
    {
        Role.NHS_NUMBER,
        Role.FORENAME,
        Role.MIDDLE_NAMES,
        Role.SURNAME,
        Role.PREVIOUS_SURNAMES,
        Role.DATE_OF_BIRTH,
        Role.DATE_OF_DEATH,
        Role.SEX,
        Role.POSTCODE,
        Role.ADDRESS,
        Role.ADDRESS_HISTORY,
    }
)
_SINGLE_ROLES = frozenset(
    {
        Role.RECORD_ID,
        Role.NHS_NUMBER,
        Role.FORENAME,
        Role.MIDDLE_NAMES,
        Role.SURNAME,
        Role.DATE_OF_BIRTH,
        Role.DATE_OF_DEATH,
        Role.SEX,
        Role.POSTCODE,
        Role.ADDRESS_HISTORY,
    }
)

ADDRESS_FROM_KEYS = ("from", "from_date", "valid_from", "start_date", "start")
ADDRESS_TO_KEYS = ("to", "to_date", "valid_to", "end_date", "end")
_ADDRESS_TEXT_KEYS = ("address_lines", "lines")
_ADDRESS_LINE_KEYS = tuple(
    f"{prefix}{i}" for prefix in ("line_", "address_", "line") for i in range(1, 6)
)


class RoleError(ValueError):
    """The field-role mapping is malformed (names fields only, never values)."""


class UnclassifiedFieldError(RoleError):
    """The record has fields that no role covers; they are not passed on."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = tuple(sorted(fields))
        super().__init__(f"fields without a role: {', '.join(self.fields)}")


@dataclass(frozen=True, slots=True)
class _ParsedRoles:
    roles: dict[str, Role]
    references: dict[str, str]  # field -> referenced record kind
    by_role: dict[Role, tuple[str, ...]]
    # content field -> [(path inside it, "drop" or the referenced record kind)]
    nested: dict[str, tuple[tuple[tuple[str, ...], str | None], ...]]
    single: dict[Role, str]  # role -> the first field with it (the split's hot path reads it)
    is_person: bool  # some field describes a person

    def one(self, role: Role) -> str | None:
        return self.single.get(role)


def parse_roles(roles: Mapping[str, Role | str]) -> _ParsedRoles:
    """Validate a field -> role mapping (exactly one record id; single roles at most once).

    A dotted name (``"outcomes.child_record_id": "ref:child"``) reaches inside a content
    field (through lists and mappings) to turn a nested id into its record token in place,
    or to drop a nested field (role ``drop``); no other role may be nested.
    """
    parsed: dict[str, Role] = {}
    references: dict[str, str] = {}
    by_role: dict[Role, list[str]] = {}
    nested: dict[str, list[tuple[tuple[str, ...], str | None]]] = {}
    for field_name, raw in roles.items():
        text = str(raw)
        if "." in field_name:
            top, *path = field_name.split(".")
            if text.startswith("ref:") and text[4:]:
                nested.setdefault(top, []).append((tuple(path), text[4:]))
            elif text == Role.DROP.value:
                nested.setdefault(top, []).append((tuple(path), None))
            else:
                raise RoleError(f"field {field_name!r}: only references and drops can be nested")
            continue
        if text.startswith("ref:"):
            kind = text[4:]
            if not kind:
                raise RoleError(f"field {field_name!r}: reference needs a record kind")
            role = Role.REFERENCE
            references[field_name] = kind
        else:
            try:
                role = Role(text)
            except ValueError:
                raise RoleError(f"field {field_name!r}: unknown role {text!r}") from None
            if role is Role.REFERENCE:
                raise RoleError(f"field {field_name!r}: write references as 'ref:<kind>'")
        parsed[field_name] = role
        by_role.setdefault(role, []).append(field_name)
    if len(by_role.get(Role.RECORD_ID, ())) != 1:
        raise RoleError("exactly one field must have the record_id role")
    for role in _SINGLE_ROLES:
        if len(by_role.get(role, ())) > 1:
            raise RoleError(f"role {role.value!r} given to more than one field")
    for top in nested:
        if parsed.get(top) is not Role.CONTENT:
            raise RoleError(f"nested roles under {top!r} need {top!r} to be a content field")
    return _ParsedRoles(
        parsed,
        references,
        {r: tuple(f) for r, f in by_role.items()},
        {top: tuple(rules) for top, rules in nested.items()},
        {r: f[0] for r, f in by_role.items()},
        any(role in by_role for role in _PERSON_ROLES),
    )


_SEX_CODES = {
    "1": 1, "m": 1, "male": 1, "man": 1, "boy": 1,
    "2": 2, "f": 2, "female": 2, "woman": 2, "girl": 2,
    "8": 8, "not specified": 8, "not stated": 8, "indeterminate": 8, "other": 8, "i": 8,
    "9": 9, "0": 9, "u": 9, "x": 9, "unknown": 9, "not known": 9, "nk": 9,
}  # fmt: skip


def sex_code(value: object) -> int | None:
    """SAIL gender code: 1 male, 2 female, 8 not specified, 9 unknown; None if unrecognised."""
    if value is None or value == "":
        return 9
    key = str(value).strip().casefold().replace("_", " ")
    return _SEX_CODES.get(key)


@dataclass(frozen=True, slots=True)
class SplitResult:
    """The two halves of a split record.

    ``content`` (a plain, JSON-ready dict) keys: source, record_kind, record_token,
    key_version, references, fields, quality (what the split dropped); for person records
    also week_of_birth, sex, lsoa, local_authority, area_quality and (with an address
    history) residences.

    ``linkage``: the typed linkage keys (empty for a record that describes no person), with
    the ``record_token``, ``key_version`` and ``bloom_scheme`` they were made under.
    """

    content: dict[str, Any]
    linkage: LinkageKeys
    record_token: str
    key_version: int
    bloom_scheme: str
    is_person: bool
    """True when the record described a person (so linkage keys are worth sending)."""

    @property
    def flags(self) -> frozenset[QualityFlag]:
        """The quality flags raised; both halves carry them."""
        return self.linkage.flags


class _Keys:
    """The linkage keys of one record while the split builds them."""

    __slots__ = ("addresses", "blooms", "flags", "sets", "tokens")

    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}
        self.sets: dict[str, tuple[str, ...]] = {}  # each sorted when it is made
        self.blooms: dict[str, str] = {}
        self.addresses: list[EncodedAddress] = []
        self.flags: set[QualityFlag] = set()

    def merge(self, part: KeyPart) -> None:
        part.merge_into(self)

    def flag(self, flag: QualityFlag, raised: bool) -> bool:
        if raised:
            self.flags.add(flag)
        return raised

    def freeze(self) -> LinkageKeys:
        return LinkageKeys(
            hmac_tokens=MappingProxyType(self.tokens),
            token_sets=MappingProxyType(self.sets),
            bloom_filters=MappingProxyType(self.blooms),
            addresses=tuple(self.addresses),
            flags=frozenset(self.flags),
        )


class _PartKeys(_Keys):
    """A record's keys with its parts kept whole, not merged (see :class:`LinkageParts`);
    their flags are merged, which the split reads as it goes."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[KeyPart] = []

    def merge(self, part: KeyPart) -> None:
        self.parts.append(part)
        if part.flags:
            self.flags |= part.flags


def _sorted(tokens: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(tokens))


_SAME = object()
_PART_CACHE_SIZE = 1 << 16
"""Distinct values kept per part (forename and surname fields, postcodes, addresses);
beyond that a value's keys are made again each time. They live only in the pseudonymise
process, which holds the key and sees the clear values anyway."""


@dataclass(frozen=True, slots=True)
class KeyPart:
    """The keys one field's value gives (a forename, a surname with the previous ones, a
    postcode, an address), merged into a record's keys in field order (so the output's key
    order, and so its bytes, are those of a split without the cache).

    Made once per distinct value and kept (bounded): records that share the value share the
    object, which is what lets a batch linker lay each part out once (:class:`LinkageParts`).
    """

    tokens: tuple[tuple[str, str], ...]
    sets: tuple[tuple[str, tuple[str, ...]], ...]
    blooms: tuple[tuple[str, str], ...]
    flags: frozenset[QualityFlag]
    extra: Any = None

    @classmethod
    def of(cls, keys: _Keys, extra: Any = None) -> KeyPart:
        return cls(
            tuple(keys.tokens.items()),
            tuple(keys.sets.items()),
            tuple(keys.blooms.items()),
            frozenset(keys.flags),
            extra,
        )

    def merge_into(self, keys: _Keys) -> None:
        if self.tokens:
            keys.tokens.update(self.tokens)
        if self.sets:
            keys.sets.update(self.sets)
        if self.blooms:
            keys.blooms.update(self.blooms)
        if self.flags:
            keys.flags |= self.flags


@dataclass(frozen=True, slots=True)
class LinkageParts:
    """A person's linkage keys as the split makes them, before its parts are merged: what
    :meth:`Pseudonymiser.linkage_parts` gives a batch that only links (no content half).

    :meth:`keys` merges them into the :class:`~contracts.events.LinkageKeys` the split would
    give. The keys a record holds alone (NHS number, date of birth, sex, full name) never
    share a name with a part's, so merging the parts first and them after gives the same keys.
    """

    parts: tuple[KeyPart, ...]
    """Forename, surname, postcode and address parts, in the split's merge order."""
    tokens: Mapping[str, str]
    sets: Mapping[str, tuple[str, ...]]
    blooms: Mapping[str, str]
    addresses: tuple[EncodedAddress, ...]
    flags: frozenset[QualityFlag]
    """Every flag raised, the parts' included."""

    def keys(self) -> LinkageKeys:
        merged = _Keys()
        for part in self.parts:
            part.merge_into(merged)
        merged.tokens.update(self.tokens)
        merged.sets.update(self.sets)
        merged.blooms.update(self.blooms)
        merged.addresses = list(self.addresses)
        merged.flags |= self.flags
        return merged.freeze()


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _list_of_text(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None and str(v).strip()]
    return [str(value)]


def _first(entry: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if entry.get(key) not in (None, ""):
            return entry[key]
    return None


def _month_or_none(value: object) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, date | datetime):
        return month_of(value if isinstance(value, date) else value.date())
    text = str(value).strip()
    if len(text) == 7 and text[4] == "-":  # already YYYY-MM
        return text
    try:
        return month_of(parse_date(text))
    except ValueError:
        return None


def _address_parts(value: object) -> tuple[list[str], str | None]:
    """Address lines and postcode of text, a list of lines, or an address mapping.

    A mapping may hold ``line_1``..``line_5`` (or ``address_1``.., ``line1``..), ``lines`` or
    ``address_lines``, a ``postcode``, or a nested ``address`` mapping or text.
    """
    if not isinstance(value, Mapping):
        return _list_of_text(value), None
    lines: list[str] = []
    postcode = _text(value.get("postcode"))
    inner = value.get("address")
    if inner is not None:
        inner_lines, inner_postcode = _address_parts(inner)
        lines += inner_lines
        postcode = postcode or inner_postcode
    for key in _ADDRESS_TEXT_KEYS:
        lines += _list_of_text(value.get(key))
    for key in _ADDRESS_LINE_KEYS:
        lines += _list_of_text(value.get(key))
    return lines, postcode


def _current_period(history: object) -> Mapping[str, Any] | None:
    """The history entry still open (no end date), else the one that ended last."""
    if not isinstance(history, Sequence) or isinstance(history, str | bytes):
        return None
    entries = [e for e in history if isinstance(e, Mapping)]
    if not entries:
        return None

    def key(entry: Mapping[str, Any]) -> tuple[bool, str, str]:
        end = _month_or_none(_first(entry, ADDRESS_TO_KEYS))
        start = _month_or_none(_first(entry, ADDRESS_FROM_KEYS))
        return (end is None, end or "", start or "")

    return max(entries, key=key)


def _rewrite(value: Any, path: tuple[str, ...], change: Any) -> Any:
    """A copy of ``value`` with ``change`` applied at ``path`` (through lists and mappings)."""
    if isinstance(value, list | tuple):
        return [_rewrite(item, path, change) for item in value]
    if not isinstance(value, Mapping) or path[0] not in value:
        return value
    out = dict(value)
    if len(path) == 1:
        change(out, path[0])
    else:
        out[path[0]] = _rewrite(out[path[0]], path[1:], change)
    return out


class Pseudonymiser:
    """Splits records under one key version; build once per version and reuse.

    ``keyring`` supplies the ``record-token``, ``linkage-exact`` and ``linkage-bloom`` keys
    of ``version`` (default: the ring's current version); ``postcodes`` maps postcodes to
    LSOA and local authority.
    """

    __slots__ = (
        "_bloom",
        "_bloom_scheme",
        "_dob_days",
        "_dob_months",
        "_exact",
        "_last_roles",
        "_parts",
        "_postcodes",
        "_records",
        "_roles_cache",
        "key_version",
    )

    def __init__(
        self,
        keyring: KeyRing,
        postcodes: OnsPostcodeLookup,
        *,
        version: int | None = None,
        bloom_params: BloomParams = DEFAULT_BLOOM_PARAMS,
    ) -> None:
        version = keyring.current_version if version is None else version
        self.key_version = version
        # Record tokens keep their own version: a rotation re-keys linkage, not names (KeyRing).
        self._records = RecordTokeniser(keyring.derive(RECORD_TOKEN, keyring.record_token_version))
        self._exact = Tokeniser(keyring.derive(LINKAGE_EXACT, version))
        self._bloom = BloomEncoder(keyring.derive(LINKAGE_BLOOM, version), bloom_params)
        self._postcodes = postcodes
        self._bloom_scheme = self._bloom.scheme
        self._dob_months: dict[str, tuple[str, str, str]] = {}  # YYYY-MM -> its three tokens
        self._dob_days: dict[str, str] = {}  # DD -> its token
        self._roles_cache: dict[tuple[tuple[str, str], ...], _ParsedRoles] = {}
        # The mapping of the last call, a copy of it and its parse: callers pass the same
        # mapping object for every record, so most calls compare two small dicts and go on.
        self._last_roles: tuple[Mapping[str, Role | str], dict[str, Any], _ParsedRoles] | None
        self._last_roles = None
        # Keys of one field's value, by part ("forename", "postcode", ...) and value: names,
        # postcodes and addresses recur from record to record (see _part).
        self._parts: dict[str, dict[Any, Any]] = {
            kind: {} for kind in ("forename", "surname", "full_name", "postcode", "address")
        }

    def __repr__(self) -> str:
        return f"Pseudonymiser(key_version={self.key_version}, bloom={self._bloom.scheme!r})"

    @property
    def bloom_scheme(self) -> str:
        return self._bloom_scheme

    def record_token(self, source: str, record_kind: str, record_id: str | int) -> str:
        """The record token a record of ``record_kind`` with ``record_id`` gets."""
        return self._records.record_token(source, record_kind, record_id)

    def token(self, domain: str, value: str) -> str:
        """A linkage token of an already-normalised ``value`` in comparison ``domain``."""
        return self._exact.token(domain, value)

    def split(
        self,
        record: Mapping[str, Any],
        *,
        source: str,
        record_kind: str,
        roles: Mapping[str, Role | str],
        unknown: Literal["refuse", "drop"] = "refuse",
    ) -> SplitResult:
        """Split one validated partner record; see the module docstring for the output."""
        parsed = self._parse_roles(roles)
        unclassified = [name for name in record if name not in parsed.roles]
        if unclassified and unknown == "refuse":
            raise UnclassifiedFieldError(unclassified)

        id_field = parsed.one(Role.RECORD_ID)
        assert id_field is not None
        record_id = _text(record.get(id_field))
        if record_id is None:
            raise ValueError(f"record id field {id_field!r} is empty")
        record_token = self._records.record_token(source, record_kind, record_id)

        references: dict[str, str | None] = {}
        for field_name, kind in parsed.references.items():
            ref = _text(record.get(field_name))
            references[field_name] = (
                None if ref is None else self._records.record_token(source, kind, ref)
            )
        fields = {
            name: record[name] for name in parsed.by_role.get(Role.CONTENT, ()) if name in record
        }
        for top, rules in parsed.nested.items():
            if top in fields:
                for path, target in rules:
                    fields[top] = _rewrite(fields[top], path, self._nested_change(source, target))
        content: dict[str, Any] = {
            "source": source,
            "record_kind": record_kind,
            "record_token": record_token,
            "key_version": self.key_version,
            "references": references,
            "fields": fields,
            "quality": {},
        }
        keys = _Keys()
        if unclassified:
            content["quality"]["unclassified_fields_dropped"] = sorted(unclassified)
        person = parsed.is_person
        if person:
            self._person(record, parsed, content, keys)
        return SplitResult(
            content=content,
            linkage=keys.freeze(),
            record_token=record_token,
            key_version=self.key_version,
            bloom_scheme=self._bloom_scheme,
            is_person=person,
        )

    def linkage_parts(
        self, record: Mapping[str, Any], *, roles: Mapping[str, Role | str]
    ) -> LinkageParts:
        """The linkage keys :meth:`split` gives a person record, its parts unmerged, and no
        content half (no record token, no area, no passed-through fields): for a batch that
        encodes clear rows only to link them. Fields without a role are not read."""
        parsed = self._parse_roles(roles)
        if not parsed.is_person:
            raise RoleError("linkage parts need a person's roles (a name, a date of birth...)")
        keys = _PartKeys()
        self._person(record, parsed, {}, keys)
        return LinkageParts(
            tuple(keys.parts),
            keys.tokens,
            keys.sets,
            keys.blooms,
            tuple(keys.addresses),
            frozenset(keys.flags),
        )

    def _parse_roles(self, roles: Mapping[str, Role | str]) -> _ParsedRoles:
        # Callers pass the same few mappings for every record: parse each once.
        last = self._last_roles
        if last is not None and last[0] is roles and last[1] == roles:
            return last[2]
        key = tuple((name, str(role)) for name, role in roles.items())
        parsed = self._roles_cache.get(key)
        if parsed is None:
            parsed = parse_roles(roles)
            if len(self._roles_cache) < 256:
                self._roles_cache[key] = parsed
        self._last_roles = (roles, dict(roles), parsed)
        return parsed

    def _nested_change(self, source: str, kind: str | None) -> Any:
        def change(container: dict[str, Any], key: str) -> None:
            if kind is None:
                del container[key]
                return
            ref = _text(container[key])
            container[key] = None if ref is None else self.record_token(source, kind, ref)

        return change

    # -- person fields ---------------------------------------------------------------------

    def _person(
        self,
        record: Mapping[str, Any],
        parsed: _ParsedRoles,
        content: dict[str, Any],
        keys: _Keys,
    ) -> None:
        # The hot path of every split (most values' keys come from the part caches): fields
        # are read through the parsed roles' role -> field map, flags added directly.
        tok = self._exact.token
        tokens, flags = keys.tokens, keys.flags
        field = parsed.single
        get = record.get

        # NHS number
        name = field.get(Role.NHS_NUMBER)
        raw_nhs = None if name is None else _text(get(name))
        if raw_nhs is None:
            flags.add(QualityFlag.NHS_NUMBER_MISSING)
        else:
            nhs = normalise_nhs_number(raw_nhs)
            if nhs is None:
                flags.add(QualityFlag.NHS_NUMBER_INVALID)
            else:
                if not is_valid_nhs_number(nhs):
                    flags.add(QualityFlag.NHS_NUMBER_INVALID)
                tokens["nhs"] = tok("nhs", nhs)

        # Date of birth (never kept: dates of birth are not cached, §6)
        name = field.get(Role.DATE_OF_BIRTH)
        content["week_of_birth"] = self._dob(None if name is None else get(name), keys)

        name = field.get(Role.DATE_OF_DEATH)
        if name is not None:
            raw_dod = get(name)
            try:
                dod = None if raw_dod in (None, "") else parse_date(raw_dod)
            except ValueError:
                dod = None
            content["month_of_death"] = None if dod is None else month_of(dod)

        # Sex (before the names: a short form both sexes use is read by it)
        name = field.get(Role.SEX)
        code = None
        if name is not None:
            code = sex_code(get(name))
            if code is None:
                flags.add(QualityFlag.SEX_UNKNOWN)
            content["sex"] = 9 if code is None else code
            if code == 1 or code == 2:
                tokens["sex"] = tok("sex", str(code))

        # Names
        parts = self._parts
        name = field.get(Role.FORENAME)
        forename_text = None if name is None else _text(get(name))
        name = field.get(Role.MIDDLE_NAMES)
        middle_text = "" if name is None else " ".join(_list_of_text(get(name)))
        forename_key = (forename_text, middle_text, code if code == 1 or code == 2 else None)
        forename_part = parts["forename"].get(forename_key)
        if forename_part is None:
            forename_part = self._part("forename", forename_key)
        keys.merge(forename_part)
        name = field.get(Role.PREVIOUS_SURNAMES)
        previous_texts = () if name is None else tuple(_list_of_text(get(name)))
        name = field.get(Role.SURNAME)
        surname_key = (None if name is None else _text(get(name)), previous_texts)
        surname_part = parts["surname"].get(surname_key)
        if surname_part is None:
            surname_part = self._part("surname", surname_key)
        keys.merge(surname_part)
        if QualityFlag.FORENAME_PLACEHOLDER in flags or QualityFlag.SURNAME_PLACEHOLDER in flags:
            flags.add(QualityFlag.NAME_PLACEHOLDER)
        given, middle = forename_part.extra
        surname = surname_part.extra
        full_tokens = given.tokens + middle.tokens
        if surname.usable:
            full_tokens += surname.tokens
        if full_tokens and (given.usable or surname.usable):
            # Most full names are a person's own (a cache miss): the encoding is kept alone.
            full = parts["full_name"].get(full_tokens, _SAME)
            if full is _SAME:
                full = self._full_name(full_tokens)
                if len(parts["full_name"]) < _PART_CACHE_SIZE:
                    parts["full_name"][full_tokens] = full
            if full is not None:
                keys.blooms["full_name"] = full

        # Current address and postcode (the address's own postcode if no postcode field)
        address_lines: list[str] = []
        address_postcode: str | None = None
        for name in parsed.by_role.get(Role.ADDRESS, ()):
            value = get(name)
            if isinstance(value, str):  # the common case, as _address_parts would read it
                if value.strip():
                    address_lines.append(value)
                continue
            lines, in_address = _address_parts(value)
            address_lines += lines
            address_postcode = address_postcode or in_address
        name = field.get(Role.ADDRESS_HISTORY)
        history = None if name is None else get(name)
        name = field.get(Role.POSTCODE)
        raw_postcode = None if name is None else get(name)
        if not address_lines and raw_postcode is None:
            # A spine person's current address is the open (latest) period of the history.
            current = _current_period(history)
            if current is not None:
                address_lines, address_postcode = _address_parts(current)
        raw_postcode = _text(raw_postcode) or address_postcode
        part = self._part("postcode", raw_postcode)
        keys.merge(part)
        area = part.extra
        content["lsoa"] = area.lsoa
        content["local_authority"] = area.local_authority
        content["area_quality"] = area.quality.value
        if address_lines:
            keys.merge(self._part("address", tuple(address_lines)))

        # Address history (the spine's residences)
        if Role.ADDRESS_HISTORY in field:
            content["residences"], keys.addresses = self._history(history)

    def _part(self, kind: str, key: Any, value: Any = _SAME) -> KeyPart:
        """The keys one field's value gives (tokens, sets, Bloom filters, flags), made once
        per distinct value and kept (bounded): the value alone decides them."""
        cache = self._parts[kind]
        try:
            part = cache.get(key)
        except TypeError:  # an unhashable value (a date object in a list...): not kept
            part, cache = None, {}
        if part is None:
            part = getattr(self, f"_make_{kind}")(key if value is _SAME else value)
            if len(cache) < _PART_CACHE_SIZE:
                cache[key] = part
        return part

    def _dob(self, raw_dob: Any, keys: _Keys) -> str | None:
        """Adds the date of birth's tokens and flags to ``keys``; its week of birth."""
        flags = keys.flags
        if raw_dob is None or raw_dob == "":
            flags.add(QualityFlag.DATE_OF_BIRTH_MISSING)
            return None
        try:
            parts = dob_parts(raw_dob)
        except ValueError:
            flags.add(QualityFlag.DATE_OF_BIRTH_INVALID)
            return None
        if parts.placeholder:
            flags.add(QualityFlag.DATE_OF_BIRTH_PLACEHOLDER)
        tok = self._exact.token
        tokens = keys.tokens
        iso = parts.dob.isoformat()  # YYYY-MM-DD: the parts below are its slices
        tokens["dob_full"] = tok("dob_full", iso)
        # The month's and the day's tokens, kept apart (never the whole date, §6).
        month = self._dob_months.get(iso[:7])
        if month is None:
            month = (
                tok("dob_year", iso[:4]),
                tok("dob_month", iso[5:7]),
                tok("dob_year_month", iso[:7]),
            )
            if len(self._dob_months) < _PART_CACHE_SIZE:
                self._dob_months[iso[:7]] = month
        day = self._dob_days.get(iso[8:10])
        if day is None:
            day = self._dob_days[iso[8:10]] = tok("dob_day", iso[8:10])  # 31 at most
        tokens["dob_year"] = month[0]
        tokens["dob_month"] = month[1]
        tokens["dob_day"] = day
        tokens["dob_year_month"] = month[2]
        if parts.swapped is not None:
            # Same domain as dob_full, so swapped(A) compares equal to full(B).
            tokens["dob_swapped"] = tok("dob_full", parts.swapped.isoformat())
        return parts.week_of_birth.isoformat()

    def _make_forename(self, texts: tuple[str | None, str, int | None]) -> KeyPart:
        keys = _Keys()
        forename_field = normalise_name(texts[0])
        middle_field = normalise_name(texts[1])
        keys.flag(QualityFlag.FORENAME_MISSING, not forename_field.tokens)
        keys.flag(QualityFlag.FORENAME_PLACEHOLDER, forename_field.placeholder)
        given = forename_field if forename_field.usable else EMPTY_NAME
        middle = middle_field if middle_field.usable else EMPTY_NAME
        bits = self._bloom.params.output_bits
        self._forename_keys(given, middle, texts[2], keys.tokens, keys.sets, keys.blooms, bits)
        return KeyPart.of(keys, (given, middle))

    def _make_surname(self, texts: tuple[str | None, tuple[str, ...]]) -> KeyPart:
        keys = _Keys()
        surname = normalise_name(texts[0])
        previous = [n for n in (normalise_name(s) for s in texts[1]) if n.usable]
        keys.flag(QualityFlag.SURNAME_MISSING, not surname.tokens)
        keys.flag(QualityFlag.SURNAME_PLACEHOLDER, surname.placeholder)
        bits = self._bloom.params.output_bits
        self._surname_keys(surname, previous, keys.tokens, keys.sets, keys.blooms, bits)
        return KeyPart.of(keys, surname)

    def _full_name(self, full_tokens: tuple[str, ...]) -> str | None:
        encoded = self._bloom.encode_tokens("full_name", full_tokens)
        return None if encoded is None else to_b64(encoded, self._bloom.params.output_bits)

    def _make_postcode(self, raw_postcode: str | None) -> KeyPart:
        keys = _Keys()
        postcode = parse_postcode(raw_postcode)
        area = self._postcodes.lookup(postcode if postcode is not None else raw_postcode)
        keys.flag(QualityFlag.POSTCODE_MISSING, raw_postcode is None)
        keys.flag(QualityFlag.POSTCODE_INVALID, area.quality is AreaQuality.INVALID)
        keys.flag(QualityFlag.POSTCODE_PARTIAL, postcode is not None and not postcode.is_full)
        keys.flag(
            QualityFlag.POSTCODE_NOT_FOUND,
            area.quality in (AreaQuality.UNKNOWN, AreaQuality.SECTOR),
        )
        if postcode is not None:
            keys.tokens.update(self._postcode_tokens(postcode))
        return KeyPart.of(keys, area)

    def _make_address(self, lines: tuple[str, ...]) -> KeyPart:
        keys = _Keys()
        encoded = self._bloom.encode_tokens("address", normalise_address(list(lines)))
        if encoded is not None:
            keys.blooms["address"] = to_b64(encoded, self._bloom.params.output_bits)
        return KeyPart.of(keys)

    def _forename_keys(
        self,
        given: NormalisedName,
        middle: NormalisedName,
        sex: int | None,
        tokens: dict[str, str],
        sets: dict[str, tuple[str, ...]],
        blooms: dict[str, str],
        bits: int,
    ) -> None:
        tok = self._exact.token
        first = given.first
        if first is None:
            # "Baby Jones" has no forename; a middle name alone is still a given name.
            if middle.tokens:
                sets["given_names"] = _sorted({tok("forename", t) for t in middle.forms})
                sets["middle_names"] = _sorted({tok("forename", t) for t in middle.forms})
            return
        tokens["forename"] = tok("forename", first)
        # The given name as a surname: a record with forename and surname swapped then
        # agrees with the spine's surname token exactly.
        tokens["forename_as_surname"] = tok("surname", first)
        # Middle names share the forename domain: a middle name used as the given name matches.
        tokens["forename_canonical"] = tok("forename_canonical", canonical_forename(first, sex))
        tokens["forename_phonetic"] = tok("forename_phonetic", phonetic(first))
        tokens["forename_nysiis"] = tok("forename_nysiis", phonetic_nysiis(first))
        # A short name one typo away (Mia/Mva) shares one of these; Dice cannot see it.
        if edits := one_edit_forms(first):
            sets["forename_edits"] = _sorted({tok("forename_edit", f) for f in edits})
        middles = [*given.words[1:], *middle.forms]
        given_forms = {*given.forms, *middle.forms}
        sets["given_names"] = _sorted({tok("forename", t) for t in given_forms})
        sets["given_names_canonical"] = _sorted(
            {tok("forename_canonical", canonical_forename(t, sex)) for t in given_forms}
        )
        if middles:
            sets["middle_names"] = _sorted({tok("forename", t) for t in middles})
        # The first given name and, if hyphenated, its pieces (Anne-Marie: annemarie, anne, marie).
        encoded = self._bloom.encode_tokens("forename", {first, *given.first_pieces})
        if encoded is not None:
            blooms["forename"] = to_b64(encoded, bits)

    def _surname_keys(
        self,
        surname: NormalisedName,
        previous: list[NormalisedName],
        tokens: dict[str, str],
        sets: dict[str, tuple[str, ...]],
        blooms: dict[str, str],
        bits: int,
    ) -> None:
        tok = self._exact.token
        all_forms: set[str] = set()
        if surname.usable:
            joined = surname.joined
            tokens["surname"] = tok("surname", joined)
            tokens["surname_as_forename"] = tok("forename", joined)  # swapped (see above)
            tokens["surname_canonical"] = tok("surname_canonical", canonical_surname(joined))
            tokens["surname_phonetic"] = tok("surname_phonetic", phonetic(joined))
            tokens["surname_nysiis"] = tok("surname_nysiis", phonetic_nysiis(joined))
            all_forms |= set(surname.forms)
            encoded = self._bloom.encode_tokens("surname", surname.forms)
            if encoded is not None:
                blooms["surname"] = to_b64(encoded, bits)
        if previous:
            previous_forms = {form for name in previous for form in name.forms}
            # Previous surnames share the surname domain: a maiden name matches a surname.
            sets["previous_surnames"] = _sorted({tok("surname", f) for f in previous_forms})
            all_forms |= previous_forms
        if all_forms:
            sets["surnames"] = _sorted({tok("surname", f) for f in all_forms})
            sets["surnames_phonetic"] = _sorted(
                {tok("surname_phonetic", phonetic(f)) for f in all_forms}
            )

    def _postcode_tokens(self, postcode: Postcode) -> dict[str, str]:
        tok = self._exact.token
        out = {"postcode_district": tok("postcode_district", postcode.district)}
        if postcode.sector is not None:
            out["postcode_sector"] = tok("postcode_sector", postcode.sector)
        if postcode.unit is not None:
            out["postcode_unit"] = tok("postcode_unit", postcode.unit)
        return out

    def _history(self, history: object) -> tuple[list[dict[str, Any]], list[EncodedAddress]]:
        residences: list[dict[str, Any]] = []
        addresses: list[EncodedAddress] = []
        if not isinstance(history, Sequence) or isinstance(history, str | bytes):
            return residences, addresses
        for entry in history:
            if not isinstance(entry, Mapping):
                continue
            when = {
                "from": _month_or_none(_first(entry, ADDRESS_FROM_KEYS)),
                "to": _month_or_none(_first(entry, ADDRESS_TO_KEYS)),
            }
            lines, raw_postcode = _address_parts(entry)
            # A residence's postcode and lines give the keys a current one would: the
            # part caches serve both (a spine person's past postcodes recur like current ones).
            postcode = self._part("postcode", raw_postcode)
            area = postcode.extra
            residences.append(
                {
                    **when,
                    "lsoa": area.lsoa,
                    "local_authority": area.local_authority,
                    "area_quality": area.quality.value,
                }
            )
            bloom: str | None = None
            if lines:
                bloom = dict(self._part("address", tuple(lines)).blooms).get("address")
            addresses.append(
                EncodedAddress(
                    from_month=when["from"],
                    to_month=when["to"],
                    hmac_tokens=dict(postcode.tokens),
                    bloom_filter=bloom,
                )
            )
        return residences, addresses
