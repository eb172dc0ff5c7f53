"""The timing protocol, driven and clocked from the judge's side.

A worker times calls in batches; the judge measures each batch request with
its own clock and subtracts the protocol's own overhead (calibrated on a no-op
before any candidate code is imported). That trusted per-call time is the
number reported. What the worker claims is kept only to catch a patched timer:
a claim far under the judge's clock is tampering.
"""

from __future__ import annotations

import math
import random
import secrets
import statistics
from dataclasses import dataclass
from typing import Any, Callable

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge.result import Check, TimingStats
from kernelwright.sandbox.process import Worker


@dataclass(frozen=True)
class Calibration:
    """Judge-clock overhead of a timing request: per batch and per call (ms)."""

    per_batch_ms: float
    per_call_ms: float
    noise_ms: float = 0.0  # interquartile range of single no-op batches

    def overhead(self, calls: int) -> float:
        """Overhead of one batch of `calls` calls."""
        return self.per_batch_ms + self.per_call_ms * calls


class TimingError(Exception):
    """A worker failed during timing, or its timing claims are impossible."""

    def __init__(self, check: Check, detail: str) -> None:
        super().__init__(detail)
        self.check = check
        self.detail = detail


def _batch(worker: Worker, target: P.Target, set_ids: list[int], snap: bool = False,
           seed: int | None = None) -> tuple[float, dict[str, Any]]:
    reply, _, wall = worker.request(P.TimeRequest(op=P.Op.TIME, target=target, set_ids=set_ids, snap=snap,
                                                  seed=seed))
    if reply.get("status") != P.Status.OK:
        raise TimingError(Check.CRASH, f"the timed call raised: {reply.get('error', 'unknown error')}")
    host = reply.get("host_ms")
    if not isinstance(host, list) or len(host) != len(set_ids):
        raise TimingError(Check.PROTOCOL, "the worker's timing reply is malformed")
    return wall * 1e3, reply


def calibrate(worker: Worker, set_id: int, perturb: bool = True) -> Calibration:
    """Fit the protocol's overhead from no-op batches of 1 and 16 calls (medians), and its noise.

    The no-op runs on a real input set with per-call perturbation, so the
    overhead includes exactly what every timed call pays outside its clock.
    """
    small: list[float] = []
    large: list[float] = []
    for _ in range(C.CALIBRATION_REPEATS):
        seeds = (secrets.randbits(62), secrets.randbits(62)) if perturb else (None, None)
        small.append(_batch(worker, P.Target.NOOP, [set_id], seed=seeds[0])[0])
        large.append(_batch(worker, P.Target.NOOP, [set_id] * 16, seed=seeds[1])[0])
    per_call = max(0.0, (statistics.median(large) - statistics.median(small)) / 15)
    per_batch = max(0.0, statistics.median(small) - per_call)
    return Calibration(per_batch_ms=per_batch, per_call_ms=per_call,
                       noise_ms=max(_iqr(small), _iqr(large)))


@dataclass
class Measurement:
    """Everything one target's timing produced (ms per call)."""

    stats: TimingStats
    fresh_single_ms: float | None
    repeat_single_ms: float | None
    pairs_faster_when_seen: float | None  # share of sets whose second call ran < MEMO_RATIO x the first
    repeat_ms: float  # per call, main batches, judge's clock
    claimed_ms: float  # median per call that the worker reported (device events on CUDA)
    bound_ms: float  # the least per-call time the judge's clock allows, noise taken off (median batch)
    bound_min_ms: float  # the same for the batch that allowed the least


