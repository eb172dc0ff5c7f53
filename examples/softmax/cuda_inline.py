"""CUDA candidate for examples/softmax: one block per row, three strided passes.

Pass 1 finds the row max, pass 2 sums exp(x - max), pass 3 writes
exp(x - max) / sum. Block reductions use warp shuffles plus shared memory.
"""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

_CPP_SOURCE = "torch::Tensor softmax_lastdim(torch::Tensor x);"

_CUDA_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <algorithm>
#include <cmath>

constexpr int kThreads = 256;  // a multiple of 32

__device__ __forceinline__ float warp_max(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float warp_sum(float v) {
    #pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Every thread of the block gets the result. `buf` holds 32 floats.
__device__ float block_max(float v, float* buf) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = blockDim.x >> 5;
    v = warp_max(v);
    if (lane == 0) buf[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < nwarps ? buf[lane] : -INFINITY;
        t = warp_max(t);
        if (lane == 0) buf[0] = t;
    }
    __syncthreads();
    const float r = buf[0];
    __syncthreads();  // buf may be reused right after
    return r;
}

__device__ float block_sum(float v, float* buf) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nwarps = blockDim.x >> 5;
    v = warp_sum(v);
    if (lane == 0) buf[warp] = v;
    __syncthreads();
    if (warp == 0) {
        float t = lane < nwarps ? buf[lane] : 0.0f;
        t = warp_sum(t);
        if (lane == 0) buf[0] = t;
    }
    __syncthreads();
    const float r = buf[0];
    __syncthreads();
    return r;
}

__global__ void softmax_kernel(const float* __restrict__ x, float* __restrict__ out,
                               int64_t rows, int64_t cols) {
    __shared__ float buf[32];
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * cols;
        float* orow = out + row * cols;
        float m = -INFINITY;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, xr[c]);
        m = block_max(m, buf);
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += expf(xr[c] - m);
        s = block_sum(s, buf);
        const float inv = 1.0f / s;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) orow[c] = expf(xr[c] - m) * inv;
    }
}

torch::Tensor softmax_lastdim(torch::Tensor x) {
    TORCH_CHECK(x.is_cuda(), "x must be a CUDA tensor");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32, "x must be float32");
    TORCH_CHECK(x.is_contiguous(), "x must be contiguous");
    TORCH_CHECK(x.dim() == 2, "x must be 2-D (rows, cols)");
    const at::cuda::OptionalCUDAGuard guard(x.device());
    auto out = torch::empty_like(x);
    const int64_t rows = x.size(0), cols = x.size(1);
    if (rows == 0 || cols == 0) return out;
    const int64_t blocks = std::min<int64_t>(rows, 65535LL * 16);
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    softmax_kernel<<<(unsigned int)blocks, kThreads, 0, stream>>>(
        x.data_ptr<float>(), out.data_ptr<float>(), rows, cols);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
}
"""

_ext = load_inline(
    name="kw_example_softmax_cuda",
    cpp_sources=_CPP_SOURCE,
    cuda_sources=_CUDA_SOURCE,
    functions=["softmax_lastdim"],
    extra_cflags=["-O3"],
    extra_cuda_cflags=["-O3"],
    verbose=False,
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        shape = x.shape
        out = _ext.softmax_lastdim(x.reshape(-1, shape[-1]))
        return out.reshape(shape)
