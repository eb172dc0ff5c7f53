"""Triton candidate for examples/softmax: one program per row, online max/sum, any row length.

Pass 1 walks the row in BLOCK-wide chunks keeping a running max m and a running
sum s of exp(x - m) (rescaled when m grows); pass 2 writes exp(x - m) / s.
Masked lanes load -inf, whose exp is 0, so the tail adds nothing.
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _softmax_kernel(x_ptr, out_ptr, n_cols, stride_x, stride_out, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    x_row = x_ptr + row * stride_x
    out_row = out_ptr + row * stride_out
    cols = tl.arange(0, BLOCK)

    m = tl.full([], float("-inf"), tl.float32)
    s = tl.zeros([], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        offs = start + cols
        x = tl.load(x_row + offs, mask=offs < n_cols, other=float("-inf")).to(tl.float32)
        # Every chunk holds at least one real element, so m_new is finite
        # for finite data (exp(-inf - finite) = 0 on the first chunk).
        m_new = tl.maximum(m, tl.max(x, axis=0))
        s = s * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new

    inv = 1.0 / s
    for start in range(0, n_cols, BLOCK):
        offs = start + cols
        mask = offs < n_cols
        x = tl.load(x_row + offs, mask=mask, other=float("-inf")).to(tl.float32)
        tl.store(out_row + offs, tl.exp(x - m) * inv, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        assert x.is_cuda and x.dtype == torch.float32
        x = x.contiguous()
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        out = torch.empty_like(x2)
        rows, cols = x2.shape
        if rows == 0 or cols == 0:
            return out.reshape(shape)
        BLOCK = min(2048, triton.next_power_of_2(cols))
        _softmax_kernel[(rows,)](x2, out, cols, x2.stride(0), out.stride(0), BLOCK=BLOCK, num_warps=8)
        return out.reshape(shape)