def measure(worker: Worker, target: P.Target, calib: Calibration, warm_sets: list[int],
            timing_sets: list[int], check: Callable[[int, int, int], None] | None,
            rng: random.Random, batches: int = C.TIMING_BATCHES, perturb: bool = True) -> Measurement:
    """Warm up; for a checked target, time single calls on unseen then on seen sets; then batches.

    The time reported is the worker's own per-call measurement (device events on
    CUDA, its host clock on the CPU), but never less than the bound the judge's
    clock sets: each batch's wall time less the calibrated overhead and three
    times its noise. A patched timer can therefore not shrink a time, and a
    claim far under that bound is itself evidence of tampering.

    Every batch perturbs each call's inputs under a fresh secret seed, so no
    two timed calls see the same data. `check(set_id, seed, index)` fetches the
    snapshot of one call of each batch, drawn at random after the calls return,
    for the judge to verify against a reference of those perturbed inputs.
    """
    for _ in range(C.TIMING_WARMUP_CALLS):
        _batch(worker, target, warm_sets[:1])
    est_wall, _ = _batch(worker, target, warm_sets[:1])
    est = max(0.001, est_wall - calib.overhead(1))
    k = int(min(C.TIMING_MAX_CALLS_PER_BATCH, max(1, math.ceil(C.TIMING_TARGET_BATCH_S * 1e3 / est))))
    if est > 2000:
        batches = max(3, min(batches, int(30_000 / est)))

    claims: list[float] = []
    bounds: list[float] = []

    def run(set_ids: list[int], main: bool = True) -> float:
        seed = secrets.randbits(62) if perturb else None
        wall, reply = _batch(worker, target, set_ids, check is not None, seed)
        if reply.get("not_plain"):
            raise TimingError(Check.OUTPUT_TYPE, "a timed call returned something other than a plain "
                              "torch.Tensor (a lazy or subclassed output)")
        n = len(set_ids)
        trusted = max(0.0, wall - calib.overhead(n)) / n
        if main:
            per_call = reply.get("event_ms") or reply["host_ms"]
            if len(per_call) != n:
                raise TimingError(Check.PROTOCOL, "the worker's timing reply is malformed")
            claims.extend(float(x) for x in per_call)
            bounds.append(max(0.0, wall - calib.overhead(n) - 3 * calib.noise_ms * (1 + n / 16)) / n)
        # Every full batch has one output checked; single-call passes only now and
        # then (each check costs a reference run), chosen after the call returned.
        if check is not None and (main or rng.random() < C.SINGLE_CALL_CHECK_RATE):
            j = reply.get("snapped")
            if not isinstance(j, int) or not 0 <= j < n:
                raise TimingError(Check.PROTOCOL, "the worker did not keep a timed output to check")
            check(set_ids[j], seed if seed is not None else -1, j)
        return trusted

    fresh = repeat = faster = None
    if check is not None:
        # Same cache state for both passes: the sets are read once first, so a
        # first pass is not slower merely because its data is cold.
        # Fresh and repeated calls alternate, so a burst of load on the machine
        # slows both kinds alike instead of faking a difference.
        worker.request(P.TouchRequest(op=P.Op.TOUCH, set_ids=timing_sets))
        fresh_t: list[float] = []
        repeat_t: list[float] = []
        for i, sid in enumerate(timing_sets):
            fresh_t.append(run([sid], main=False))
            if i:
                repeat_t.append(run([timing_sets[i - 1]], main=False))
        repeat_t.append(run([timing_sets[-1]], main=False))
        fresh, repeat = statistics.median(fresh_t), statistics.median(repeat_t)
        # repeat_t[i] is the second call on timing_sets[i], fresh_t[i] its first.
        faster = sum(r < C.MEMO_RATIO * f for f, r in zip(fresh_t, repeat_t)) / len(fresh_t)
    offset = rng.randrange(len(timing_sets))
    per_batch = [run([timing_sets[(offset + b * k + i) % len(timing_sets)] for i in range(k)])
                 for b in range(batches)]
    claimed = statistics.median(claims)
    bound = statistics.median(bounds)
    value = max(claimed, bound)
    stats = TimingStats(median=value, spread=_iqr(claims) / claimed if claimed > 0 else 0.0,
                        count=k * batches, batches=batches, reported_median=claimed, clock_bound=bound)
    return Measurement(stats, fresh, repeat, faster, statistics.median(per_batch), claimed, bound,
                       min(bounds))


def _iqr(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


def timer_disagreement(m: Measurement) -> str | None:
    """A sentence when the worker claims far less time per call than the judge's clock allows.

    The bound already has the calibration noise taken off, so an honest worker's
    claims sit at or above it; the reported time is never below it in any case.
    It uses the least bound of all batches: a patched timer shrinks every batch's
    claims, while a burst of load on the machine inflates only some batches' bounds.
    """
    if m.claimed_ms < C.TIMER_AGREEMENT_RATIO * m.bound_min_ms and \
            m.bound_min_ms - m.claimed_ms > C.TIMER_AGREEMENT_SLACK_MS:
        return (f"the candidate's process claimed {m.claimed_ms:.4f} ms per call, but the judge's clock "
                f"allows no less than {m.bound_min_ms:.4f} ms: its timers were tampered with or work ran "
                "outside the timed region")
    return None


def memoization(m: Measurement, calib: Calibration) -> str | None:
    """A sentence when calls on inputs seen before run much faster than calls on fresh inputs."""
    if m.fresh_single_ms is None or m.repeat_single_ms is None or m.pairs_faster_when_seen is None:
        return None
    # A cache makes nearly every second call fast; a burst of machine load does not.
    gap = m.fresh_single_ms - max(m.repeat_single_ms, m.repeat_ms)
    if m.pairs_faster_when_seen >= C.MEMO_CONSISTENCY and \
            max(m.repeat_single_ms, m.repeat_ms) < C.MEMO_RATIO * m.fresh_single_ms and \
            gap > C.MEMO_MIN_GAP_MS + 3 * calib.noise_ms:
        return (f"calls on inputs it had seen before took {m.repeat_ms:.4f} ms, calls on fresh inputs "
                f"{m.fresh_single_ms:.4f} ms: results are being cached or replayed")
    return None
