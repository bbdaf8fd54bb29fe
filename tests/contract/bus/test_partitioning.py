"""Keys land on the same partition number on every backend: our murmur2 is Kafka's."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_murmur2

from services.runtime.bus.records import murmur2, partition_for_key


def test_murmur2_matches_kafka_python_for_every_length_and_random_bytes() -> None:
    rng = random.Random(20240501)
    for length in range(0, 70):
        for _ in range(50):
            data = rng.randbytes(length)
            assert murmur2(data) == kafka_murmur2(data)


def test_partition_for_key_is_kafkas_positive_hash_modulo_the_partition_count() -> None:
    for key in (b"", b"a", b"cafcass-cymru/child/CH-2019-000123", "é".encode()):
        for partitions in (1, 3, 6, 12):
            expected = (kafka_murmur2(key) & 0x7FFFFFFF) % partitions
            assert partition_for_key(key, partitions) == expected
