"""CUDA candidate for examples/layernorm: one block per row, two-pass mean/variance.

Pass 1 reduces the sum (mean), pass 2 the sum of squared deviations (variance,
stable for shifted data), pass 3 writes (x - mean) * rstd * w + b.
self.ln is kept only as the parameter holder (same state_dict keys as Model).
"""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

_CPP_SOURCE = (
    "torch::Tensor layernorm_forward(torch::Tensor x, torch::Tensor w, torch::Tensor b, double eps);"
)

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

// Every thread of the block gets the sum. `buf` holds 32 floats.
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
    __syncthreads();  // buf may be reused right after
    return r;
}

__global__ void layernorm_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                 const float* __restrict__ b, float* __restrict__ out,
                                 int64_t rows, int64_t cols, float eps) {
    __shared__ float buf[32];
    for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
        const float* xr = x + row * cols;
        float* orow = out + row * cols;
        float s = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c];
        const float mean = block_sum(s, buf) / (float)cols;
        float ss = 0.0f;
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) {
            const float d = xr[c] - mean;
            ss = fmaf(d, d, ss);
        }
        const float var = block_sum(ss, buf) / (float)cols;  // biased, as LayerNorm uses
        const float rstd = rsqrtf(var + eps);
        for (int64_t c = threadIdx.x; c < cols; c += blockDim.x)
            orow[c] = (xr[c] - mean) * rstd * w[c] + b[c];
    }
}

torch::Tensor layernorm_forward(torch::Tensor x, torch::Tensor w, torch::Tensor b, double eps) {
    TORCH_CHECK(x.is_cuda() && w.is_cuda() && b.is_cuda(), "tensors must be CUDA tensors");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32 &&
                b.scalar_type() == torch::kFloat32, "tensors must be float32");
    TORCH_CHECK(x.is_contiguous() && w.is_contiguous() && b.is_contiguous(),
                "tensors must be contiguous");
    TORCH_CHECK(x.dim() == 2, "x must be 2-D (rows, cols)");
    const int64_t rows = x.size(0), cols = x.size(1);
    TORCH_CHECK(w.numel() == cols && b.numel() == cols, "weight/bias size must match the last dim");
    const at::cuda::OptionalCUDAGuard guard(x.device());
    auto out = torch::empty_like(x);
    if (rows == 0 || cols == 0) return out;
    const int64_t blocks = std::min<int64_t>(rows, 65535LL * 16);
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    layernorm_kernel<<<(unsigned int)blocks, kThreads, 0, stream>>>(
        x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<float>(),
        rows, cols, (float)eps);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
}
"""

_ext = load_inline(
    name="kw_example_layernorm_cuda",
    cpp_sources=_CPP_SOURCE,
    cuda_sources=_CUDA_SOURCE,
    functions=["layernorm_forward"],
    extra_cflags=["-O3"],
    extra_cuda_cflags=["-O3"],
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
