"""CUDA candidate for examples/elementwise in the fast-building form: a raw CUDA kernel
compiled by NVRTC at import (about 0.1 s, no torch headers, no host compiler) and
launched on the current stream with the tensors' device pointers. Sizes are 64-bit: the
element count goes in as two 32-bit halves (torch's launcher passes Python ints as C int).
"""

import torch
import torch.nn as nn

_KERNEL = r"""
// torch's launcher passes every Python int as a 32-bit C int, so each size comes in as two
// ints (low word, high word) and is joined back into 64 bits here.
__device__ __forceinline__ long long join64(int lo, int hi) {
    return (long long)(((unsigned long long)(unsigned int)hi << 32) | (unsigned int)lo);
}

extern "C" __global__ void elementwise_kernel(const float* __restrict__ x, float* __restrict__ out,
                                              int n_lo, int n_hi) {
    const long long n = join64(n_lo, n_hi);
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = x[i];
        float h = v * 2.0f + 1.0f;
        h = h < 0.0f ? 0.0f : h;                                               // relu (keeps NaN)
        const float g = 0.5f * h * (1.0f + erff(h * 0.70710678118654752440f)); // exact GELU
        out[i] = g / (1.0f + expf(-v));                                        // times sigmoid
    }
}
"""

THREADS = 256
_kernel = None


def _i64(v):
    # A 64-bit int as the two 32-bit kernel arguments join64 takes: (low word, high word), both
    # within int32 range (torch's launcher passes each Python int as a C int, each float as a double).
    lo = v & 0xFFFFFFFF
    return [lo - (1 << 32) if lo >= 1 << 31 else lo, v >> 32]


def _get_kernel():
    # Compiled on first use, on the device the inputs live on.
    global _kernel
    if _kernel is None:
        _kernel = torch.cuda._compile_kernel(_KERNEL, "elementwise_kernel")
    return _kernel


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        if x.dtype != torch.float32 or not x.is_cuda:
            raise TypeError("this kernel takes float32 CUDA tensors")
        out = torch.empty_like(x)
        n = x.numel()
        if n:
            blocks = min((n + THREADS - 1) // THREADS, 65535 * 16)
            _get_kernel()(grid=(blocks, 1, 1), block=(THREADS, 1, 1), args=[x, out, *_i64(n)])
        return out
