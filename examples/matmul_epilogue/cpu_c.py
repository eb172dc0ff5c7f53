"""CPU candidate for examples/matmul_epilogue in the fast-building form: plain C, built with
`cc -O3 -shared` in a fraction of a second and called through ctypes on the tensors' data
pointers.

Y = relu(X @ W^T + b) * scale, X (M, K), W (N, K). A register-blocked SGEMM in the usual
packed style: every call packs W into K x NR column panels and X into K x MR row panels
(zero-padded past the edges, so the micro-kernel never branches), then each MR x NR tile
of Y is accumulated over the whole K in vector registers (fp32 FMA, GCC vector extensions:
16-wide on AVX-512, 8-wide otherwise) and leaves through the fused epilogue: bias, relu
(NaN kept) and scale, stored straight into Y. The whole K fits: a K x NR panel of W
(64 KiB at K = 513) streams from L2, so no K blocking and no partial sums in memory.
OpenMP spreads the tiles over OMP_NUM_THREADS, which the judge sets to PyTorch's thread
count. Nothing is cached between calls: W is repacked every call. self.linear is kept
only as the parameter holder (same state_dict keys as Model).
"""

import ctypes
import hashlib
import os
import subprocess
import tempfile

import torch
import torch.nn as nn

_C_SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#define VL 16            /* floats per vector register */
#define MR 12            /* 12 x 2 accumulators + 2 B vectors + 1 broadcast: 27 of 32 registers */
#else
#define VL 8
#define MR 6             /* 6 x 2 accumulators + 2 B vectors + 1 broadcast: 15 of 16 registers */
#endif
#define NR (2 * VL)

typedef float vf __attribute__((vector_size(VL * 4)));                 /* aligned loads */
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4)));    /* unaligned stores */
typedef int32_t vi __attribute__((vector_size(VL * 4)));

/* relu(acc + bias) * scale, NaN kept (NaN < 0 is false). */
static inline vf epilogue(vf acc, vf bias, float scale) {
    const vf zero = {0};
    const vf v = acc + bias;
    return (vf)((vi)v & ~(vi)(v < zero)) * scale;
}

/* One MR x (NV * VL) tile of Y from packed panels; NV is 1 or 2 (a constant after inlining). */
static inline __attribute__((always_inline)) void tile(
        const float* restrict ap, const float* restrict bp, const float* restrict bias, int64_t K,
        float scale, float* restrict y, int64_t ldy, int64_t rows, int64_t cols, const int NV) {
    vf c0[MR], c1[MR];
    #pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) { c0[i] = (vf){0}; c1[i] = (vf){0}; }
    for (int64_t k = 0; k < K; ++k) {
        const vf b0 = *(const vf*)(bp + k * NR);
        const vf b1 = NV == 2 ? *(const vf*)(bp + k * NR + VL) : (vf){0};
        const float* a = ap + k * MR;
        #pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            c0[i] += a[i] * b0;
            if (NV == 2) c1[i] += a[i] * b1;
        }
    }
    const vf bias0 = *(const vf*)bias, bias1 = *(const vf*)(bias + VL);
    if (rows == MR && cols == NV * VL) {           /* interior tile: straight to Y */
        #pragma GCC unroll 16
        for (int i = 0; i < MR; ++i) {
            *(vfu*)(y + i * ldy) = epilogue(c0[i], bias0, scale);
            if (NV == 2) *(vfu*)(y + i * ldy + VL) = epilogue(c1[i], bias1, scale);
        }
    } else {                                      /* ragged edge: through a buffer */
        float buf[MR * NR] __attribute__((aligned(64)));
        for (int i = 0; i < MR; ++i) {
            *(vf*)(buf + i * NR) = epilogue(c0[i], bias0, scale);
            *(vf*)(buf + i * NR + VL) = epilogue(c1[i], bias1, scale);
        }
        for (int64_t i = 0; i < rows; ++i) memcpy(y + i * ldy, buf + i * NR, (size_t)cols * sizeof(float));
    }
}

/* y (M, N) = relu(x (M, K) @ w (N, K)^T + b (N)) * scale; all contiguous float32.
   Returns 0, or -1 when the packing buffers could not be allocated. */
