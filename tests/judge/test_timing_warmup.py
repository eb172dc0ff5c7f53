"""A target's warm-up calls are made as its timed calls are (perturbed inputs, one output
snapshotted), so its first timed call finds the allocator ready: on the H200 the first
allocation of an output and its snapshot on a GPU full of a large task's sets took 25 ms,
and a single-call pass that caught it read as memoization (KernelBench's level1/45)."""

from __future__ import annotations

from kernelwright import protocol as P
from kernelwright.judge import timing


class _Recorder:
    def __init__(self) -> None:
        self.asked: list[dict] = []

    def request(self, header, blobs=None, timeout=None):
        self.asked.append(dict(header))
        n = len(header.get("set_ids", []))
        return {"status": P.Status.OK, "host_ms": [1.0] * n, "event_ms": [1.0] * n, "snapped": 0}, [], 0.001


def test_warm_up_calls_snapshot_and_perturb_as_timed_calls_do_then_drop_the_snapshot():
    w = _Recorder()
    timing.prepare(w, P.Target.MODEL, timing.Calibration(0.0, 0.0), [3])
    warm = [h for h in w.asked if h["op"] == P.Op.TIME][:-3]  # the last three size the batches
    assert warm and all(h["snap"] and isinstance(h["seed"], int) for h in warm), warm
    first_fetch = next(i for i, h in enumerate(w.asked) if h["op"] == P.Op.FETCH)
    assert w.asked[first_fetch].get("send") is False and first_fetch == len(warm)


def test_without_perturbation_the_warm_up_has_no_seed():
    w = _Recorder()
    timing.prepare(w, P.Target.EAGER, timing.Calibration(0.0, 0.0), [0], perturb=False)
    assert all(h.get("seed") is None for h in w.asked if h["op"] == P.Op.TIME)
