"""CUDA candidate for examples/layernorm in the fast-building form: a raw kernel compiled by
NVRTC at first use (no torch headers, no host compiler), one block per row, two passes (mean, then squared deviations) in double; the parameters stay in an nn.LayerNorm named like the task's.
"""

import torch
import torch.nn as nn

_KERNELS = r"""
#define THREADS 256

// Sum over the block, returned to every thread. Safe to call repeatedly: the first barrier
// waits until every thread has read the previous call's total.
__device__ double block_sum(double v) {
    __shared__ double warp_sums[32];
    __shared__ double total;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) warp_sums[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < (int)((blockDim.x + 31) >> 5) ? warp_sums[lane] : 0.0;
        for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
        if (lane == 0) total = v;
    }
    __syncthreads();
    return total;
}

extern "C" __global__ void layernorm_rows(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ b, float* __restrict__ out,
                                          int rows, int cols, double eps) {
    const long long base = (long long)blockIdx.x * cols;
    const float* in = x + base;
    float* o = out + base;
    double s = 0.0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += in[c];
    const double mean = block_sum(s) / cols;
    double ss = 0.0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) { const double d = in[c] - mean; ss += d * d; }
    const float rstd = (float)rsqrt(block_sum(ss) / cols + eps);
    const float fm = (float)mean;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) o[c] = (in[c] - fm) * rstd * w[c] + b[c];
}
"""

THREADS = 256
_compiled = {}


def _kernel(name):
    # NVRTC compiles for the current device on first use; ints go in as 32-bit C int, floats as double.
    if name not in _compiled:
        _compiled[name] = torch.cuda._compile_kernel(_KERNELS, name)
    return _compiled[name]


class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.ln = nn.LayerNorm(dim)

    def forward(self, x):
        x = x.contiguous()
        if x.dtype != torch.float32 or x.dim() != 2 or not x.is_cuda:
            raise TypeError("this kernel takes a 2-D float32 CUDA tensor")
        rows, cols = x.shape
        w, b = self.ln.weight.detach().contiguous(), self.ln.bias.detach().contiguous()
        out = torch.empty_like(x)
        if rows:
            _kernel("layernorm_rows")(grid=(rows, 1, 1), block=(THREADS, 1, 1),
                                      args=[x, w, b, out, rows, cols, float(self.ln.eps)])
        return out
