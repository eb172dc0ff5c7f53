"""Background work stands still while anything is timed.

A search builds slow candidates ahead of judging and captures torch.compile's
code in child processes while the judge is busy. A compiler competing for the
cores during a timed call would make one verdict's times incomparable with the
next one's (and the candidate's with its own eager baseline). Background
processes register here for as long as they run; the judge holds `quiet()`
around its timed calls, which stops every registered process tree (SIGSTOP) and
continues it afterwards. A process registered while the judge is quiet is
stopped at once.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Protocol


class Signalable(Protocol):
    """Anything whose whole process tree can be signalled (a sandbox Worker, a process group)."""

    def signal(self, sig: int) -> None: ...


class ProcessGroup:
    """A child started with start_new_session=True: its group is everything it started."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid

    def signal(self, sig: int) -> None:
        """Signal the whole group (gone already: nothing to do)."""
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


_lock = threading.Lock()
_registered: list[Signalable] = []
_depth = 0


@contextmanager
def background(proc: Signalable) -> Iterator[None]:
    """Register `proc` as background work for the duration of the block."""
    with _lock:
        _registered.append(proc)
        if _depth:
            proc.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        with _lock:
            _registered.remove(proc)
        # Never leave it stopped: whoever owns it next (a kill, a wait) needs it running.
        proc.signal(signal.SIGCONT)


@contextmanager
def quiet() -> Iterator[None]:
    """Stop all background work for the duration (re-entrant; threads share one quiet period)."""
    global _depth
    with _lock:
        _depth += 1
        if _depth == 1:
            for proc in _registered:
                proc.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for proc in _registered:
                    proc.signal(signal.SIGCONT)


def is_quiet() -> bool:
    """Whether some thread is timing right now (for tests and diagnostics)."""
    return _depth > 0
