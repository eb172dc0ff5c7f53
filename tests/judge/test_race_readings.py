"""The timed calls' race check reads the median of every timed call's pending time, never one
call's alone: a single slow device sync on an honest call (0.94 ms once on the H200, in a
single-call pass) is a hiccup, while a stream never joined leaves work pending on every call."""

from __future__ import annotations

import random

import pytest

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright.judge import timing
from kernelwright.judge.result import Check


class _Worker:
    """Answers TIME requests with the pending readings it is given, one per call, in order."""

    def __init__(self, pending: list[float], probe: list[float] | None = None) -> None:
        self.pending = list(pending)
        self.probe = list(probe) if probe is not None else None

    def request(self, header, blobs=None, timeout=None):
        n = len(header.get("set_ids", []))
        if header["op"] != P.Op.TIME:
            return {"status": P.Status.OK}, [], 0.001
        got, self.pending = self.pending[:n], self.pending[n:]
        reply = {"status": P.Status.OK, "host_ms": [1.0] * n, "event_ms": [1.0] * n, "pending_ms": got, "snapped": 0}
        if self.probe is not None:
            reply["probe_ms"], self.probe = self.probe[:n], self.probe[n:]
        return reply, [], 0.001 * n


def _series(pending: list[float], probe: list[float] | None = None,
            bars: S.RaceBars | None = None) -> timing.Series:
    s = timing.Series(_Worker(pending, probe), P.Target.MODEL, 1, 1.0, lambda *a: None, True)
    if bars is not None:
        s.race_bars = bars
    return s


def _calib() -> timing.Calibration:
    return timing.Calibration(0.0, 0.0)


def test_one_slow_reading_among_the_first_calls_is_not_a_race():
    s = _series([0.94, 0.01, 0.01, 0.02, 0.01])
    for _ in range(5):
        timing._run(s, _calib(), [0], random.Random(0), main=False)
    assert len(s.pending) == 5


def test_work_pending_on_every_call_is_a_race_by_the_third():
    s = _series([0.4] * 8)
    rng = random.Random(0)
    timing._run(s, _calib(), [0], rng, main=False)
    timing._run(s, _calib(), [0], rng, main=False)  # two readings: not yet decided
    with pytest.raises(timing.TimingError) as err:
        timing._run(s, _calib(), [0], rng, main=False)
    assert err.value.check == Check.RACE and f"median over {C.RACE_MIN_TIMED_CALLS} timed calls" in err.value.detail


def test_a_batch_whose_calls_are_mostly_pending_is_a_race_at_once():
    s = _series([0.4, 0.4, 0.0, 0.4])
    with pytest.raises(timing.TimingError):
        timing._run(s, _calib(), [0, 0, 0, 0], random.Random(0), main=True)


# -- the device probe's reading (worker/hold.py) -------------------------------------------


def test_bars_sit_above_the_tasks_own_readings():
    bars = S.RaceBars.of([0.04, 0.06, 0.05], [0.001, 0.003, 0.002])
    assert bars.host_ms == pytest.approx(C.RACE_PENDING_MS + 0.05)
    assert bars.probe_ms == pytest.approx(C.RACE_PROBE_MS + 0.002)


def test_no_probe_bar_without_the_tasks_own_probe_readings():
    # The bar comes from the reference's worker: a candidate's worker that reports a probe the
    # reference never measured is not judged on it, and one that reports none escapes nothing
    # the host's reading would catch.
    bars = S.RaceBars.of([0.04], [])
    assert bars.probe_ms is None
    assert bars.over(0.01, 5.0) is None
    assert bars.over(0.2, None) is not None


def test_a_short_unjoined_stream_the_host_cannot_see_is_seen_by_the_probe():
    # The H200's reading of a ~50 us unjoined side kernel: 0.046 ms on the host's clock, under a
    # 0.09 ms bar; the probe behind it waits for the kernel's thread slots.
    bars = S.RaceBars.of([0.04], [0.002])
    assert bars.over(0.046, 0.002) is None
    reason = bars.over(0.046, 0.045)
    assert reason is not None and "probe" in reason


def test_timed_calls_whose_probe_runs_late_are_a_race():
    s = _series([0.03] * 6, probe=[0.045] * 6, bars=S.RaceBars.of([0.04], [0.002]))
    rng = random.Random(0)
    timing._run(s, _calib(), [0], rng, main=False)
    timing._run(s, _calib(), [0], rng, main=False)
    with pytest.raises(timing.TimingError) as err:
        timing._run(s, _calib(), [0], rng, main=False)
    assert err.value.check == Check.RACE and "probe" in err.value.detail


def test_one_late_probe_among_honest_ones_is_not_a_race():
    s = _series([0.03] * 5, probe=[0.4, 0.001, 0.002, 0.001, 0.001], bars=S.RaceBars.of([0.04], [0.002]))
    for _ in range(5):
        timing._run(s, _calib(), [0], random.Random(0), main=False)
    assert len(s.probe) == 5
