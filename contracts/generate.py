"""Writes the committed JSON Schemas and AsyncAPI from the contracts; ``--check`` finds drift.

python -m contracts.generate           # rewrite contracts/schemas/
python -m contracts.generate --check   # exit 1, naming each file, if they are out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contracts.envelope import Envelope
from contracts.events import ALL_EVENTS, Event
from contracts.identifiers import identifier_fields
from contracts.naming import split_versioned_name
from contracts.records import RECORD_MODELS
from contracts.topics import TOPICS, Topic

__all__ = [
    "ASYNCAPI_FILE",
    "CONTRACTS_VERSION",
    "SCHEMA_DIR",
    "asyncapi_document",
    "drift",
    "drift_of",
    "dump_json",
    "generator_main",
    "main",
    "render",
    "write",
    "write_files",
]

SCHEMA_DIR = Path(__file__).parent / "schemas"
ASYNCAPI_FILE = "asyncapi.json"
CONTRACTS_VERSION = "1.0.0"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_KAFKA_BINDING_VERSION = "0.5.0"


def render() -> dict[str, str]:
    """Every generated file, by path relative to ``SCHEMA_DIR``, as text."""
    files: dict[str, str] = {"envelope.json": dump_json(_standalone_schema(Envelope))}
    for event in ALL_EVENTS:
        files[f"events/{event.event_type}.json"] = dump_json(_standalone_schema(event))
    for record_type, record in RECORD_MODELS.items():
        files[f"records/{record_type.value}.json"] = dump_json(_standalone_schema(record))
    files[ASYNCAPI_FILE] = dump_json(asyncapi_document())
    return dict(sorted(files.items()))


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Write ``render()`` into ``directory`` and delete stale files; return what was fixed."""
    return write_files(render(), directory)


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """One line per file in ``directory`` that differs from ``render()``."""
    return drift_of(render(), directory)


def write_files(files: Mapping[str, str], directory: Path) -> list[str]:
    """Make ``directory``'s JSON files exactly ``files`` (relative path -> text), deleting
    stale ones; return what was fixed (any generated, committed set of documents)."""
    fixed = drift_of(files, directory)
    for relative, text in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    for path in directory.rglob("*.json"):
        if path.relative_to(directory).as_posix() not in files:
            path.unlink()
    return fixed


def drift_of(files: Mapping[str, str], directory: Path) -> list[str]:
    """One line per JSON file in ``directory`` that is missing from, differs from or is not
    in ``files``."""
    problems: list[str] = []
    for relative, text in files.items():
        path = directory / relative
        if not path.exists():
            problems.append(f"missing: {relative}")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"out of date: {relative}")
    if directory.exists():
        for path in sorted(directory.rglob("*.json")):
            relative = path.relative_to(directory).as_posix()
            if relative not in files:
                problems.append(f"not generated (stale): {relative}")
    return problems


