"""CUDA candidate for examples/elementwise in the fast-building form: a raw CUDA kernel
compiled by NVRTC at import (about 0.1 s, no torch headers, no host compiler) and
launched on the current stream with the tensors' device pointers.
"""

import torch
import torch.nn as nn

_KERNEL = r"""
extern "C" __global__ void elementwise_kernel(const float* __restrict__ x, float* __restrict__ out, int n) {
    const int stride = blockDim.x * gridDim.x;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
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
        if x.dtype != torch.float32 or not x.is_cuda or x.numel() >= 2**31:
            raise TypeError("this kernel takes float32 CUDA tensors of fewer than 2**31 elements")
        out = torch.empty_like(x)
        n = x.numel()
        if n:
            blocks = min((n + THREADS - 1) // THREADS, 65535 * 16)
            _get_kernel()(grid=(blocks, 1, 1), block=(THREADS, 1, 1), args=[x, out, n])
        return out
