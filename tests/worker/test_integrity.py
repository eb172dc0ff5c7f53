"""The worker's integrity snapshot: what it keeps of the judge objects it watches."""

from __future__ import annotations

from kernelwright.worker.harness import Integrity


class _Held:
    def __init__(self) -> None:
        self.length_ns = 100_000.0
        self.graph = object()
        self.launch = print


def test_watch_keeps_callables_only_by_default():
    obj = _Held()
    integrity = Integrity()
    integrity.watch(obj)
    obj.length_ns = 0.0
    assert integrity.violations() == []
    obj.launch = len
    assert integrity.violations() == ["judge attribute _Held.launch was replaced"]


def test_frozen_watch_keeps_every_attribute():
    # The launch hold is watched frozen: a shorter spin, or no graph, would let a candidate's
    # batches end sooner than the trusted worker's calibration assumes.
    obj = _Held()
    integrity = Integrity()
    integrity.watch(obj, frozen=True)
    assert integrity.violations() == []
    obj.length_ns = 0.0
    del obj.graph
    assert sorted(integrity.violations()) == ["judge attribute _Held.graph was replaced",
                                              "judge attribute _Held.length_ns was replaced"]
