"""Pinning both workers of a CUDA judgement to one core for the timing (sandbox/limits.timing_cpus).

The pinning itself is plain Linux affinity and runs on the CPU machine; that it evens out the
host's launch rate between the two processes is measured on the H200 (benchmarks/process_spread.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from kernelwright.protocol import Op, Role, SetupRequest, Status
from kernelwright.sandbox import limits
from kernelwright.sandbox.process import SandboxConfig, Worker

ALLOWED = sorted(os.sched_getaffinity(0))
needs_two = pytest.mark.skipif(len(ALLOWED) < 2, reason="needs two cores to show the pinning")


@needs_two
def test_timing_cpu_is_the_last_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(limits.TIMING_CPU_ENV, raising=False)
    assert limits.timing_cpus() == [ALLOWED[-1]]
    monkeypatch.setenv(limits.TIMING_CPU_ENV, str(ALLOWED[0]))
    assert limits.timing_cpus() == [ALLOWED[0]]
    monkeypatch.setenv(limits.TIMING_CPU_ENV, "off")
    assert limits.timing_cpus() is None
    monkeypatch.setenv(limits.TIMING_CPU_ENV, "100000")  # not a core it may use: the default
    assert limits.timing_cpus() == [ALLOWED[-1]]


CHILD = textwrap.dedent("""
    import os, sys, threading, time
    stop = threading.Event()
    for _ in range(3):
        threading.Thread(target=stop.wait, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.readline()          # pinned by now
    seen = []
    t = threading.Thread(target=lambda: seen.append(sorted(os.sched_getaffinity(0))))
    t.start(); t.join()
    print(seen[0], flush=True)
""")


@needs_two
def test_pin_tree_pins_every_thread_and_the_threads_started_later() -> None:
    p = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        assert p.stdout is not None and p.stdin is not None
        assert p.stdout.readline().strip() == "ready"
        cpu = ALLOWED[-1]
        assert limits.pin_tree(p.pid, [cpu]) >= 4  # the main thread and its three
        for tid in os.listdir(f"/proc/{p.pid}/task"):
            assert os.sched_getaffinity(int(tid)) == {cpu}
        p.stdin.write("go\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == str([cpu])
    finally:
        p.kill()
        p.wait()


@needs_two
def test_a_pinned_worker_that_widens_its_mask_is_a_violation() -> None:
    w = Worker(Role.CANDIDATE, SandboxConfig())
    try:
        reply, _, _ = w.request(SetupRequest(op=Op.SETUP, device="cpu", threads=None), timeout=120)
        assert reply["status"] == Status.OK
        assert w.check_affinity() is None  # unpinned, no budget: nothing to break
        w.pin([ALLOWED[-1]])
        assert w.check_affinity() is None
        # The candidate's code runs in the worker: it takes every core back (no privilege needed).
        w.request({"op": Op.LOAD, "source": f"import os\nos.sched_setaffinity(0, {ALLOWED})\n",
                   "filename": "c.py", "init_inputs": {"k": "list", "items": []},
                   "state": {"k": "dict", "items": {}}, "weight_seed": 1}, timeout=120)
        violation = w.check_affinity()
        assert violation is not None and f"allowed on {len(ALLOWED)} CPUs, over its budget of 1" in violation
    finally:
        w.close()
