"""What the candidate's worker poisons before a checked call on the CPU: its recent outputs'
freed blocks, without holding eight large outputs' worth at once."""

from __future__ import annotations

import torch

from kernelwright import constants as C
from kernelwright.worker.harness import Harness


def _harness() -> Harness:
    h = Harness.__new__(Harness)  # only the size bookkeeping: no device set-up
    h._recent_out_bytes, h._last_out_bytes = [], []
    return h


def test_small_outputs_poison_every_recent_size():
    h = _harness()
    for n in (10, 20, 30):
        h._remember_sizes((torch.empty(n, dtype=torch.float32), torch.empty(1, dtype=torch.int64)))
    assert h._poison_sizes() == [40, 8, 80, 8, 120, 8]


def test_large_outputs_poison_the_last_calls_blocks_only():
    h = _harness()
    big = torch.empty(0).expand(0)  # sizes come from numel and element size alone
    for _ in range(8):
        h._recent_out_bytes.append(C.POISON_ALL_RECENT_BYTES)
    h._last_out_bytes = [C.POISON_ALL_RECENT_BYTES]
    assert h._poison_sizes() == [C.POISON_ALL_RECENT_BYTES] * 2  # the output and its snapshot
    h._remember_sizes((big, torch.empty(4)))
    assert h._last_out_bytes == [0, 16]