int linear_relu_scale(const float* restrict x, const float* restrict w, const float* restrict b,
                      float* restrict y, int64_t M, int64_t N, int64_t K, double scale_d) {
    if (M <= 0 || N <= 0) return 0;
    const float scale = (float)scale_d;
    const int64_t mp = (M + MR - 1) / MR, np = (N + NR - 1) / NR;     /* panel counts */
    const size_t na = ((size_t)(mp * MR * K) + 15) / 16 * 16;     /* keeps bp 64-byte aligned */
    const size_t nb = (size_t)(np * NR * K), nbias = (size_t)(np * NR);
    const size_t bytes = (na + nb + nbias) * sizeof(float);       /* a multiple of 64 */
    float* buf = aligned_alloc(64, bytes);
    if (!buf) return -1;
    float* ap = buf;                 /* mp panels of K x MR: ap[q][k][i] = x[q*MR + i][k] */
    float* bp = buf + na;            /* np panels of K x NR: bp[p][k][j] = w[p*NR + j][k] */
    float* bias = bp + nb;           /* b, zero-padded to np * NR */

    #pragma omp parallel
    {
        #pragma omp for schedule(static) nowait
        for (int64_t p = 0; p < np; ++p) {        /* k outer: NR read streams, sequential writes */
            const int64_t nv = N - p * NR < NR ? N - p * NR : NR;
            const float* src = w + p * NR * K;
            float* dst = bp + p * NR * K;
            for (int64_t k = 0; k < K; ++k) {
                for (int64_t j = 0; j < nv; ++j) dst[k * NR + j] = src[j * K + k];
                for (int64_t j = nv; j < NR; ++j) dst[k * NR + j] = 0.0f;
            }
            for (int64_t j = 0; j < NR; ++j) bias[p * NR + j] = j < nv ? b[p * NR + j] : 0.0f;
        }
        #pragma omp for schedule(static)
        for (int64_t q = 0; q < mp; ++q) {
            const int64_t mv = M - q * MR < MR ? M - q * MR : MR;
            const float* src = x + q * MR * K;
            float* dst = ap + q * MR * K;
            for (int64_t k = 0; k < K; ++k) {
                for (int64_t i = 0; i < mv; ++i) dst[k * MR + i] = src[i * K + k];
                for (int64_t i = mv; i < MR; ++i) dst[k * MR + i] = 0.0f;
            }
        }
        /* implicit barrier above: both packs are complete. Column panels outermost, so a
           thread's static share is a run of whole W panels that stay in its L2. */
        #pragma omp for collapse(2) schedule(static)
        for (int64_t p = 0; p < np; ++p) {
            for (int64_t q = 0; q < mp; ++q) {
                const int64_t rows = M - q * MR < MR ? M - q * MR : MR;
                const int64_t cols = N - p * NR < NR ? N - p * NR : NR;
                float* yt = y + q * MR * N + p * NR;
                if (cols > VL)
                    tile(ap + q * MR * K, bp + p * NR * K, bias + p * NR, K, scale, yt, N, rows, cols, 2);
                else
                    tile(ap + q * MR * K, bp + p * NR * K, bias + p * NR, K, scale, yt, N, rows, cols, 1);
            }
        }
    }
    free(buf);
    return 0;
}
"""
_CFLAGS = ["-O3", "-march=native", "-fPIC", "-shared", "-fopenmp"]


def _build(source: str) -> ctypes.CDLL:
    """Compile once per source and flags into the build directory; concurrent builders never see half a file."""
    key = hashlib.sha256((source + " ".join(_CFLAGS)).encode()).hexdigest()[:16]
    folder = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(tempfile.gettempdir(), "kw_c_kernels")
    os.makedirs(folder, exist_ok=True)
    lib = os.path.join(folder, f"k_{key}.so")
    if not os.path.exists(lib):
        src = os.path.join(folder, f"k_{key}.{os.getpid()}.c")
        with open(src, "w") as fh:
            fh.write(source)
        tmp = f"{lib}.{os.getpid()}.tmp"
        subprocess.run([os.environ.get("CC", "cc"), *_CFLAGS, src, "-o", tmp, "-lm"],
                       check=True, capture_output=True, text=True)
        os.replace(tmp, lib)
    return ctypes.CDLL(lib)


_lib = _build(_C_SOURCE)
_lib.linear_relu_scale.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_int64] * 3 + [ctypes.c_double]
_lib.linear_relu_scale.restype = ctypes.c_int


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)  # parameter holder only
        self.scale = scale

    def forward(self, x):
        w = self.linear.weight.detach().contiguous()
        b = self.linear.bias.detach().contiguous()
        if any(t.dtype != torch.float32 or t.device.type != "cpu" for t in (x, w, b)):
            raise TypeError("this kernel takes float32 CPU tensors")
        shape = x.shape
        x2 = x.detach().reshape(shape[:-1].numel(), shape[-1]).contiguous()
        M, K = x2.shape
        N = w.shape[0]
        if w.shape[1] != K or b.shape != (N,):
            raise ValueError(f"x (..., {K}) does not match weight {tuple(w.shape)} and bias {tuple(b.shape)}")
        y = torch.empty((M, N), dtype=torch.float32)
        if _lib.linear_relu_scale(x2.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(), M, N, K,
                                  float(self.scale)) != 0:
            raise MemoryError("could not allocate the packing buffers")
        return y.reshape(*shape[:-1], N)
