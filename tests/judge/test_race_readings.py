"""The timed calls' race check reads the median of every timed call's pending time, never one
call's alone: a single slow device sync on an honest call (0.94 ms once on the H200, in a
single-call pass) is a hiccup, while a stream never joined leaves work pending on every call."""

from __future__ import annotations

import random

import pytest

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import timing
from kernelwright.judge.result import Check


class _Worker:
    """Answers TIME requests with the pending readings it is given, one per call, in order."""

    def __init__(self, pending: list[float]) -> None:
        self.pending = list(pending)

    def request(self, header, blobs=None, timeout=None):
        n = len(header.get("set_ids", []))
        if header["op"] != P.Op.TIME:
            return {"status": P.Status.OK}, [], 0.001
        got, self.pending = self.pending[:n], self.pending[n:]
        return ({"status": P.Status.OK, "host_ms": [1.0] * n, "event_ms": [1.0] * n, "pending_ms": got,
                 "snapped": 0}, [], 0.001 * n)


def _series(pending: list[float]) -> timing.Series:
    return timing.Series(_Worker(pending), P.Target.MODEL, 1, 1.0, lambda *a: None, True)


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
