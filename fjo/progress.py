"""Progress bars of the long commands (``fjo link batch|train``, ``fjo audit verify``): one
rich bar per step on stderr, so that stdout keeps the command's result (JSON, a summary)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["StepProgress", "progress_bars"]

StepProgress = Callable[[str, int, int], None]
"""``show(step, done, total)``: a step's bar appears on its first call; ``total`` 0 is unknown."""


@contextmanager
def progress_bars(enabled: bool) -> Iterator[StepProgress]:
    """A rich progress bar per step on stderr; with ``enabled`` false, nothing is shown."""
    if not enabled:
        yield lambda step, done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description:<16}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as bars:
        tasks: dict[str, Any] = {}

        def show(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bars.add_task(step, total=total or None)
            bars.update(tasks[step], completed=done, total=total or None)

        yield show
