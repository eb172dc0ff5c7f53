"""CUDA candidate for examples/matmul_epilogue: shared-memory tiled SGEMM with a fused epilogue.

Y = relu(X @ W^T + b) * scale, X (M, K), W (N, K). A 256-thread block computes a
64 x 64 tile of Y in K-steps of 16: each step stages a 64 x 16 slice of X and of W
in shared memory (transposed, padded against bank conflicts, zero-filled past
the edges), then each thread accumulates a 4 x 4 strided micro-tile with fp32
FMAs (no tensor cores, no TF32). The epilogue adds the bias, applies relu and
the scale, and stores with bounds checks. self.linear is kept only as the
parameter holder (same state_dict keys as Model).
"""

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

_CPP_SOURCE = (
    "torch::Tensor linear_relu_scale(torch::Tensor x, torch::Tensor w, torch::Tensor b, double scale);"
)

_CUDA_SOURCE = r"""
#include <torch/extension.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

constexpr int BM = 64;
constexpr int BN = 64;
constexpr int BK = 16;
constexpr int kThreads = 256;  // 16 x 16 threads, 4 x 4 outputs each
constexpr int TM = BM / 16;
constexpr int TN = BN / 16;

__global__ void __launch_bounds__(kThreads)
linear_relu_scale_kernel(const float* __restrict__ X, const float* __restrict__ W,
                         const float* __restrict__ bias, float* __restrict__ Y,
                         int M, int N, int K, float scale) {
    __shared__ float Xs[BK][BM + 1];
    __shared__ float Ws[BK][BN + 1];
    const int tid = threadIdx.x;
    const int tx = tid % 16;  // column group: n = n0 + tx + 16 * j
    const int ty = tid / 16;  // row group:    m = m0 + ty + 16 * i
    const int m0 = blockIdx.y * BM;
    const int n0 = blockIdx.x * BN;

    float acc[TM][TN];
    #pragma unroll
    for (int i = 0; i < TM; ++i)
        #pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;

    for (int k0 = 0; k0 < K; k0 += BK) {
        // Stage X[m0:m0+BM, k0:k0+BK] and W[n0:n0+BN, k0:k0+BK], transposed to [k][row].
        #pragma unroll
        for (int r = 0; r < (BM * BK) / kThreads; ++r) {
            const int idx = tid + r * kThreads;
            const int kk = idx % BK, mm = idx / BK;
            const int gm = m0 + mm, gk = k0 + kk;
            Xs[kk][mm] = (gm < M && gk < K) ? X[(int64_t)gm * K + gk] : 0.0f;
        }
        #pragma unroll
        for (int r = 0; r < (BN * BK) / kThreads; ++r) {
            const int idx = tid + r * kThreads;
            const int kk = idx % BK, nn = idx / BK;
            const int gn = n0 + nn, gk = k0 + kk;
            Ws[kk][nn] = (gn < N && gk < K) ? W[(int64_t)gn * K + gk] : 0.0f;
        }
        __syncthreads();
        #pragma unroll
        for (int kk = 0; kk < BK; ++kk) {
            float a[TM], b[TN];
            #pragma unroll
            for (int i = 0; i < TM; ++i) a[i] = Xs[kk][ty + 16 * i];
            #pragma unroll
            for (int j = 0; j < TN; ++j) b[j] = Ws[kk][tx + 16 * j];
            #pragma unroll
            for (int i = 0; i < TM; ++i)
                #pragma unroll
                for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();  // before the next step overwrites the tiles
    }

    #pragma unroll
    for (int i = 0; i < TM; ++i) {
        const int gm = m0 + ty + 16 * i;
        if (gm >= M) continue;
        #pragma unroll
        for (int j = 0; j < TN; ++j) {
            const int gn = n0 + tx + 16 * j;
            if (gn >= N) continue;
            float v = acc[i][j] + bias[gn];
            v = v < 0.0f ? 0.0f : v;  // relu (keeps NaN)
            Y[(int64_t)gm * N + gn] = v * scale;
        }
    }
}

torch::Tensor linear_relu_scale(torch::Tensor x, torch::Tensor w, torch::Tensor b, double scale) {
    TORCH_CHECK(x.is_cuda() && w.is_cuda() && b.is_cuda(), "tensors must be CUDA tensors");
    TORCH_CHECK(x.scalar_type() == torch::kFloat32 && w.scalar_type() == torch::kFloat32 &&
                b.scalar_type() == torch::kFloat32, "tensors must be float32");
    TORCH_CHECK(x.is_contiguous() && w.is_contiguous() && b.is_contiguous(),
                "tensors must be contiguous");
    TORCH_CHECK(x.dim() == 2 && w.dim() == 2 && b.dim() == 1, "x (M,K), w (N,K), b (N)");
    const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
    TORCH_CHECK(w.size(1) == K && b.size(0) == N, "shape mismatch");
    TORCH_CHECK(M < (1LL << 31) && N < (1LL << 31) && K < (1LL << 31), "dims must fit in int32");
    TORCH_CHECK((M + BM - 1) / BM <= 65535, "too many rows for gridDim.y");
    const at::cuda::OptionalCUDAGuard guard(x.device());
    auto out = torch::empty({M, N}, x.options());
    if (M == 0 || N == 0) return out;
    const dim3 grid((unsigned int)((N + BN - 1) / BN), (unsigned int)((M + BM - 1) / BM));
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    linear_relu_scale_kernel<<<grid, kThreads, 0, stream>>>(
        x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), out.data_ptr<float>(),
        (int)M, (int)N, (int)K, (float)scale);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return out;
}
"""

_ext = load_inline(
    name="kw_example_matmul_epilogue_cuda",
    cpp_sources=_CPP_SOURCE,
    cuda_sources=_CUDA_SOURCE,
    functions=["linear_relu_scale"],
    extra_cflags=["-O3"],
    extra_cuda_cflags=["-O3"],
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
