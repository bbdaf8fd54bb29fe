"""Helpers both backends share: key/header normalisation and Kafka-compatible partitioning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kafka.partitioner.default import murmur2

__all__ = ["normalise_headers", "normalise_key", "partition_for_key"]


def normalise_key(key: bytes | str | None) -> bytes | None:
    """Keys travel as bytes; a ``str`` key is its UTF-8 encoding."""
    if key is None or type(key) is bytes:
        return key
    if isinstance(key, str):
        return key.encode("utf-8")
    return bytes(key)


def normalise_headers(
    headers: Mapping[str, bytes | str] | Iterable[tuple[str, bytes]] | None,
) -> list[tuple[str, bytes]]:
    """Headers travel as a list of ``(str, bytes)``; ``str`` values are UTF-8 encoded."""
    if not headers:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, bytes]] = []
    for name, value in items:
        if not isinstance(name, str):
            raise TypeError(f"header names must be str, got {type(name).__name__}")
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif not isinstance(value, bytes):
            value = bytes(value)
        out.append((name, value))
    return out


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key``, so that a key lands on
    the same partition number whichever backend carries it."""
    return (int(murmur2(key)) & 0x7FFFFFFF) % partitions
