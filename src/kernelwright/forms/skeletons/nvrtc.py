"""relu(x) + y as a raw CUDA kernel compiled by NVRTC at first use (about 0.1 s)."""

import torch
import torch.nn as nn

KERNEL_SOURCE = r"""
// torch's launcher passes every Python int as a 32-bit C int, so a size that may reach 2**31
// comes in as two ints (low word, high word) and is joined back into 64 bits here.
__device__ __forceinline__ long long join64(int lo, int hi) {
    return (long long)(((unsigned long long)(unsigned int)hi << 32) | (unsigned int)lo);
}

extern "C" __global__ void relu_add(const float* __restrict__ x, const float* __restrict__ y,
                                    float* __restrict__ out, int n_lo, int n_hi) {
    const long long n = join64(n_lo, n_hi);
    const long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const float v = x[i];
        out[i] = (v > 0.0f ? v : (v != v ? v : 0.0f)) + y[i];   // relu keeps NaN
    }
}
"""
THREADS = 256
_kernels = {}


def _i64(v):
    # A 64-bit int as the two 32-bit kernel arguments join64 takes: (low word, high word),
    # both within int32 range. Pass floats as Python floats: they arrive as C double.
    lo = v & 0xFFFFFFFF
    return [lo - (1 << 32) if lo >= 1 << 31 else lo, v >> 32]


def _kernel(name):
    # NVRTC compiles for the current device on first use.
    if name not in _kernels:
        _kernels[name] = torch.cuda._compile_kernel(KERNEL_SOURCE, name)
    return _kernels[name]


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        x, y = x.contiguous(), y.contiguous()
        out = torch.empty_like(x)
        n = x.numel()
        if n:
            blocks = min((n + THREADS - 1) // THREADS, 65535)
            # Launched on the current stream, with the tensors' device pointers.
            _kernel("relu_add")(grid=(blocks, 1, 1), block=(THREADS, 1, 1), args=[x, y, out, *_i64(n)])
        return out
