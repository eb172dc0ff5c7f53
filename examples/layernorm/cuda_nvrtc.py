"""CUDA candidate for examples/layernorm in the fast-building form: a raw kernel compiled by
NVRTC at first use (no torch headers, no host compiler), one block per row, two passes (mean, then squared deviations) in double; the parameters stay in an nn.LayerNorm named like the task's.
"""

import torch
import torch.nn as nn

_KERNELS = r"""
#define THREADS 256

// torch's launcher passes every Python int as a 32-bit C int, so each size comes in as two
// ints (low word, high word) and is joined back into 64 bits here.
__device__ __forceinline__ long long join64(int lo, int hi) {
    return (long long)(((unsigned long long)(unsigned int)hi << 32) | (unsigned int)lo);
}

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

// One block per row; when rows exceed the grid, each block strides over the rows (uniformly, so
// every thread of a block reaches the same barriers).
extern "C" __global__ void layernorm_rows(const float* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ b, float* __restrict__ out,
                                          int rows_lo, int rows_hi, int cols_lo, int cols_hi, double eps) {
    const long long rows = join64(rows_lo, rows_hi), cols = join64(cols_lo, cols_hi);
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const float* in = x + r * cols;
        float* o = out + r * cols;
        double s = 0.0;
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) s += in[c];
        const double mean = block_sum(s) / cols;
        double ss = 0.0;
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) { const double d = in[c] - mean; ss += d * d; }
        const float rstd = (float)rsqrt(block_sum(ss) / cols + eps);
        const float fm = (float)mean;
        for (long long c = threadIdx.x; c < cols; c += blockDim.x) o[c] = (in[c] - fm) * rstd * w[c] + b[c];
    }
}
"""

THREADS = 256
MAX_BLOCKS = 2**31 - 1  # gridDim.x limit; past it, blocks stride over the rows
_compiled = {}


def _i64(v):
    # A 64-bit int as the two 32-bit kernel arguments join64 takes: (low word, high word), both
    # within int32 range (torch's launcher passes each Python int as a C int, each float as a double).
    lo = v & 0xFFFFFFFF
    return [lo - (1 << 32) if lo >= 1 << 31 else lo, v >> 32]


def _kernel(name):
    # NVRTC compiles for the current device on first use.
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
            _kernel("layernorm_rows")(grid=(min(rows, MAX_BLOCKS), 1, 1), block=(THREADS, 1, 1),
                                      args=[x, w, b, out, *_i64(rows), *_i64(cols), float(self.ln.eps)])
        return out
