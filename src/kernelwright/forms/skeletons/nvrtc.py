"""relu(x) + y as a raw CUDA kernel compiled by NVRTC at first use (about 0.1 s)."""

import torch
import torch.nn as nn

KERNEL_SOURCE = r"""
extern "C" __global__ void relu_add(const float* __restrict__ x, const float* __restrict__ y,
                                    float* __restrict__ out, int n) {
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x) {
        const float v = x[i];
        out[i] = (v > 0.0f ? v : (v != v ? v : 0.0f)) + y[i];   // relu keeps NaN
    }
}
"""
THREADS = 256
_kernels = {}


def _kernel(name):
    # NVRTC compiles for the current device on first use; ints are passed as 32-bit C ints.
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
            _kernel("relu_add")(grid=(blocks, 1, 1), block=(THREADS, 1, 1), args=[x, y, out, n])
        return out
