"""relu(x) + y with torch.utils.cpp_extension.load_inline, split for a faster build: the
.cu file holds only the kernel and a plain C launcher (no torch headers:
no_implicit_headers=True keeps load_inline from adding torch/types.h to it), the torch
binding lives in the C++ source, which starts with torch/extension.h so that the judge's
shared precompiled header serves it. Use this form only when a kernel needs what NVRTC
lacks (CUTLASS, cuBLAS, host-side templates)."""

import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CUDA_SOURCE = r"""
#include <cuda_runtime.h>
#include <stdint.h>

__global__ void relu_add_kernel(const float* __restrict__ x, const float* __restrict__ y,
                                float* __restrict__ out, int64_t n) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)blockDim.x * gridDim.x) {
        const float v = x[i];
        out[i] = (v > 0.0f ? v : (v != v ? v : 0.0f)) + y[i];
    }
}

void relu_add_launch(const float* x, const float* y, float* out, int64_t n, cudaStream_t stream) {
    const int threads = 256;
    int64_t blocks = (n + threads - 1) / threads;
    if (blocks > 65535) blocks = 65535;
    if (n > 0) relu_add_kernel<<<(unsigned)blocks, threads, 0, stream>>>(x, y, out, n);
}
"""

CPP_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <cuda_runtime.h>

void relu_add_launch(const float* x, const float* y, float* out, int64_t n, cudaStream_t stream);

torch::Tensor relu_add(torch::Tensor x, torch::Tensor y) {
    TORCH_CHECK(x.is_cuda() && y.is_cuda() && x.scalar_type() == torch::kFloat32, "float32 CUDA tensors");
    x = x.contiguous(); y = y.contiguous();
    auto out = torch::empty_like(x);
    relu_add_launch(x.data_ptr<float>(), y.data_ptr<float>(), out.data_ptr<float>(), x.numel(),
                    at::cuda::getCurrentCUDAStream());
    return out;
}
"""

_ext = load_inline(name="relu_add_ext", cpp_sources=CPP_SOURCE, cuda_sources=CUDA_SOURCE,
                   functions=["relu_add"], extra_cflags=["-O3"], extra_cuda_cflags=["-O3"],
                   no_implicit_headers=True)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        return _ext.relu_add(x, y)
