"""Small pieces of the judge's orchestration: the trusted record of an input set, messages, pauses."""

from __future__ import annotations

import math
import os
import secrets
import shutil
import statistics
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator


from kernelwright import constants as C
from kernelwright.judge.result import Check
from kernelwright.sandbox.process import Worker, WorkerFailure


ENV_TRACE = "KERNELWRIGHT_TRACE"  # set to 1: each phase, step and batch is printed to stderr as it ends


def tracing() -> bool:
    """Whether `trace` prints (for a trace line that costs something to make)."""
    return os.environ.get(ENV_TRACE) == "1"


def trace(message: str) -> None:
    """One line to stderr, with the wall clock, when KERNELWRIGHT_TRACE=1 (a verdict cut short
    by a time limit still shows how far it got and where the time went)."""
    if tracing():
        print(f"[kw {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class InputSet:
    """One input set as the judge knows it. Its references (native and float64 outputs) stay in
    the reference worker, which compares the candidate's output with them (Op.COMPARE): the
    judge holds their shapes and what it asks the comparison to allow."""

    set_id: int
    distribution: str
    variant: str
    nbytes: int
    outputs: Any = None  # the native outputs as `meta` tensors (structure, shapes, dtypes); None: not made
    held: bool = False  # the reference worker holds this set's references now
    has_ref64: bool = False
    slack: list[float] = field(default_factory=list)
    zeros_pass: bool | None = None  # an all-zero output would pass on this set (asked for default shapes)
    # A trial set too large to hold with every other: its references are made (from the same
    # secret seed) just before it is used and dropped after (`deferred`).
    deferred: bool = False
    seed: int = 0
    shape_variant: dict[str, Any] | None = None
    # What the reference made, for the candidate to make the same set itself (phases/state.py,
    # `_candidate_makes`): the fingerprint of its inputs, and whether they were made on the GPU.
    fingerprint: list[Any] | None = None
    on_device: bool = False



def fresh_seed() -> int:
    """A seed from the OS; nothing about earlier seeds predicts it."""
    return secrets.randbits(62)


@dataclass(frozen=True)
class RaceBars:
    """The race check's two bars (ms), each above what the task's own calls read on this device
    once their stream was done (the reference's make-set runs, median).

    `host_ms`: GPU work the host still saw queued (a timed device-wide sync): RACE_PENDING_MS
    above the task's. Honest KernelBench convolutions read 0.05-0.07 ms on the H200 in their own
    worker, so a fixed bar would not do. `probe_ms`: how late the device-wide probe behind the
    call ran (worker/hold.py): RACE_PROBE_MS above the task's; None where the task's calls gave
    no probe reading (no hold that takes every thread slot), and then only the host's bar holds.
    """

    host_ms: float
    probe_ms: float | None

    @staticmethod
    def of(task_pending: list[float], task_probe: list[float]) -> "RaceBars":
        """The bars for a task whose own calls read `task_pending` and `task_probe`."""
        host = C.RACE_PENDING_MS + (max(0.0, statistics.median(task_pending)) if task_pending else 0.0)
        probe = C.RACE_PROBE_MS + max(0.0, statistics.median(task_probe)) if task_probe else None
        return RaceBars(host, probe)

    def over(self, pending: float | None, probe: float | None) -> str | None:
        """What a reading past its bar says, or None when neither is."""
        if pending is not None and pending > self.host_ms:
            return f"GPU work was still running {pending:.3f} ms after the caller's stream finished"
        if probe is not None and self.probe_ms is not None and probe > self.probe_ms:
            return (f"another stream's GPU work held the device {probe:.3f} ms past the caller's stream "
                    f"(a device-wide probe behind the call ran that late; the bar is {self.probe_ms:.3f} ms)")
        return None


def variant_name(variant: dict[str, Any] | None) -> str:
    """A readable name for a shape variant: 'default' or 'batch_size=3,dim=17'."""
    if not variant:
        return "default"
    return ",".join(f"{k}={v}" for k, v in variant.items())


def ratio(a: float, b: float) -> float | None:
    """a / b, or None when b is not positive."""
    return a / b if b > 0 else None


def finite_or_none(value: Any) -> float | None:
    """A number a worker reported, as a float when it is a finite one; anything else is None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def tail(text: str, n: int) -> str:
    """The last n characters of a message, marked when cut."""
    text = str(text).strip()
    return text if len(text) <= n else "..." + text[-n:]


def import_sentence(error: str, check: Check) -> str:
    """A reason for a candidate that failed to import or compile, with the compiler's error lines."""
    if check == Check.COMPILE:
        lines = [ln for ln in error.splitlines() if "error" in ln.lower()]
        shown = "\n".join(lines[:12]) if lines else error
        return "the candidate's extension did not compile: " + tail(shown, C.COMPILER_OUTPUT_CHARS)
    return "importing the candidate failed: " + tail(error, 1200)


def failure_sentence(f: WorkerFailure) -> str:
    """A reason for a candidate worker that crashed, hung, ran out of memory or broke the protocol."""
    what = {Check.CRASH: "the candidate's process crashed", Check.TIMEOUT: "the candidate hung",
            Check.MEMORY: "the candidate used too much memory", Check.PROTOCOL: "the candidate broke the protocol"}
    return f"{what.get(f.kind, f.kind)}: {f.detail}"


def cpu_count() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0))


def compiler_version(cuda: bool) -> str:
    """The C++ or CUDA compiler's version line, for the environment record."""
    tool = "nvcc" if cuda else "c++"
    exe = shutil.which(tool)
    if not exe:
        return f"{tool}: not found"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return exe
    lines = out.splitlines()
    return (lines[-1] if cuda else lines[0]) if lines else exe


@contextmanager
def paused(w: Worker, other: Worker | None = None) -> Iterator[None]:
    """SIGSTOP a worker's whole tree for the duration (SIGCONT after, whatever happens).

    `other`, the side about to be measured, is continued first, in case the
    stopped side had stopped it.
    """
    w.signal(signal.SIGSTOP)
    if other is not None:
        other.signal(signal.SIGCONT)
    try:
        yield
    finally:
        w.signal(signal.SIGCONT)
