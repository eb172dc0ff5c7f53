"""Checked calls run in reused buffers: a later copy of a set of the same shapes lands at the
same addresses, so a result cache keyed by address is answered with a stale output."""

from __future__ import annotations

import torch

from kernelwright import constants as C
from kernelwright.worker.harness import Harness


def _harness() -> Harness:
    return Harness("cpu", None)


def _seen(h: Harness) -> list[tuple[int, ...]]:
    """Run every staged set once through a checked call, recording its inputs' addresses."""
    seen: list[tuple[int, ...]] = []

    def fn(x, y, k):
        seen.append((x.data_ptr(), y[0].data_ptr()))
        return x * k + y[0]

    for sid in sorted(h.sets):
        res = h.run_checked(fn, sid)
        x, y, k = h.sets[sid]
        assert torch.equal(res["out"], x * k + y[0])  # the reused buffers hold this set's values
    return seen


def test_sets_of_one_shape_share_buffers_and_others_do_not():
    h = _harness()
    for sid in range(3):
        h.stage(sid, (torch.randn(64, 32), [torch.randn(32)], 2))
    h.stage(3, (torch.randn(8, 32), [torch.randn(32)], 2))
    seen = _seen(h)
    assert seen[0] == seen[1] == seen[2]
    assert seen[3][0] != seen[0][0]
    # The staged sets themselves are never the checked calls' buffers.
    assert all(h.sets[s][0].data_ptr() != seen[0][0] for s in range(3))


def test_a_buffer_resized_by_the_call_is_replaced_by_a_fresh_copy():
    h = _harness()
    for sid in range(2):
        h.stage(sid, (torch.randn(16, 4),))

    def shrink(x):
        y = x * 2
        x.resize_(1)
        return y

    first = h.run_checked(shrink, 0)
    assert torch.equal(first["out"], h.sets[0][0] * 2)
    second = h.run_checked(lambda x: x * 2, 1)
    assert torch.equal(second["out"], h.sets[1][0] * 2)


def test_buffers_are_bounded_and_freed_once_timing_starts():
    h = _harness()
    for sid in range(C.CHECKED_BUFFER_SETS + 2):
        h.stage(sid, (torch.randn(sid + 1, 3),))
        h.run_checked(lambda x: x + 1, sid)
    assert len(h._checked_bufs) == C.CHECKED_BUFFER_SETS
    h.time_batch(lambda x: x + 1, [0], snap=False)
    assert not h._checked_bufs


def test_a_set_run_in_place_is_the_staged_set_itself_and_its_changes_are_still_seen():
    """A set too large for a copy beside the ones the worker keeps is run in place (its last use)."""
    h = _harness()
    h.stage(0, (torch.randn(32, 8),))
    h.stage(1, (torch.randn(32, 8),))
    staged = h.sets[0][0]
    seen: list[int] = []

    def fn(x):
        seen.append(x.data_ptr())
        return x * 2

    res = h.run_checked(fn, 0, in_place=True)
    assert seen == [staged.data_ptr()] and torch.equal(res["out"], staged * 2) and not res["mutated"]

    def relu_(x):
        return x.relu_()

    assert h.run_checked(relu_, 1, in_place=True)["mutated"]
    assert not h._checked_bufs  # no copies were made
