"""Triton candidate for examples/matmul_epilogue: tiled tl.dot in full fp32 with a fused epilogue.

tl.dot is called with input_precision="ieee": Triton's default for fp32
operands is TF32, which would break the fp32 tolerance. Every load and the
store are masked, so ragged M, N and K are handled. self.linear is kept only
as the parameter holder (same state_dict keys as Model).
"""

import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _linear_relu_scale_kernel(x_ptr, w_ptr, b_ptr, y_ptr, M, N, K,
                              stride_xm, stride_xk, stride_wn, stride_wk, stride_ym, stride_yn,
                              scale,
                              BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, K, BLOCK_K):
        k = k0 + offs_k
        a = tl.load(x_ptr + offs_m[:, None] * stride_xm + k[None, :] * stride_xk,
                    mask=(offs_m[:, None] < M) & (k[None, :] < K), other=0.0)   # (BLOCK_M, BLOCK_K)
        b = tl.load(w_ptr + offs_n[None, :] * stride_wn + k[:, None] * stride_wk,
                    mask=(offs_n[None, :] < N) & (k[:, None] < K), other=0.0)   # (BLOCK_K, BLOCK_N) = W^T tile
        acc = tl.dot(a, b, acc, input_precision="ieee")
    bias = tl.load(b_ptr + offs_n, mask=offs_n < N, other=0.0)
    y = tl.maximum(acc + bias[None, :], 0.0) * scale
    tl.store(y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :] * stride_yn, y,
             mask=(offs_m[:, None] < M) & (offs_n[None, :] < N))


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)  # parameter holder only
        self.scale = scale

    def forward(self, x):
        assert x.is_cuda and x.dtype == torch.float32
        x = x.contiguous()
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        w = self.linear.weight.contiguous()
        b = self.linear.bias.contiguous()
        M, K = x2.shape
        N = w.shape[0]
        y = torch.empty((M, N), device=x.device, dtype=torch.float32)
        if M > 0 and N > 0:
            BLOCK_M, BLOCK_N, BLOCK_K = 64, 64, 32
            grid = (triton.cdiv(M, BLOCK_M), triton.cdiv(N, BLOCK_N))
            _linear_relu_scale_kernel[grid](
                x2, w, b, y, M, N, K,
                x2.stride(0), x2.stride(1), w.stride(0), w.stride(1), y.stride(0), y.stride(1),
                float(self.scale),
                BLOCK_M=BLOCK_M, BLOCK_N=BLOCK_N, BLOCK_K=BLOCK_K, num_warps=4, num_stages=3)
        return y.reshape(*shape[:-1], N)
