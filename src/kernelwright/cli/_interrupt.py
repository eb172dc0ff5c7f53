"""Ctrl-C that always ends a command as interrupted."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def interruptible() -> Iterator[None]:
    """Run the body so that a Ctrl-C during it always surfaces as KeyboardInterrupt.

    Python raises KeyboardInterrupt wherever the main thread happens to be; when that
    is a finalizer (a `__del__`, a weakref callback, a thread-pool's cleanup), the
    interpreter prints "Exception ignored" and carries on, and the command would then
    print a verdict and exit 0 as if the user had never pressed Ctrl-C. The handler
    also records the signal, and a body that returns after one raises it again here.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    hit = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        hit.set()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if hit.is_set():
        raise KeyboardInterrupt
