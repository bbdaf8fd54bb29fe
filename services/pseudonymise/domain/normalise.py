"""Name normalisation: folding, tokens, titles, placeholders, variants and phonetic codes.

``normalise_name("Mr Siôn Smith-Jones")`` -> tokens ``("sion", "smith", "jones")`` and joined
form ``"sionsmithjones"``. Folding is Unicode NFKD with combining marks removed, then
case-folding; apostrophes vanish (O'Brien -> obrien) and every other punctuation mark
separates tokens. Mc/Mac prefixes are kept as written (McDonald -> mcdonald, MacDonald ->
macdonald); a detached prefix is glued back (``Mc Donald`` -> mcdonald). Leading titles and
trailing generational suffixes are dropped. Placeholder names ("Baby", "Baby of Jones",
"Unknown", "Infant", "NK") are flagged so they are never used for matching.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import jellyfish

from services.pseudonymise.domain.nicknames import (
    FORENAME_BY_SEX,
    FORENAME_VARIANTS,
    SURNAME_VARIANTS,
)

__all__ = [
    "NormalisedName",
    "canonical_forename",
    "canonical_surname",
    "fold",
    "is_placeholder_name",
    "normalise_address",
    "normalise_name",
    "one_edit_forms",
    "phonetic",
    "phonetic_nysiis",
]

# Letters NFKD does not decompose into a base letter plus marks.
_SPECIAL_LETTERS = str.maketrans(
    {
        "ø": "o",
        "Ø": "o",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "\u0131": "i",  # dotless i
    }
)
# ASCII and typographic apostrophes, grave and acute accents, modifier-letter apostrophes.
_APOSTROPHES = re.compile(r"['\u2019\u2018`\u00b4\u02bc\u02bb]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_NON_ALPHA = re.compile(r"[^a-z]+")
# Word boundaries: whitespace and punctuation other than hyphens (which join a word's pieces).
_WORD_SPLIT = re.compile(r"[^0-9a-z\-\u2010-\u2015]+")

TITLES = frozenset(
    {
        "mr", "mrs", "ms", "miss", "mx", "dr", "master", "prof", "professor", "rev",
        "revd", "sir", "dame", "lady", "lord", "fr", "mstr",
    }
)  # fmt: skip
SUFFIXES = frozenset({"jr", "jnr", "junior", "sr", "snr", "senior", "ii", "iii", "iv"})
# Detached prefixes glued to the following token (Mc Donald, O Brien, St John, Mac Gregor).
_GLUE_PREFIXES = frozenset({"mc", "mac", "o", "st", "fitz"})
# Whole values that are not a name.
_PLACEHOLDER_VALUES = frozenset(
    {
        "baby", "babyboy", "babygirl", "infant", "unknown", "unk", "nk", "nkn", "notknown",
        "notstated", "notgiven", "unnamed", "newborn", "twin", "twina", "twinb", "twin1",
        "twin2", "child", "male", "female", "boy", "girl", "x", "xx", "xxx", "na", "none",
        "tbc", "tba", "test", "anon", "anonymous", "withheld", "refused", "blank", "null",
        "mother", "father", "dummy", "zz", "zzz", "noname", "nfa", "bb", "bby", "mum",
    }
)  # fmt: skip
# "Baby of Jones", "Infant of ...", "Twin 1 of ...": a placeholder followed by "of".
_PLACEHOLDER_HEADS = frozenset({"baby", "infant", "child", "twin", "newborn", "son", "daughter"})
# No real name starts with these ("Baby Jones", "Unknown Female 2").
_PLACEHOLDER_LEADS = frozenset({"baby", "infant", "newborn", "unnamed", "unknown"})
_PLACEHOLDER_WORDS = frozenset(
    {"baby", "infant", "unknown", "boy", "girl", "twin", "male", "female", "child", "nk"}
)

_ADDRESS_ABBREVIATIONS = {
    "rd": "road",
    "st": "street",
    "ave": "avenue",
    "av": "avenue",
    "cres": "crescent",
    "cl": "close",
    "ct": "court",
    "dr": "drive",
    "ln": "lane",
    "pl": "place",
    "sq": "square",
    "terr": "terrace",
    "ter": "terrace",
    "tce": "terrace",
    "gdns": "gardens",
    "gr": "grove",
    "hse": "house",
    "flt": "flat",
    "apt": "flat",
    "apartment": "flat",
    "pk": "park",
    "est": "estate",
    "stryd": "street",
    "heol": "road",
    "ffordd": "road",
}


def fold(text: str) -> str:
    """NFKD, combining marks removed, special letters mapped, case-folded (Siôn -> sion)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_SPECIAL_LETTERS))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.casefold()


@dataclass(frozen=True, slots=True)
class NormalisedName:
    """A normalised name: its words, tokens, joined form, and whether it is a placeholder.

    ``words`` are the space-separated parts, each with its hyphenated pieces joined
    ("Anne-Marie Louise" -> annemarie, louise); ``tokens`` are every piece (anne, marie,
    louise); ``joined`` concatenates everything (Smith-Jones and Smith Jones -> smithjones);
    ``forms`` is every form worth comparing (tokens, then the words and the joined form that
    are not already tokens); ``first_pieces`` are the pieces of the first word. An empty or
    placeholder name has ``usable`` False.
    """

    words: tuple[str, ...]
    tokens: tuple[str, ...]
    joined: str
    placeholder: bool
    first_pieces: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        return bool(self.tokens) and not self.placeholder

    @property
    def forms(self) -> tuple[str, ...]:
        extra = [w for w in (*self.words, self.joined) if w and w not in self.tokens]
        return tuple(dict.fromkeys((*self.tokens, *extra)))

    @property
    def first(self) -> str | None:
        """The first word (a person's given name when this is a forename field)."""
        return self.words[0] if self.words else None


