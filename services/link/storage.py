"""Link's own tables: the encoded spine with its history, the spine log every replica follows,
incoming keys, results, partition claims, the clerical-review queue, the audit trail of
decisions, and stored model versions.

Everything here is pseudonymous: record tokens, HMAC tokens, Bloom encodings, ALFs.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from services.runtime.delivery import processed_messages_table

__all__ = [
    "audit",
    "incoming_keys",
    "log_head",
    "metadata",
    "models",
    "partitions",
    "results",
    "review_queue",
    "spine_history",
    "spine_log",
    "spine_records",
]

metadata = MetaData()
processed_messages = processed_messages_table(metadata)

spine_records = Table(
    "link_spine_records",
    metadata,
    Column("record_token", String(128), primary_key=True),
    Column("record_version", Integer, nullable=False),
    Column("key_version", Integer, nullable=False),
    Column("linkage", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The spine-log position of this (current) version.
    Column("position", BigInteger, nullable=True),
)

spine_log = Table(
    "link_spine_log",
    metadata,
    # Dense, in commit order (positions are handed out under the head row's lock): a
    # replica that has applied position p has applied everything before it.
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(16), nullable=False),  # person, model, exclude, erased
    Column("record_token", String(128), nullable=True),
    Column("record_version", Integer, nullable=True),
    Column("payload", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    # An erasure rewrites a person's entries (kind "erased", no encodings left).
    Index("ix_link_spine_log_record_token", "record_token"),
)

log_head = Table(
    "link_log_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False),
)

partitions = Table(
    "link_partitions",
    metadata,
    # Which replica may write a partition's records (epoch bumped by each new owner; every
    # writer checks it) and how far its records are known to be decided.
    Column("topic", String(249), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("owner", String(64), nullable=False),
    Column("spine_position", BigInteger, nullable=False),
    Column("model_position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

spine_history = Table(
    "link_spine_history",
    metadata,
    Column("record_token", String(128), primary_key=True),
    Column("record_version", Integer, primary_key=True),
    Column("linkage", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

incoming_keys = Table(
    "link_incoming_keys",
    metadata,
    Column("record_token", String(128), primary_key=True),
    Column("record_type", String(32), nullable=False),
    Column("record_version", Integer, nullable=False),
    # The key version the keys are encoded under: a rotation's re-encode replaces them.
    Column("key_version", Integer, nullable=False, server_default="1"),
    Column("linkage", Text, nullable=False),
    # The input partition the record's keys arrive on (its owner is that partition's).
    Column("partition", Integer, nullable=True),
    Index("ix_link_incoming_keys_partition", "partition"),
)

results = Table(
    "link_results",
    metadata,
    Column("record_token", String(128), primary_key=True),
    Column("record_type", String(32), nullable=False),
    Column("spine_token", String(128), nullable=True),
    Column("candidate_token", String(128), nullable=True),
    Column("alf", String(128), nullable=True),
    Column("status", Integer, nullable=False),
    Column("detail_status", Integer, nullable=False),
    Column("match_probability", Float, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # The spine-log position the last decision was taken at (the spine and model then).
    Column("decided_at", BigInteger, nullable=False, server_default="0"),
    Index("ix_link_results_spine_token", "spine_token"),
    Index("ix_link_results_candidate_token", "candidate_token"),
)

review_queue = Table(
    "link_review_queue",
    metadata,
    Column("record_token", String(128), primary_key=True),
    Column("candidate_token", String(128), nullable=False),
    Column("match_probability", Float, nullable=False),
    Column("state", String(16), nullable=False),  # open, accepted, rejected
    Column("model_version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(128), nullable=True),
    # JSON of CompiledModel.explain for the queued pair (levels and weights, no identifier).
    Column("evidence", Text, nullable=True),
)

audit = Table(
    "link_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(32), nullable=False),
    Column("record_token", String(128), nullable=False),
    Column("detail", Text, nullable=False),
)

models = Table(
    "link_models",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("model", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("position", BigInteger, nullable=True),
)
