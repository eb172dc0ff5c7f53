"""CPU candidate for examples/matmul_epilogue: blocked dot products accumulated in double.

y[i, j] = relu(sum_k x[i, k] * W[j, k] + b[j]) * scale. W is (out, in), so
both operands of each dot product are contiguous along k. Rows of x and W are
walked in 16 x 16 blocks so the rows in use stay in cache. self.linear is kept
only as the parameter holder (same state_dict keys as Model).
"""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

_CPP_SOURCE = r"""
#include <torch/extension.h>
#include <algorithm>

torch::Tensor linear_relu_scale(torch::Tensor x, torch::Tensor w, torch::Tensor b, double scale) {
    TORCH_CHECK(x.device().is_cpu() && w.device().is_cpu() && b.device().is_cpu(),
                "tensors must be on the CPU");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32 &&
                b.scalar_type() == torch::kFloat32, "tensors must be float32");
    TORCH_CHECK(x.is_contiguous() && w.is_contiguous() && b.is_contiguous(),
                "tensors must be contiguous");
    TORCH_CHECK(x.dim() == 2 && w.dim() == 2 && b.dim() == 1, "x (M,K), w (N,K), b (N)");
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    TORCH_CHECK(w.size(1) == K && b.size(0) == N, "shape mismatch");
    auto out = torch::empty({M, N}, x.options());
    const float* xp = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    float* yp = out.data_ptr<float>();
    const float sc = (float)scale;
    constexpr int64_t MB = 16, NB = 16;
    for (int64_t i0 = 0; i0 < M; i0 += MB) {
        const int64_t i1 = std::min(i0 + MB, M);
        for (int64_t j0 = 0; j0 < N; j0 += NB) {
            const int64_t j1 = std::min(j0 + NB, N);
            for (int64_t i = i0; i < i1; ++i) {
                const float* xr = xp + i * K;
                for (int64_t j = j0; j < j1; ++j) {
                    const float* wr = wp + j * K;
                    double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
                    int64_t k = 0;
                    for (; k + 4 <= K; k += 4) {
                        a0 += (double)xr[k] * (double)wr[k];
                        a1 += (double)xr[k + 1] * (double)wr[k + 1];
                        a2 += (double)xr[k + 2] * (double)wr[k + 2];
                        a3 += (double)xr[k + 3] * (double)wr[k + 3];
                    }
                    for (; k < K; ++k) a0 += (double)xr[k] * (double)wr[k];
                    float v = (float)((a0 + a1) + (a2 + a3) + (double)bp[j]);
                    v = v < 0.0f ? 0.0f : v;  // relu (keeps NaN)
                    yp[i * N + j] = v * sc;
                }
            }
        }
    }
    return out;
}
"""

_ext = load_inline(
    name="kw_example_matmul_epilogue_cpu",
    cpp_sources=_CPP_SOURCE,
    functions=["linear_relu_scale"],
    extra_cflags=["-O3"],
    verbose=False,
)


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)  # parameter holder only
        self.scale = scale

    def forward(self, x):
        x = x.contiguous()
        shape = x.shape
        out = _ext.linear_relu_scale(
            x.reshape(-1, shape[-1]), self.linear.weight.contiguous(),
            self.linear.bias.contiguous(), float(self.scale))
        return out.reshape(*shape[:-1], out.shape[-1])
