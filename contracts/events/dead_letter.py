"""The dead-letter event: a message a consumer gave up on, kept with why; nothing is dropped."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import ConfigDict, Field, StringConstraints

from contracts.events.common import Base64, Event
from contracts.naming import VERSIONED_NAME_PATTERN

__all__ = ["MessageDeadLettered"]

TopicName = Annotated[str, StringConstraints(pattern=VERSIONED_NAME_PATTERN)]


class MessageDeadLettered(Event):
    """A message its consumer could not process after its retries.

    The original key and value travel with it for replay: a dead letter is exactly as
    identifiable as the topic it came from, which the registry marks on each dead-letter topic.
    ``error_message`` must be built from ``safe_errors`` or an exception's type, never a value.
    """

    event_type: ClassVar[str] = "bus.message-dead-lettered.v1"
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "original_topic": "pseudonymise.records.v1",
                    "original_partition": 3,
                    "original_offset": 1042,
                    "original_key": "Zm9vYmFyYmF6cXV4",
                    "original_value": "eyJ0eXBlIjoiLi4uIn0=",
                    "consumer_group": "access",
                    "error_type": "ValidationError",
                    "error_message": "data.week_of_birth: week_of_birth must be a Monday",
                    "attempts": 5,
                }
            ]
        }
    )

    original_topic: TopicName = Field(
        description="Topic the message was read from.", examples=["pseudonymise.records.v1"]
    )
    original_partition: int = Field(ge=0, description="Its partition.", examples=[3])
    original_offset: int = Field(ge=0, description="Its offset in that partition.", examples=[1042])
    original_key: Base64 | None = Field(
        default=None, description="The message key, base64.", examples=["Zm9vYmFyYmF6cXV4"]
    )
    original_value: Base64 | None = Field(
        default=None,
        description="The message value, base64, for replay.",
        examples=["eyJ0eXBlIjoiLi4uIn0="],
    )
    consumer_group: str = Field(
        min_length=1,
        max_length=200,
        description="Consumer group that gave up.",
        examples=["access"],
    )
    error_type: str = Field(
        min_length=1,
        max_length=200,
        description="Exception type (qualified name).",
        examples=["ValidationError"],
    )
    error_message: str = Field(
        max_length=4000,
        description="What went wrong, without any identifier.",
        examples=["data.week_of_birth: week_of_birth must be a Monday"],
    )
    attempts: int = Field(ge=1, description="How many times processing was tried.", examples=[5])

    def partition_key(self) -> str:
        """``<original topic>/<original partition>``: one partition's dead letters stay in order."""
        return f"{self.original_topic}/{self.original_partition}"
