"""CUDA candidate for examples/rowsum in the fast-building form: a raw kernel compiled by
NVRTC at first use (no torch headers, no host compiler), one block per row, accumulated in double.
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

extern "C" __global__ void rowsum(const float* __restrict__ x, float* __restrict__ out, int rows, int cols) {
    const int r = blockIdx.x;
    const float* row = x + (long long)r * cols;
    double acc = 0.0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) acc += row[c];
    acc = block_sum(acc);
    if (threadIdx.x == 0) out[r] = (float)acc;
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
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        if x.dtype != torch.float32 or x.dim() != 2 or not x.is_cuda:
            raise TypeError("this kernel takes a 2-D float32 CUDA tensor")
        rows, cols = x.shape
        out = torch.empty(rows, dtype=x.dtype, device=x.device)
        if rows:
            _kernel("rowsum")(grid=(rows, 1, 1), block=(THREADS, 1, 1), args=[x, out, rows, cols])
        return out