EMPTY_NAME = NormalisedName(words=(), tokens=(), joined="", placeholder=False)


def _raw_tokens(text: str) -> list[str]:
    folded = _APOSTROPHES.sub("", fold(text))
    return [t for t in _NON_ALNUM.split(folded) if t]


def is_placeholder_name(tokens: tuple[str, ...] | list[str]) -> bool:
    """True for "Baby", "Baby of X", "Unknown", "Infant", "NK", "Twin 1" and the like."""
    if not tokens:
        return False
    if "".join(tokens) in _PLACEHOLDER_VALUES:
        return True
    if tokens[0] in _PLACEHOLDER_HEADS and "of" in tokens[1:3]:
        return True
    if tokens[0] in _PLACEHOLDER_LEADS:
        return True
    # Everything is a placeholder word or a digit/letter marker ("Twin 2 Girl").
    return all(t in _PLACEHOLDER_WORDS or t.isdigit() or len(t) == 1 for t in tokens) and any(
        t in _PLACEHOLDER_WORDS for t in tokens
    )


@lru_cache(maxsize=65536)
def normalise_name(text: str | None) -> NormalisedName:
    """Normalise one name field (a forename with any middle names, or a surname)."""
    if not text:
        return EMPTY_NAME
    placeholder = is_placeholder_name(_raw_tokens(text))
    folded = _APOSTROPHES.sub("", fold(text))
    # Words split on spaces and on separators other than hyphens; pieces split on the rest.
    words: list[list[str]] = []
    for raw_word in _WORD_SPLIT.split(folded):
        pieces = [p for p in (_NON_ALPHA.sub("", x) for x in _NON_ALNUM.split(raw_word)) if p]
        if pieces:
            words.append(pieces)
    while len(words) > 1 and len(words[0]) == 1 and words[0][0] in TITLES:
        words.pop(0)
    while len(words) > 1 and len(words[-1]) == 1 and words[-1][0] in SUFFIXES:
        words.pop()
    glued: list[list[str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if len(word) == 1 and word[0] in _GLUE_PREFIXES and i + 1 < len(words):
            nxt = words[i + 1]
            glued.append([word[0] + nxt[0], *nxt[1:]])
            i += 2
        else:
            glued.append(word)
            i += 1
    tokens = tuple(piece for word in glued for piece in word)
    joined_words = tuple("".join(word) for word in glued)
    return NormalisedName(
        words=joined_words,
        tokens=tokens,
        joined="".join(joined_words),
        placeholder=placeholder,
        first_pieces=tuple(glued[0]) if glued else (),
    )


def canonical_forename(token: str, sex: int | None = None) -> str:
    """The variant-table key of a folded forename token (Dai, Dafydd, Dave -> david).

    ``sex`` is the record's code (1 male, 2 female): a short form both sexes use (Sam,
    Charlie, Nicky) takes the group of that sex, and without a sex is left as it is."""
    sexed = FORENAME_BY_SEX.get(token)
    if sexed is not None:
        return sexed[sex - 1] if sex in (1, 2) else token
    return FORENAME_VARIANTS.get(token, token)


def canonical_surname(token: str) -> str:
    """The variant-table key of a folded surname (Davis -> davies, Pryce -> price)."""
    return SURNAME_VARIANTS.get(token, token)


SHORT_NAME = 5
"""Longest name given one-edit forms: from six letters on, one typo leaves a bigram Dice of
at least 0.7 (a comparison level of its own); in shorter names it may leave none at all
(Mia/Mva 0.5, Mali/Amli 0.4)."""


@lru_cache(maxsize=65536)
def one_edit_forms(token: str) -> tuple[str, ...]:
    """Forms that two folded names share exactly when one typo apart: a letter replaced
    (``m*a``), a letter added or dropped (``mi*a``: the shorter name with a gap, the longer
    with that letter replaced), or two neighbours swapped (``~am`` + rest: the pair sorted).
    Two different names at two edits share none (Max and Mia do not, where dropping one
    letter from each would give both "ma"). Empty for names longer than ``SHORT_NAME``."""
    n = len(token)
    if not token or n > SHORT_NAME:
        return ()
    forms = {token[:i] + "*" + token[i + 1 :] for i in range(n)}
    forms |= {token[:i] + "*" + token[i:] for i in range(n + 1)}
    forms |= {
        token[:i] + "~" + "".join(sorted(token[i : i + 2])) + token[i + 2 :]
        for i in range(n - 1)
        if token[i] != token[i + 1]
    }
    return tuple(sorted(forms))


@lru_cache(maxsize=65536)
def phonetic(token: str) -> str:
    """Metaphone code of a folded token (Llywelyn and Llewellyn both give LWLN)."""
    return str(jellyfish.metaphone(token)) if token else ""


@lru_cache(maxsize=65536)
def phonetic_nysiis(token: str) -> str:
    """NYSIIS code of a folded token, a second phonetic view (Davies and Davis give DAV)."""
    return str(jellyfish.nysiis(token)) if token else ""


def normalise_address(lines: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Address tokens: folded, punctuation removed, common abbreviations expanded."""
    text = lines if isinstance(lines, str) else " ".join(line for line in lines if line)
    tokens = _raw_tokens(text)
    return tuple(_ADDRESS_ABBREVIATIONS.get(t, t) for t in tokens)
