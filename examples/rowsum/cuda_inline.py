"""CUDA candidate for examples/rowsum: one block per row, strided float sums, shuffle + shared tree."""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

_CPP_SOURCE = "torch::Tensor rowsum_forward(torch::Tensor x);"

_CUDA_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <algorithm>

constexpr int kThreads = 256;  // a multiple of 32

__device__ __forceinline__ float warp_sum(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void rowsum_kernel(const float* __restrict__ x, float* __restrict__ out,
                              int64_t rows, int64_t cols) {
    __shared__ float buf[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = blockDim.x >> 5;
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * cols;
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c];
        s = warp_sum(s);
        if (lane == 0) buf[warp] = s;
        __syncthreads();
        if (warp == 0) {
            float t = lane < nwarps ? buf[lane] : 0.0f;
            t = warp_sum(t);
            if (lane == 0) out[row] = t;
        }
        __syncthreads();  // buf is reused by the next row
    }
}

torch::Tensor rowsum_forward(torch::Tensor x) {
    TORCH_CHECK(x.is_cuda(), "x must be a CUDA tensor");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32, "x must be float32");
    TORCH_CHECK(x.is_contiguous(), "x must be contiguous");
    TORCH_CHECK(x.dim() == 2, "x must be 2-D (rows, cols)");
    const at::cuda::OptionalCUDAGuard guard(x.device());
    const int64_t rows = x.size(0), cols = x.size(1);
    auto out = torch::empty({rows}, x.options());
    if (rows == 0) return out;
    if (cols == 0) return out.zero_();
    const int64_t blocks = std::min<int64_t>(rows, 65535LL * 16);
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    rowsum_kernel<<<(unsigned int)blocks, kThreads, 0, stream>>>(
        x.data_ptr<float>(), out.data_ptr<float>(), rows, cols);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
}
"""

_ext = load_inline(
    name="kw_example_rowsum_cuda",
    cpp_sources=_CPP_SOURCE,
    cuda_sources=_CUDA_SOURCE,
    functions=["rowsum_forward"],
    extra_cflags=["-O3"],
    extra_cuda_cflags=["-O3"],
    verbose=False,
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        return _ext.rowsum_forward(x.contiguous())
