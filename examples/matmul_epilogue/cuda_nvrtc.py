"""CUDA candidate for examples/matmul_epilogue in the fast-building form: a raw kernel
compiled by NVRTC at first use (no torch headers, no host compiler) and launched on the
current stream with the tensors' device pointers.

Y = relu(X @ W^T + b) * scale, X (M, K), W (N, K). A 256-thread block computes a 32 x 64
tile of Y in K-steps of 16: each step stages a 32 x 16 slice of X and a 64 x 16 slice of W
in shared memory (transposed, padded against bank conflicts, zero-filled past the edges)
while the next step's slices are already being loaded into registers; each thread
accumulates a 2 x 4 strided micro-tile with fp32 FMAs (no tensor cores, no TF32). The
epilogue adds the bias, applies relu (NaN kept) and the scale, and stores with bounds
checks. 32-row tiles give this task's 257 x 769 output 9 x 13 = 117 blocks, about one per
H100 SM (64 x 64 tiles would leave half of them idle).

Sizes are 64-bit throughout: M, N and K go in as two 32-bit halves each (torch's launcher
passes Python ints as C int) and every global index is computed in 64 bits; the scale goes
in as a double (torch's launcher passes Python floats as C double). self.linear is kept
only as the parameter holder (same state_dict keys as Model).
"""

import torch
import torch.nn as nn

_KERNELS = r"""
#define BM 32
#define BN 64
#define BK 16
#define THREADS 256              // 16 x 16 threads
#define TM (BM / 16)             // rows per thread:    m = m0 + ty + 16 * i
#define TN (BN / 16)             // columns per thread: n = n0 + tx + 16 * j
#define XL (BM * BK / THREADS)   // X elements each thread stages per step
#define WL (BN * BK / THREADS)   // W elements each thread stages per step

// torch's launcher passes every Python int as a 32-bit C int, so each size comes in as two
// ints (low word, high word) and is joined back into 64 bits here.
__device__ __forceinline__ long long join64(int lo, int hi) {
    return (long long)(((unsigned long long)(unsigned int)hi << 32) | (unsigned int)lo);
}

// The step's slices of X (rows m0.., columns k0..) and W (rows n0.., columns k0..) into
// registers, zero past the edges. Sixteen consecutive threads read sixteen consecutive k.
__device__ __forceinline__ void load_step(const float* __restrict__ X, const float* __restrict__ W,
                                          long long M, long long N, long long K,
                                          long long m0, long long n0, long long k0,
                                          float (&xr)[XL], float (&wr)[WL]) {
    #pragma unroll
    for (int r = 0; r < XL; ++r) {
        const int idx = threadIdx.x + r * THREADS;
        const long long gm = m0 + idx / BK, gk = k0 + idx % BK;
        xr[r] = (gm < M && gk < K) ? X[gm * K + gk] : 0.0f;
    }
    #pragma unroll
    for (int r = 0; r < WL; ++r) {
        const int idx = threadIdx.x + r * THREADS;
        const long long gn = n0 + idx / BK, gk = k0 + idx % BK;
        wr[r] = (gn < N && gk < K) ? W[gn * K + gk] : 0.0f;
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
linear_relu_scale(const float* __restrict__ X, const float* __restrict__ W,
                  const float* __restrict__ bias, float* __restrict__ Y,
                  int M_lo, int M_hi, int N_lo, int N_hi, int K_lo, int K_hi, double scale_d) {
    const long long M = join64(M_lo, M_hi), N = join64(N_lo, N_hi), K = join64(K_lo, K_hi);
    const float scale = (float)scale_d;
    __shared__ float Xs[BK][BM + 1];
    __shared__ float Ws[BK][BN + 1];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const long long n0 = (long long)blockIdx.x * BN;
    // Column tiles on grid x (up to 2**31 - 1), row tiles on grid y (up to 65535): past that,
    // blocks stride over the row tiles (uniformly, so all threads reach the same barriers).
    for (long long m0 = (long long)blockIdx.y * BM; m0 < M; m0 += (long long)gridDim.y * BM) {
        float acc[TM][TN];
        #pragma unroll
        for (int i = 0; i < TM; ++i)
            #pragma unroll
            for (int j = 0; j < TN; ++j) acc[i][j] = 0.0f;
        float xr[XL], wr[WL];
        load_step(X, W, M, N, K, m0, n0, 0, xr, wr);
        for (long long k0 = 0; k0 < K; k0 += BK) {
            #pragma unroll
            for (int r = 0; r < XL; ++r) {
                const int idx = threadIdx.x + r * THREADS;
                Xs[idx % BK][idx / BK] = xr[r];
            }
            #pragma unroll
            for (int r = 0; r < WL; ++r) {
                const int idx = threadIdx.x + r * THREADS;
                Ws[idx % BK][idx / BK] = wr[r];
            }
            __syncthreads();
            if (k0 + BK < K) load_step(X, W, M, N, K, m0, n0, k0 + BK, xr, wr);  // in flight meanwhile
            #pragma unroll
            for (int kk = 0; kk < BK; ++kk) {
                float a[TM], b[TN];
                #pragma unroll
                for (int i = 0; i < TM; ++i) a[i] = Xs[kk][ty + 16 * i];
                #pragma unroll
                for (int j = 0; j < TN; ++j) b[j] = Ws[kk][tx + 16 * j];
                #pragma unroll
                for (int i = 0; i < TM; ++i)
                    #pragma unroll
                    for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
            }
            __syncthreads();  // before the next step overwrites the tiles
        }
        #pragma unroll
        for (int i = 0; i < TM; ++i) {
            const long long gm = m0 + ty + 16 * i;
            if (gm >= M) continue;
            #pragma unroll
            for (int j = 0; j < TN; ++j) {
                const long long gn = n0 + tx + 16 * j;
                if (gn >= N) continue;
                float v = acc[i][j] + bias[gn];
                v = v < 0.0f ? 0.0f : v;  // relu (keeps NaN)
                Y[gm * N + gn] = v * scale;
            }
        }
    }
}
"""

