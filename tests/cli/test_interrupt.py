"""Ctrl-C ends a command as interrupted even when Python swallowed the KeyboardInterrupt."""

from __future__ import annotations

import os
import signal

import pytest

from kernelwright.cli._interrupt import interruptible


class _SwallowsInFinalizer:
    def __del__(self) -> None:
        # Where Python raises KeyboardInterrupt inside a finalizer, it prints
        # "Exception ignored" and carries on; this stands in for that.
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass


def test_an_interrupt_swallowed_inside_the_body_is_raised_at_its_end() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt):
        with interruptible():
            _SwallowsInFinalizer()  # collected at once
            done.append(True)
    assert done  # the body ran to its end; the interrupt was not lost


def test_no_interrupt_no_exception_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with interruptible():
        pass
    assert signal.getsignal(signal.SIGINT) is before


def test_an_interrupt_in_the_body_propagates_once() -> None:
    with pytest.raises(KeyboardInterrupt):
        with interruptible():
            os.kill(os.getpid(), signal.SIGINT)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])  # a bytecode boundary for the handler
