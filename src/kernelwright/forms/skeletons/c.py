"""relu(x) + y as plain C, built with `cc -O3 -shared` (well under a second) and called through ctypes."""

import ctypes
import hashlib
import os
import subprocess
import tempfile

import torch
import torch.nn as nn

C_SOURCE = r"""
#include <stdint.h>

void relu_add(const float* restrict x, const float* restrict y, float* restrict out, int64_t n) {
    #pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
        const float v = x[i];
        out[i] = (v > 0.0f ? v : (v != v ? v : 0.0f)) + y[i];   /* relu keeps NaN */
    }
}
"""
CFLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fopenmp"]


def _build(source):
    # One library per source and flags, built once into the judge's build directory; the
    # atomic rename means concurrent builders never load half a file.
    key = hashlib.sha256((source + " ".join(CFLAGS)).encode()).hexdigest()[:16]
    folder = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(tempfile.gettempdir(), "kw_c_kernels")
    os.makedirs(folder, exist_ok=True)
    lib = os.path.join(folder, f"k_{key}.so")
    if not os.path.exists(lib):
        src = os.path.join(folder, f"k_{key}.{os.getpid()}.c")
        with open(src, "w") as fh:
            fh.write(source)
        tmp = f"{lib}.{os.getpid()}.tmp"
        subprocess.run([os.environ.get("CC", "cc"), *CFLAGS, src, "-o", tmp, "-lm"],
                       check=True, capture_output=True, text=True)
        os.replace(tmp, lib)
    return ctypes.CDLL(lib)


_lib = _build(C_SOURCE)
_lib.relu_add.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
_lib.relu_add.restype = None


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x, y):
        x, y = x.contiguous(), y.contiguous()
        out = torch.empty_like(x)
        _lib.relu_add(x.data_ptr(), y.data_ptr(), out.data_ptr(), x.numel())
        return out
