"""relu(x) + y as a C++ torch extension for the CPU (load_inline; about 11 s to build with the
judge's shared precompiled torch header, about 20 s without)."""

import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CPP_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>

torch::Tensor relu_add(torch::Tensor x, torch::Tensor y) {
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 && !x.is_cuda(), "float32 CPU tensors");
    x = x.contiguous(); y = y.contiguous();
    auto out = torch::empty_like(x);
    const float* a = x.data_ptr<float>(); const float* b = y.data_ptr<float>(); float* o = out.data_ptr<float>();
    at::parallel_for(0, x.numel(), 4096, [&](int64_t begin, int64_t end) {   // torch's own thread count
        for (int64_t i = begin; i < end; ++i) {
            const float v = a[i];
            o[i] = (v > 0.0f ? v : (v != v ? v : 0.0f)) + b[i];
        }
    });
    return out;
}
"""

_ext = load_inline(name="relu_add_cpu", cpp_sources=CPP_SOURCE, functions=["relu_add"], extra_cflags=["-O3"])


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        return _ext.relu_add(x, y)
