"""Flat, frozen result records of a verdict, all JSON-serializable."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from kernelwright.protocol import Check  # noqa: F401 - re-exported: the judge's results name checks by it


@dataclass(frozen=True)
class Reason:
    """One reason for rejection."""

    check: Check
    detail: str


@dataclass(frozen=True)
class TrialResult:
    """Correctness of one trial: one input set, one distribution."""

    trial: int
    distribution: str
    shape_variant: str
    max_abs_error: float
    max_rel_error: float
    scale: float
    passed: bool
    # On CUDA: GPU work still queued once the caller's stream had finished (ms), as the
    # candidate's worker measured it. Diagnostic only: past RACE_PENDING_MS it rejects
    # (`race`); under it, it can never help a candidate. None on the CPU.
    pending_ms: float | None = None
    # On CUDA: how late a device-wide probe behind the call ran (ms; worker/hold.py): another
    # stream's work still holding thread slots. Past the task's own by RACE_PROBE_MS it rejects
    # (`race`). None on the CPU or without a hold that takes every slot.
    probe_ms: float | None = None


@dataclass(frozen=True)
class TimingStats:
    """Per-call milliseconds on the judge's own clock."""

    median: float
    spread: float  # (p75 - p25) / median over batches
    count: int  # timed calls
    batches: int
    reported_median: float | None = None  # what the timed process itself claimed
    clock_bound: float | None = None  # the least time the judge's own clock allows


@dataclass(frozen=True)
class Timing:
    """Candidate and baseline timings from one run of the same protocol."""

    candidate_ms: TimingStats | None
    eager_ms: TimingStats | None
    compile_ms: TimingStats | None
    speedup_vs_eager: float | None
    speedup_vs_compile: float | None
    floor_ms: float | None = None
    # 95% intervals (low, high) of the speedups, from rounds in which the sides' batches ran
    # back to back, widened by BETWEEN_PROCESS_SPREAD (what one pair of processes cannot show);
    # None when too few rounds ran for one.
    speedup_vs_eager_interval: tuple[float, float] | None = None
    speedup_vs_compile_interval: tuple[float, float] | None = None
    rounds: int = 0  # interleaved rounds of batches behind these figures
    # CUDA: how long the device was busy (the union of all kernels' intervals, every stream) in one
    # call the judge profiled; a charged time under PROFILE_BOUND_SAFETY times this is rejected.
    profile_busy_ms: float | None = None
    # The reference's FLOPs (torch's counter, default shapes) over this device's measured matmul
    # rate: the least time the reference's arithmetic takes. Not a bound on a kernel (one may do
    # less arithmetic); the report's roofline sets each kernel's time against it.
    flop_floor_ms: float | None = None
    # CUDA: the host-bound estimate of the further widening of both intervals (each way) because a
    # side's calls were host-bound, its device idle while the host launched
    # (constants.HOST_BOUND_SPREAD); 1.0 when not. It widens only where no process control was
    # measured (timing.pair_spread): a measured control stands for the same spread.
    host_factor: float = 1.0
    # The further widening (each way) from the process control: the task's own Model timed in the
    # candidate's process against eager in the reference's, max(high, 1 / low) of that speedup's
    # 95% interval (constants.PROCESS_FACTOR_NOTED); None when no control ran.
    process_factor: float | None = None
    # The task's own Model timed in the candidate's process (the process control); the speedup
    # vs eager takes, round by round, the faster of it and eager in the reference's worker.
    control_ms: TimingStats | None = None


@dataclass(frozen=True)
class JudgeResult:
    """A whole verdict, as printed by `kernelwright verify --json`."""

    verdict: str  # "accepted" | "rejected"
    reasons: list[Reason]
    correctness: list[TrialResult]
    timing: Timing | None
    findings: list[str]
    environment: dict[str, Any]
    phases_s: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        """True when the candidate is correct and honest."""
        return self.verdict == "accepted"

    @property
    def checks(self) -> list[Check]:
        """The names of the checks that rejected the candidate."""
        return [r.check for r in self.reasons]

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for JSON output."""
        return _plain(dataclasses.asdict(self))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def is_tie(interval: Any) -> bool:
    """True when a speedup's 95% interval holds 1.00x: the judge cannot tell the two sides apart."""
    if not interval:
        return False
    low, high = interval
    return low is not None and high is not None and low <= 1.0 <= high
