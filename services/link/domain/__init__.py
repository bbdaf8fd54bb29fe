"""Pure linkage domain: the model as data, encoded records, blocking, scoring, EM, decisions.

Values in, values out; no I/O. It reads only the linkage keys pseudonymise publishes (HMAC
tokens, token sets, Bloom encodings, flags), never a clear identifier.
"""

from __future__ import annotations

from services.link.domain.decide import REVIEW, LinkDecision, Linker, record_log2_odds
from services.link.domain.default_model import default_model
from services.link.domain.estimate import (
    Mapper,
    estimate_link_rate,
    estimate_m,
    estimate_u,
    train,
)
from services.link.domain.index import SpineIndex
from services.link.domain.model import (
    BlockingRule,
    Comparison,
    Level,
    LinkageModel,
    Thresholds,
)
from services.link.domain.part_layout import KeyParts, PartLayouts
from services.link.domain.records import (
    EncodedRecord,
    Interner,
    KeySchema,
    RecurringKeys,
    dice,
    with_history,
)
from services.link.domain.scoring import CompiledModel, probability

__all__ = [
    "REVIEW",
    "BlockingRule",
    "Comparison",
    "CompiledModel",
    "EncodedRecord",
    "Interner",
    "KeyParts",
    "KeySchema",
    "Level",
    "LinkDecision",
    "LinkageModel",
    "Linker",
    "Mapper",
    "PartLayouts",
    "RecurringKeys",
    "SpineIndex",
    "Thresholds",
    "default_model",
    "dice",
    "estimate_link_rate",
    "estimate_m",
    "estimate_u",
    "probability",
    "record_log2_odds",
    "train",
    "with_history",
]
