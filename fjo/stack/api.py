"""What every stack runner offers its users (the demo, the benchmarks, the end-to-end tests):
start it, find its APIs and databases, read its bus between two moments, stop it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fjo.stack.processes import StackState
    from services.runtime.bus.api import Message

__all__ = ["Offsets", "Stack"]

Offsets = dict[tuple[str, int], int]
"""(topic, partition) -> offset: a snapshot of where every partition stands."""


class Stack(Protocol):
    """A running platform (``fjo.stack.embedded.EmbeddedStack``, ``fjo.stack.kafka.KafkaStack``)."""

    name: str
    state_dir: Path
    state: StackState

    @property
    def key_dir(self) -> Path: ...

    @property
    def issuer_key(self) -> Path: ...

    @property
    def groups(self) -> dict[str, str]: ...

    def up(self) -> Any: ...

    def down(self) -> Any: ...

    def exited(self) -> list[str]: ...

    def url(self, name: str) -> str: ...

    def pids(self) -> dict[str, int]: ...

    def database_url(self, service: str) -> str: ...

    def end_offsets(self) -> Offsets: ...

    def read(
        self, topic: str, start: Offsets | None = None, end: Offsets | None = None
    ) -> list[Message]: ...