BM, BN, THREADS = 32, 64, 256  # must match the kernel's #defines
_compiled = {}


def _i64(v):
    # A 64-bit int as the two 32-bit kernel arguments join64 takes: (low word, high word), both
    # within int32 range (torch's launcher passes each Python int as a C int, each float as a double).
    lo = v & 0xFFFFFFFF
    return [lo - (1 << 32) if lo >= 1 << 31 else lo, v >> 32]


def _kernel(name):
    # NVRTC compiles for the current device on first use.
    if name not in _compiled:
        _compiled[name] = torch.cuda._compile_kernel(_KERNELS, name)
    return _compiled[name]


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features, scale):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)  # parameter holder only
        self.scale = scale

    def forward(self, x):
        w = self.linear.weight.detach().contiguous()
        b = self.linear.bias.detach().contiguous()
        if any(t.dtype != torch.float32 or not t.is_cuda for t in (x, w, b)):
            raise TypeError("this kernel takes float32 CUDA tensors")
        shape = x.shape
        x2 = x.detach().reshape(shape[:-1].numel(), shape[-1]).contiguous()
        M, K = x2.shape
        N = w.shape[0]
        if w.shape[1] != K or b.shape != (N,):
            raise ValueError(f"x (..., {K}) does not match weight {tuple(w.shape)} and bias {tuple(b.shape)}")
        y = torch.empty((M, N), device=x.device, dtype=torch.float32)
        if M and N:
            grid = ((N + BN - 1) // BN, min((M + BM - 1) // BM, 65535), 1)
            if grid[0] > 2**31 - 1:
                raise ValueError("too many output columns for the grid")
            _kernel("linear_relu_scale")(grid=grid, block=(THREADS, 1, 1),
                                         args=[x2, w, b, y, *_i64(M), *_i64(N), *_i64(K), float(self.scale)])
        return y.reshape(*shape[:-1], N)
