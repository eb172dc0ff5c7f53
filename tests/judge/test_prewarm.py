"""On the CPU every timed batch of short calls follows a discarded batch of its own (`interleave`'s
`prewarm`): a batch that followed the other process's ran slower throughout, and eager, alone in
its process, nearly always followed one, so an identical row-sum candidate read 1.12x."""

from __future__ import annotations

import random

import pytest

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import timing
from kernelwright.judge.result import Check


class _Recorder:
    """A worker that answers every request at once; `asked` is what the judge sent, in order."""

    def __init__(self, log: list[tuple[str, dict]], name: str, not_plain: int = 0) -> None:
        self.log, self.name, self.not_plain = log, name, not_plain

    def request(self, header, blobs=None, timeout=None):
        self.log.append((self.name, dict(header)))
        n = len(header.get("set_ids", []))
        return {"status": P.Status.OK, "host_ms": [0.5] * n, "event_ms": [0.5] * n, "snapped": 0,
                "not_plain": self.not_plain}, [], 0.001 * n


def _series(worker: _Recorder, target: P.Target, est_ms: float) -> timing.Series:
    return timing.Series(worker, target, calls=8, est_ms=est_ms, check=None, perturb=True)


def _rounds(prewarm: bool, est_ms: float) -> list[tuple[str, dict]]:
    log: list[tuple[str, dict]] = []
    ref, cand = _Recorder(log, "ref"), _Recorder(log, "cand")
    sides = [_series(cand, P.Target.MODEL, est_ms), _series(ref, P.Target.EAGER, est_ms),
             _series(cand, P.Target.CONTROL, est_ms)]
    timing.interleave(sides, timing.Calibration(0.0, 0.0), [1, 2, 3], random.Random(0), lambda w: None,
                      rounds=4, prewarm=prewarm)
    return [(who, h) for who, h in log if h["op"] == P.Op.TIME]


def test_each_timed_batch_follows_a_discarded_one_of_its_own_side():
    times = _rounds(True, est_ms=0.4)
    assert len(times) == 2 * 3 * 4
    for (w1, warm), (w2, timed) in zip(times[::2], times[1::2]):
        # Same process, same target, same sets, the same request (the candidate's process cannot
        # tell which batch counts), under its own seed.
        assert w1 == w2 and warm["target"] == timed["target"] and warm["set_ids"] == timed["set_ids"]
        assert warm["snap"] is True and timed["snap"] is True and warm.keys() == timed.keys()
        assert isinstance(warm["seed"], int) and warm["seed"] != timed["seed"]


def test_the_warm_up_output_is_dropped_where_it_was_taken_before_the_timed_batch():
    log: list[tuple[str, dict]] = []
    s = _series(_Recorder(log, "cand"), P.Target.MODEL, 0.4)
    timing.interleave([s], timing.Calibration(0.0, 0.0), [1], random.Random(0), lambda w: None,
                      rounds=1, prewarm=True)
    assert [h["op"] for _, h in log] == [P.Op.TIME, P.Op.FETCH, P.Op.TIME, P.Op.FETCH]
    assert log[1][1]["send"] is False


def test_long_calls_and_the_gpu_are_not_warmed():
    assert len(_rounds(True, est_ms=C.CPU_PREWARM_MAX_CALL_MS * 2)) == 3 * 4
    assert len(_rounds(False, est_ms=0.4)) == 3 * 4


def test_all_sides_are_warmed_or_none():
    # One side with long calls: a short side warmed against a cold one would gain what the
    # warm-up takes away, so no side is warmed.
    log: list[tuple[str, dict]] = []
    ref, cand = _Recorder(log, "ref"), _Recorder(log, "cand")
    sides = [_series(cand, P.Target.MODEL, 0.4), _series(ref, P.Target.EAGER, C.CPU_PREWARM_MAX_CALL_MS * 2)]
    timing.interleave(sides, timing.Calibration(0.0, 0.0), [1, 2], random.Random(0), lambda w: None,
                      rounds=3, prewarm=True)
    assert len([h for _, h in log if h["op"] == P.Op.TIME]) == 2 * 3


def test_a_lazy_output_in_the_warm_up_is_rejected_as_in_a_timed_batch():
    log: list[tuple[str, dict]] = []
    s = _series(_Recorder(log, "cand", not_plain=1), P.Target.MODEL, 0.4)
    with pytest.raises(timing.TimingError) as exc:
        timing.interleave([s], timing.Calibration(0.0, 0.0), [1], random.Random(0), lambda w: None,
                          rounds=1, prewarm=True)
    assert exc.value.check == Check.OUTPUT_TYPE
    assert len([h for _, h in log if h["op"] == P.Op.TIME]) == 1  # rejected at the warm-up
