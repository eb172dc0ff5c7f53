"""A worker the system's OOM killer stops is a memory failure of the machine, never a crash
blamed on the candidate; the judge turns it into a task error ("does not fit this machine")."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from kernelwright import protocol as P
from kernelwright.judge.result import Check
from kernelwright.sandbox import limits
from kernelwright.sandbox.process import SandboxConfig, Worker, WorkerFailure


def _killed_while_waiting(monkeypatch: pytest.MonkeyPatch, oom_counter_moves: bool) -> WorkerFailure:
    counter = [100]
    monkeypatch.setattr(limits, "oom_kills", lambda: counter[0])
    w = Worker(P.Role.REFERENCE, SandboxConfig(threads=1))
    try:
        w.request(P.SetupRequest(op=P.Op.SETUP, device="cpu", threads=1), None, 120)

        def kill() -> None:
            # What the kernel's OOM killer does, and the count it keeps in /proc/vmstat.
            counter[0] += oom_counter_moves
            os.kill(w.proc.pid, signal.SIGKILL)

        threading.Timer(0.5, kill).start()
        with pytest.raises(WorkerFailure) as info:
            # A task whose import takes far longer than the kill.
            w.request(P.LoadReferenceRequest(op=P.Op.LOAD, source="import time\ntime.sleep(60)\n",
                                             path="/nonexistent/slow_task.py", weight_seed=1, eval_mode=False),
                      None, 120)
        return info.value
    finally:
        w.close()


def test_the_system_oom_killer_is_a_memory_failure_of_the_machine(monkeypatch):
    f = _killed_while_waiting(monkeypatch, True)
    assert f.kind == Check.MEMORY and f.machine and "the machine ran out of memory" in f.detail


def test_another_sigkill_stays_a_crash(monkeypatch):
    f = _killed_while_waiting(monkeypatch, False)
    assert f.kind == Check.CRASH and not f.machine and "SIGKILL" in f.detail
