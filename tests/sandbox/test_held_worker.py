"""A worker the judge itself stops and continues (a quiet period, another process's timing seen by
the follower thread) is never counted as stopped by someone else, however the judge's signals and
the request loop's look at the worker's state interleave: such a count rejects an honest candidate
as `tamper`."""

from __future__ import annotations

import threading
import time

from kernelwright import protocol as P
from kernelwright.sandbox.process import SandboxConfig, Worker


def test_stops_and_continues_by_the_judge_during_a_request_are_not_external_stops():
    w = Worker(P.Role.REFERENCE, SandboxConfig(threads=1))
    try:
        done = threading.Event()

        def hold_and_release() -> None:
            while not done.is_set():
                w.signal(19)  # SIGSTOP
                time.sleep(0.002)
                w.signal(18)  # SIGCONT
                time.sleep(0.0005)

        t = threading.Thread(target=hold_and_release)
        t.start()
        try:
            # The setup imports torch: a request in flight for a second or more, polled all along.
            reply, _, _ = w.request(P.SetupRequest(op=P.Op.SETUP, device="cpu", threads=1), timeout=120)
        finally:
            done.set()
            t.join()
        w.signal(18)
        assert reply["status"] == P.Status.OK
        assert w.external_stops == 0
    finally:
        w.close()


def test_a_stop_the_judge_did_not_make_is_still_counted():
    """The other side of it: someone else's SIGSTOP is seen, counted and undone."""
    import os
    import signal

    w = Worker(P.Role.REFERENCE, SandboxConfig(threads=1))
    try:
        def stop_from_outside() -> None:
            time.sleep(0.3)
            os.kill(w.proc.pid, signal.SIGSTOP)

        t = threading.Thread(target=stop_from_outside)
        t.start()
        reply, _, _ = w.request(P.SetupRequest(op=P.Op.SETUP, device="cpu", threads=1), timeout=120)
        t.join()
        assert reply["status"] == P.Status.OK
        assert w.external_stops >= 1
    finally:
        w.close()
