"""The reference worker's FLOP count: torch's formulas, the same totals as FlopCounterMode, and no
Dynamo import on the way (its first use cost 3-6 s a verdict on the H200 host)."""

from __future__ import annotations

import subprocess
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from kernelwright.worker.flops import FlopCount


class _Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.lin = nn.Linear(8 * 6 * 6, 16)

    def forward(self, x, q):
        y = self.lin(torch.relu(self.conv(x)).flatten(1))
        att = F.scaled_dot_product_attention(q, q, q)
        return y.sum() + torch.bmm(att.flatten(0, 1), att.flatten(0, 1).transpose(1, 2)).sum() + torch.addmm(y, y, torch.ones(16, 16)).sum()


def test_the_same_total_as_torchs_counter_on_the_meta_device():
    meta = _Mixed().to("meta")
    args = (torch.rand(2, 3, 8, 8, device="meta"), torch.rand(2, 4, 5, 16, device="meta"))
    theirs = FlopCounterMode(display=False)
    with torch.no_grad(), theirs:
        meta(*args)
    mine = FlopCount()
    with torch.no_grad(), mine:
        meta(*args)
    assert mine.total == theirs.get_total_flops() > 0


def test_counting_imports_no_dynamo():
    code = ("import sys, torch\nfrom kernelwright.worker.flops import FlopCount\n"
            "c = FlopCount()\nwith c: torch.ones(4, 8, device='meta') @ torch.ones(8, 2, device='meta')\n"
            "assert c.total == 2 * 4 * 8 * 2, c.total\nprint('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
