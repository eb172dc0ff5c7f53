"""Triton candidate for examples/elementwise: one fused, masked 1-D kernel."""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _elementwise_kernel(x_ptr, out_ptr, n, BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    h = tl.maximum(x * 2.0 + 1.0, 0.0)
    g = 0.5 * h * (1.0 + tl.math.erf(h * 0.7071067811865476))
    s = 1.0 / (1.0 + tl.exp(-x))
    tl.store(out_ptr + offs, g * s, mask=mask)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        assert x.is_cuda and x.dtype == torch.float32
        x = x.contiguous()
        out = torch.empty_like(x)
        n = x.numel()
        if n == 0:
            return out
        BLOCK = 1024
        grid = (triton.cdiv(n, BLOCK),)
        _elementwise_kernel[grid](x, out, n, BLOCK=BLOCK, num_warps=4)
        return out
