"""Triton candidate for examples/rowsum: one program per row, a BLOCK-wide fp32 accumulator, masked tail."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _rowsum_kernel(x_ptr, out_ptr, n_cols, stride_x, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    cols = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        offs = start + cols
        acc += tl.load(x_row + offs, mask=offs < n_cols, other=0.0).to(tl.float32)
    tl.store(out_ptr + row, tl.sum(acc, axis=0))


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        assert x.is_cuda and x.dtype == torch.float32 and x.dim() == 2
        x = x.contiguous()
        rows, cols = x.shape
        out = torch.empty(rows, device=x.device, dtype=x.dtype)
        if rows == 0:
            return out
        if cols == 0:
            return out.zero_()
        BLOCK = min(1024, triton.next_power_of_2(cols))
        _rowsum_kernel[(rows,)](x, out, cols, x.stride(0), BLOCK=BLOCK, num_warps=4)
        return out