def asyncapi_document() -> dict[str, Any]:
    """AsyncAPI 3.0 of the bus: a channel per topic, its messages, send/receive per service."""
    models: tuple[type[BaseModel], ...] = (Envelope, *ALL_EVENTS)
    keys, definitions = models_json_schema(
        [(model, "validation") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    model_refs = {model: keys[(model, "validation")]["$ref"] for model in models}
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic in TOPICS:
        for event in topic.events:
            messages[event.event_type] = _message(event, model_refs[Envelope], model_refs[event])
        channels[topic.name] = _channel(topic)
        send_id = f"{topic.producer.value}.send.{topic.name}"
        operations[send_id] = _operation("send", topic)
        for consumer in topic.consumers:
            operations[f"{consumer.value}.receive.{topic.name}"] = _operation(
                "receive", topic, consumer.value
            )
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "fjo event bus",
            "version": CONTRACTS_VERSION,
            "description": "Topics, events and their producers and consumers, generated from "
            "the contracts package (contracts/topics.py). Every message is an Envelope whose "
            "data is the event payload. Channels and messages marked x-identifiable carry "
            "identifiers in clear: only ingest and pseudonymise may touch them.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def _channel(topic: Topic) -> dict[str, Any]:
    topic_configuration: dict[str, Any] = {
        "cleanup.policy": ["compact"] if topic.retention == "compact" else ["delete"]
    }
    if topic.retention != "compact":
        topic_configuration["retention.ms"] = topic.retention
    return {
        "address": topic.name,
        "title": topic.name,
        "description": topic.description,
        "messages": {
            event.event_type: {"$ref": f"#/components/messages/{event.event_type}"}
            for event in topic.events
        },
        "bindings": {
            "kafka": {
                "topic": topic.name,
                "partitions": topic.partitions,
                "topicConfiguration": topic_configuration,
                "bindingVersion": _KAFKA_BINDING_VERSION,
            }
        },
        "x-identifiable": topic.identifiable,
        "x-partition-key": topic.partition_key,
        "x-partition-key-description": topic.partition_key_description,
        "x-producer": topic.producer.value,
        "x-consumers": [consumer.value for consumer in topic.consumers],
        "x-dead-letter-topics": list(topic.dead_letter_topics),
    }


def _operation(action: str, topic: Topic, service: str | None = None) -> dict[str, Any]:
    service = service or topic.producer.value
    return {
        "action": action,
        "title": f"{service} {action}s {topic.name}",
        "channel": {"$ref": f"#/channels/{topic.name}"},
        "messages": [
            {"$ref": f"#/channels/{topic.name}/messages/{event.event_type}"}
            for event in topic.events
        ],
        "tags": [{"name": service}],
        "x-service": service,
    }


def _message(event: type[Event], envelope_ref: str, data_ref: str) -> dict[str, Any]:
    _, version = split_versioned_name(event.event_type)
    return {
        "name": event.event_type,
        "title": event.__name__,
        "summary": _first_line(event),
        "contentType": "application/json",
        "payload": {
            "allOf": [
                {"$ref": envelope_ref},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event.event_type},
                        "schema_version": {"const": version},
                        "data": {"$ref": data_ref},
                    },
                },
            ]
        },
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": _first_line(event.partition_key)},
                "bindingVersion": _KAFKA_BINDING_VERSION,
            }
        },
        # A dead letter has no identifier fields but copies identifiable messages verbatim.
        "x-identifiable": bool(identifier_fields(event))
        or any(topic.identifiable for topic in TOPICS if event in topic.events),
        "x-identifier-fields": sorted(identifier_fields(event)),
    }


def _standalone_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    if issubclass(model, Event):
        schema["x-event-type"] = model.event_type
    schema["x-identifier-fields"] = sorted(identifier_fields(model))
    return {"$schema": _DIALECT, **schema}


def _first_line(thing: object) -> str:
    return (getattr(thing, "__doc__", None) or "").strip().splitlines()[0]


def dump_json(document: Mapping[str, Any]) -> str:
    """A committed document's text: sorted keys, two-space indent, UTF-8, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the artefacts, or with ``--check`` report drift and exit 1."""
    return generator_main(
        argv,
        module="contracts.generate",
        description=__doc__,
        directory=SCHEMA_DIR,
        render=render,
        label="contracts/schemas",
    )


def generator_main(
    argv: Sequence[str] | None,
    *,
    module: str,
    description: str | None,
    directory: Path,
    render: Callable[[], Mapping[str, str]],
    label: str,
) -> int:
    """The command line of a generator of committed documents (``python -m <module>``):
    write ``render()`` into ``directory``, or with ``--check`` name each drifted file and
    exit 1."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("--check", action="store_true", help="report drift, write nothing")
    parser.add_argument("--directory", type=Path, default=directory, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.check:
        problems = drift_of(render(), args.directory)
        for problem in problems:
            print(f"{label} {problem}", file=sys.stderr)
        if problems:
            print(f"run: python -m {module}", file=sys.stderr)
        return 1 if problems else 0
    for fixed in write_files(render(), args.directory):
        print(f"fixed {fixed}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
