"""The demo's interrupt handling: Ctrl-C is heard even when the process started with SIGINT
ignored, a signal whose ``KeyboardInterrupt`` was lost still stops the demo, and a signal
while the stack stops is remembered rather than raised."""

from __future__ import annotations

import os
import signal

import pytest

from fjo.demo.run import Interrupts


@pytest.fixture
def sigint_ignored() -> object:
    """SIGINT ignored, as a background job of a non-interactive shell inherits it."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_is_heard_even_if_the_process_started_with_sigint_ignored(
    sigint_ignored: object,
) -> None:
    interrupts = Interrupts()
    interrupts.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.signum == signal.SIGINT
    finally:
        interrupts.restore()
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # what it found, put back


def test_a_signal_whose_interrupt_was_lost_still_stops_the_next_check() -> None:
    interrupts = Interrupts()
    interrupts.check()  # nothing came: nothing happens
    interrupts.install()
    try:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
        # The KeyboardInterrupt above stands for one swallowed by a finaliser: the flag stays.
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    finally:
        interrupts.restore()


def test_while_the_stack_stops_a_signal_is_remembered_not_raised() -> None:
    interrupts = Interrupts()
    interrupts.install()
    try:
        with interrupts.deferred():
            os.kill(os.getpid(), signal.SIGINT)
        assert interrupts.signum == signal.SIGINT
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    finally:
        interrupts.restore()
