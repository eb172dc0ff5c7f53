"""CPU candidate for examples/elementwise in the fast-building form: plain C, built with
`cc -O3 -shared` in a fraction of a second and called through ctypes on the tensors'
data pointers. OpenMP uses OMP_NUM_THREADS, which the judge sets to the same thread
count as PyTorch's.
"""

import ctypes
import hashlib
import os
import subprocess
import tempfile

import torch
import torch.nn as nn

_C_SOURCE = r"""
#include <math.h>
#include <stdint.h>

void elementwise(const float* restrict x, float* restrict out, int64_t n) {
    const float inv_sqrt2 = 0.70710678118654752440f;
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        float h = v * 2.0f + 1.0f;
        h = h < 0.0f ? 0.0f : h;                               /* relu (keeps NaN) */
        const float g = 0.5f * h * (1.0f + erff(h * inv_sqrt2));  /* exact GELU */
        out[i] = g / (1.0f + expf(-v));                          /* times sigmoid */
    }
}
"""


def _build(source: str) -> ctypes.CDLL:
    """Compile once per source into the build directory; concurrent builders never see half a file."""
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    folder = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(tempfile.gettempdir(), "kw_c_kernels")
    os.makedirs(folder, exist_ok=True)
    lib = os.path.join(folder, f"k_{key}.so")
    if not os.path.exists(lib):
        src = os.path.join(folder, f"k_{key}.{os.getpid()}.c")
        with open(src, "w") as fh:
            fh.write(source)
        tmp = f"{lib}.{os.getpid()}.tmp"
        subprocess.run([os.environ.get("CC", "cc"), "-O3", "-march=native", "-fPIC", "-shared", "-fopenmp",
                        src, "-o", tmp, "-lm"], check=True, capture_output=True, text=True)
        os.replace(tmp, lib)
    return ctypes.CDLL(lib)


_lib = _build(_C_SOURCE)
_lib.elementwise.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
_lib.elementwise.restype = None


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        x = x.contiguous()
        if x.dtype != torch.float32 or x.device.type != "cpu":
            raise TypeError("this kernel takes float32 CPU tensors")
        out = torch.empty_like(x)
        _lib.elementwise(x.data_ptr(), out.data_ptr(), x.numel())
        return out
