"""CUDA candidate for examples/softmax in the fast-building form: a raw kernel compiled by
NVRTC at first use (no torch headers, no host compiler), one block per row: row max, sum of exponentials in double, scale.
"""

import torch
import torch.nn as nn

_KERNELS = r"""// No headers under NVRTC: minus infinity from its bit pattern.
#define NEG_INF __int_as_float(0xff800000)

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

__device__ float block_max(float v) {
    __shared__ float warp_max[32];
    __shared__ float total;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, wid = threadIdx.x >> 5;
    __syncthreads();
    if (lane == 0) warp_max[wid] = v;
    __syncthreads();
    if (wid == 0) {
        v = lane < (int)((blockDim.x + 31) >> 5) ? warp_max[lane] : NEG_INF;
        for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
        if (lane == 0) total = v;
    }
    __syncthreads();
    return total;
}

extern "C" __global__ void softmax_rows(const float* __restrict__ x, float* __restrict__ out, int rows, int cols) {
    const long long base = (long long)blockIdx.x * cols;
    const float* in = x + base;
    float* o = out + base;
    float m = NEG_INF;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, in[c]);
    m = block_max(m);
    double s = 0.0;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        const float e = expf(in[c] - m);
        o[c] = e;
        s += e;
    }
    const float inv = (float)(1.0 / block_sum(s));
    for (int c = threadIdx.x; c < cols; c += blockDim.x) o[c] *= inv;
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
        out = torch.empty_like(x)
        if rows:
            _kernel("softmax_rows")(grid=(rows, 1, 1), block=(THREADS, 1, 1), args=[x, out, rows, cols])
        return out
