"""CPU candidate for examples/layernorm: two-pass mean/variance per row, in double.

self.ln is kept only as the holder of the parameters (same state_dict keys as
Model); its forward is never called.
"""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

_CPP_SOURCE = r"""
#include <torch/extension.h>
#include <cmath>

// x viewed as (rows, cols); normalize each row, then out = xhat * w + b.
torch::Tensor layernorm_forward(torch::Tensor x, torch::Tensor w, torch::Tensor b, double eps) {
    TORCH_CHECK(x.device().is_cpu() && w.device().is_cpu() && b.device().is_cpu(),
                "tensors must be on the CPU");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32 &&
                b.scalar_type() == torch::kFloat32, "tensors must be float32");
    TORCH_CHECK(x.is_contiguous() && w.is_contiguous() && b.is_contiguous(),
                "tensors must be contiguous");
    TORCH_CHECK(x.dim() == 2, "x must be 2-D (rows, cols)");
    const int64_t rows = x.size(0), cols = x.size(1);
    TORCH_CHECK(w.numel() == cols && b.numel() == cols, "weight/bias size must match the last dim");
    auto out = torch::empty_like(x);
    const float* in = x.data_ptr<float>();
    const float* wp = w.data_ptr<float>();
    const float* bp = b.data_ptr<float>();
    float* o = out.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) {
        const float* xr = in + r * cols;
        float* orow = o + r * cols;
        double s = 0.0;
        for (int64_t c = 0; c < cols; ++c) s += (double)xr[c];
        const double mean = s / (double)cols;
        double ss = 0.0;
        for (int64_t c = 0; c < cols; ++c) {
            const double d = (double)xr[c] - mean;
            ss += d * d;
        }
        const double var = ss / (double)cols;  // biased, as LayerNorm uses
        const float rstd = (float)(1.0 / std::sqrt(var + eps));
        const float meanf = (float)mean;
        for (int64_t c = 0; c < cols; ++c) orow[c] = (xr[c] - meanf) * rstd * wp[c] + bp[c];
    }
    return out;
}
"""

_ext = load_inline(
    name="kw_example_layernorm_cpu",
    cpp_sources=_CPP_SOURCE,
    functions=["layernorm_forward"],
    extra_cflags=["-O3"],
    verbose=False,
)


class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ln = nn.LayerNorm(dim)  # parameter holder only
        with torch.no_grad():  # same draws as Model, so both agree even without a state copy
            self.ln.weight.normal_(1.0, 0.5)
            self.ln.bias.normal_(0.0, 0.5)

    def forward(self, x):
        x = x.contiguous()
        shape = x.shape
        out = _ext.layernorm_forward(
            x.reshape(-1, shape[-1]), self.ln.weight.contiguous(), self.ln.bias.contiguous(),
            float(self.ln.eps))
        return out.reshape(shape)
