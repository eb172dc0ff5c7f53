"""Modules and candidate kernels the API tests convert and judge."""

from __future__ import annotations

import torch
import torch.nn as nn

DIM = 257  # prime: no tile size divides it


class ScaleShift(nn.Module):
    """relu(x * weight + shift) * alpha: a parameter, a buffer and a non-tensor argument."""

    shift: torch.Tensor

    def __init__(self, dim: int = DIM) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim))
        self.register_buffer("shift", torch.randn(dim))

    def forward(self, x: torch.Tensor, alpha: float) -> torch.Tensor:
        return torch.relu(x * self.weight + self.shift) * alpha


class SortedRowSum(nn.Module):
    """Row sums of x * w, the slow way: each row sorted first. Summing unsorted is far faster."""

    def __init__(self, dim: int = 1024) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.rand(dim) + 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sort(x * self.w, dim=1).values.sum(1)


# The C-via-ctypes form (src/kernelwright/forms/skeletons/c.py): builds in about 0.1 s.
SCALE_SHIFT_C = r'''"""relu(x * weight + shift) * alpha over the rows of x, as plain C through ctypes."""

import ctypes
import hashlib
import os
import subprocess
import tempfile

import torch
import torch.nn as nn

C_SOURCE = r"""
#include <stdint.h>

void scale_shift(const float* restrict x, const float* restrict w, const float* restrict b,
                 float* restrict out, int64_t rows, int64_t cols, double alpha) {
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
            float v = x[r * cols + c] * w[c] + b[c];
            v = v > 0.0f ? v : (v != v ? v : 0.0f);   /* relu keeps NaN */
            out[r * cols + c] = v * (float)alpha;
        }
    }
}
"""
CFLAGS = ["-O2", "-fPIC", "-shared"]


def _build(source):
    key = hashlib.sha256((source + " ".join(CFLAGS)).encode()).hexdigest()[:16]
    folder = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(tempfile.gettempdir(), "kw_c_kernels")
    os.makedirs(folder, exist_ok=True)
    lib = os.path.join(folder, f"k_{key}.so")
    if not os.path.exists(lib):
        src = os.path.join(folder, f"k_{key}.{os.getpid()}.c")
        with open(src, "w") as fh:
            fh.write(source)
        tmp = f"{lib}.{os.getpid()}.tmp"
        subprocess.run([os.environ.get("CC", "cc"), *CFLAGS, src, "-o", tmp],
                       check=True, capture_output=True, text=True)
        os.replace(tmp, lib)
    return ctypes.CDLL(lib)


_lib = _build(C_SOURCE)
_lib.scale_shift.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64, ctypes.c_int64, ctypes.c_double]
_lib.scale_shift.restype = None


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        # The module's own names and shapes: the judge copies its weights into these.
        self.weight = nn.Parameter(torch.empty(257))
        self.register_buffer("shift", torch.empty(257))

    def forward(self, x, alpha):
        if x.dtype != torch.float32 or x.device.type != "cpu" or x.dim() != 2:
            raise TypeError("this kernel takes 2-D float32 CPU tensors")
        x = x.contiguous()
        out = torch.empty_like(x)
        _lib.scale_shift(x.data_ptr(), self.weight.data_ptr(), self.shift.data_ptr(), out.data_ptr(),
                         x.shape[0], x.shape[1], alpha)
        return out
'''

# One percent off: the judge must reject it.
SCALE_SHIFT_C_WRONG = SCALE_SHIFT_C.replace("v * (float)alpha;", "v * (float)alpha * 1.01f;")

# No sort: the same sum in another order, well within float32's tolerance.
SORTED_ROW_SUM_FAST = '''import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.empty(1024))

    def forward(self, x):
        return (x * self.w).sum(1)
'''
