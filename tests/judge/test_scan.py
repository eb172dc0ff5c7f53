"""The static scan: one positive snippet per rule, honest candidates clean, never raises."""

from __future__ import annotations

import textwrap

import pytest

from kernelwright.judge.scan import ScanFinding, scan_source, summarize


def rules(source: str) -> set[str]:
    return {f.rule for f in scan_source(textwrap.dedent(source))}


def native(code: str) -> str:
    """A candidate embedding `code` as load_inline C++/CUDA source."""
    return f"src = '''\n#include <torch/extension.h>\n{code}\n'''\n"


HONEST_CUDA = '''
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cuda_source = """
#include <torch/extension.h>
#include <cuda_runtime.h>

// one thread per element
__global__ void relu_kernel(const float* __restrict__ x, float* __restrict__ out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        out[i] = x[i] > 0.f ? x[i] : 0.f;
    }
}

torch::Tensor relu_cuda(torch::Tensor x) {
    TORCH_CHECK(x.is_cuda(), "x must be a CUDA tensor");
    auto out = torch::empty_like(x);
    int n = x.numel();
    const int threads = 256;
    const int blocks = (n + threads - 1) / threads;
    relu_kernel<<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<float>(), out.data_ptr<float>(), n);
    return out;
}
"""

cpp_source = "torch::Tensor relu_cuda(torch::Tensor x);"

relu = load_inline(
    name="relu_ext",
    cpp_sources=cpp_source,
    cuda_sources=cuda_source,
    functions=["relu_cuda"],
    verbose=False,
    extra_cuda_cflags=["-O3", "--use_fast_math"],
)


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu.relu_cuda(x.contiguous())
'''

HONEST_TRITON = '''
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def add_kernel(x_ptr, y_ptr, out_ptr, n_elements, BLOCK_SIZE: tl.constexpr):
    pid = tl.program_id(axis=0)
    offsets = pid * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offsets < n_elements
    x = tl.load(x_ptr + offsets, mask=mask)
    y = tl.load(y_ptr + offsets, mask=mask)
    tl.store(out_ptr + offsets, x + y, mask=mask)


def triton_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    n_elements = out.numel()
    grid = lambda meta: (triton.cdiv(n_elements, meta["BLOCK_SIZE"]),)
    add_kernel[grid](x, y, out, n_elements, BLOCK_SIZE=1024)
    return out


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, a, b):
        return triton_add(a.contiguous(), b.contiguous())
'''

HONEST_CPU_OPENMP = '''
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

cpp_source = r"""
#include <torch/extension.h>
#include <omp.h>

/* scale every element; static_cast keeps the math in float */
torch::Tensor scale_cpu(torch::Tensor x, double s) {
    auto xc = x.contiguous();
    auto out = torch::empty_like(xc);
    const float* in = xc.data_ptr<float>();
    float* o = out.data_ptr<float>();
    const int64_t n = xc.numel();
    #pragma omp parallel for
    for (int64_t i = 0; i < n; ++i) {
        o[i] = in[i] * static_cast<float>(s);
    }
    return out;
}
"""

ext = load_inline(
    name="scale_cpu_ext",
    cpp_sources=cpp_source,
    functions=["scale_cpu"],
    extra_cflags=["-O3", "-fopenmp"],
    extra_ldflags=["-fopenmp"],
)


class ModelNew(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x):
        return ext.scale_cpu(x, self.scale)
'''


@pytest.mark.parametrize("source", [HONEST_CUDA, HONEST_TRITON, HONEST_CPU_OPENMP],
                         ids=["cuda", "triton", "cpu_openmp"])
def test_honest_candidates_have_no_findings(source):
    assert scan_source(source) == []


POSITIVE = [
    ("proc", "import os\nopen(f'/proc/{os.getppid()}/mem', 'rb')\n"),
    ("thread", "import threading\nt = threading.Thread(target=print)\n"),
    ("thread", "from concurrent.futures import ThreadPoolExecutor\n"),
    ("thread", "import torch.multiprocessing as mp\n"),
    ("stream", "import torch\ns = torch.cuda.Stream()\n"),
    ("stream", "import torch\nwith torch.cuda.stream(s):\n    pass\n"),
    ("stream", "import torch\ntorch.cuda.set_stream(s)\n"),
    ("stream", "import torch\ns = torch.cuda.ExternalStream(ptr)\n"),
    ("stream", "from cupy.cuda import Stream\ns = Stream(non_blocking=True)\n"),
    ("stream", "flags = ['--default-stream=per-thread']\n"),
    ("gc", "import gc\nobjs = gc.get_objects()\n"),
    ("gc", "from gc import get_referrers\n"),
    ("inspect", "import inspect\n"),
    ("inspect", "import sys\nf = sys._getframe(1)\n"),
    ("inspect", "def f(e):\n    return e.__traceback__.tb_frame.f_back.f_locals\n"),
    ("inspect", "import sys\nm = sys.modules['__main__']\n"),
    ("monkeypatch", "import time\ntime.perf_counter = lambda: 0.0\n"),
    ("monkeypatch", "import torch\nsetattr(torch, 'allclose', lambda *a, **k: True)\n"),
    ("monkeypatch", "import torch\ndelattr(torch.Tensor, 'clone')\n"),
    ("monkeypatch", "import builtins\nbuiltins.isinstance = lambda *a: True\n"),
    ("monkeypatch", "__builtins__['print'] = None\n"),
    ("monkeypatch", "def f(): pass\nf.__code__ = (lambda: 1).__code__\n"),
    ("monkeypatch", "import torch.nn.functional as F\nF.relu = lambda x: x\n"),
    ("monkeypatch", "torch.Tensor.__eq__ = lambda a, b: True\n"),
    ("monkeypatch", "import sys\nsys.modules['torch'] = None\n"),
    ("monkeypatch", "import numpy as np\nnp.allclose = lambda *a: True\n"),
    ("exit", "import os\nos._exit(0)\n"),
    ("exit", "import sys\nsys.exit(1)\n"),
    ("exit", "exit()\n"),
    ("exit", "quit()\n"),
    ("exit", "import os\nos.kill(os.getppid(), 9)\n"),
    ("exit", "raise SystemExit(0)\n"),
    ("signal", "import signal\nsignal.signal(signal.SIGALRM, lambda *a: None)\n"),
    ("atexit", "import atexit\natexit.register(print)\n"),
    ("atexit", "class M:\n    def __del__(self):\n        pass\n"),
    ("file_write", "open('x.txt', 'w')\n"),
    ("file_write", "open('x.txt', mode='a')\n"),
    ("file_write", "open('x.txt', m)\n"),
    ("file_write", "from pathlib import Path\nPath('x').write_text('y')\n"),
    ("file_write", "import os\nos.remove('x')\n"),
    ("file_write", "import os\nos.rename('a', 'b')\n"),
    ("file_write", "import shutil\nshutil.rmtree('d')\n"),
    ("file_write", "import torch\ntorch.save(out, 'cache.pt')\n"),
    ("file_write", "import gzip\ngzip.open('f.gz', 'wb')\n"),
    ("subprocess", "import subprocess\nsubprocess.run(['ls'])\n"),
    ("subprocess", "import os\nos.system('ls')\n"),
    ("subprocess", "import os\nos.popen('ls')\n"),
    ("subprocess", "import os\nos.fork()\n"),
    ("subprocess", "import os\nos.execv('/bin/sh', ['sh'])\n"),
    ("ctypes", "import ctypes\n"),
    ("ctypes", "from cffi import FFI\n"),
    ("ctypes", "import mmap\n"),
    ("network", "import socket\n"),
    ("network", "import urllib.request\n"),
    ("network", "import requests\n"),
    ("dynamic_code", "exec('x = 1')\n"),
    ("dynamic_code", "y = eval('1 + 1')\n"),
    ("dynamic_code", "c = compile('1', '<s>', 'eval')\n"),
    ("dynamic_code", "os = __import__('os')\n"),
    ("dynamic_code", "import importlib\n"),
    ("env", "import os\nos.environ['CUDA_LAUNCH_BLOCKING'] = '1'\n"),
    ("env", "import os\nv = os.getenv('KW_SECRET')\n"),
    ("env", "from os import environ\n"),
    ("env", "import os\nos.putenv('X', '1')\n"),
    ("tensor_subclass", "import torch\nclass Lazy(torch.Tensor):\n    pass\n"),
    ("tensor_subclass", "import torch.nn as nn\nclass P(nn.Parameter):\n    pass\n"),
    ("tensor_subclass", "import torch\nt = torch.Tensor._make_subclass(Lazy, x)\n"),
    ("torch_function", "class T:\n    @classmethod\n    def __torch_function__(cls, f, t, a=(), k=None):\n"
                       "        return f(*a)\n"),
    ("torch_function", "class T:\n    def __torch_dispatch__(cls, f, t, a=(), k=None):\n        pass\n"),
    ("torch_function", "from torch.utils._python_dispatch import TorchDispatchMode\n"),
    ("torch_function", "import torch\nwith torch.overrides.TorchFunctionMode():\n    pass\n"),
    ("cuda_graph", "import torch\ng = torch.cuda.CUDAGraph()\n"),
    ("cuda_graph", "import torch\nwith torch.cuda.graph(g):\n    pass\n"),
    ("cuda_graph", "import torch\nf = torch.cuda.make_graphed_callables(m, (x,))\n"),
    ("cuda_graph", "import torch\nm = torch.compile(m, mode='reduce-overhead')\n"),
    ("memo_cache", "import functools\n@functools.lru_cache(maxsize=None)\ndef f(x):\n    return x\n"),
    ("memo_cache", "from functools import cache\n@cache\ndef f(x):\n    return x\n"),
    ("memo_cache", "_CACHE = {}\ndef forward(x):\n    _CACHE[tuple(x.shape)] = x\n"),
    ("memo_cache", "class M:\n    memo = dict()\n    def forward(self, x):\n        self.memo[1] = x\n"),
    ("memo_cache", "class M:\n    def __init__(self):\n        self.c = {}\n"
                   "    def forward(self, x):\n        return self.c.setdefault(1, x)\n"),
    ("memo_cache", "key = id(x)\n"),
    ("memo_cache", "_OUT = None\ndef forward(x):\n    global _OUT\n    _OUT = x\n"),
    ("data_ptr", "def f(x):\n    return x.data_ptr()\n"),
    ("global_flag", "import torch\ntorch.backends.cudnn.benchmark = True\n"),
    ("global_flag", "import torch\ntorch.backends.cuda.matmul.allow_tf32 = True\n"),
    ("global_flag", "from torch.backends import cudnn\ncudnn.allow_tf32 = True\n"),
    ("global_flag", "import torch\ntorch.set_num_threads(1)\n"),
    ("global_flag", "import torch\ntorch.set_float32_matmul_precision('high')\n"),
    ("global_flag", "import torch\ntorch.backends.cuda.enable_flash_sdp(False)\n"),
    ("timer", "import time\nt0 = time.perf_counter()\n"),
    ("timer", "from time import perf_counter_ns\n"),
    ("timer", "import torch\ne = torch.cuda.Event(enable_timing=True)\n"),
    ("seed", "import torch\ntorch.manual_seed(0)\n"),
    ("seed", "import numpy as np\nnp.random.seed(0)\n"),
    ("seed", "import torch\ng = torch.random.get_rng_state()\n"),
    ("seed", "import torch\ntorch.cuda.manual_seed_all(0)\n"),
    ("harness", "from kernelwright.worker import harness\n"),
    ("subprocess", "import os\nf = getattr(os, 'system')\n"),
    # embedded C/C++/CUDA
    ("cpp_thread", native("void f() { std::thread t([]{}); t.detach(); }")),
    ("cpp_thread", native("void f() { pthread_create(&tid, nullptr, work, nullptr); }")),
    ("cpp_thread", native("void f() { auto fut = std::async(std::launch::async, work); }")),
    ("cpp_thread", native("void f() { if (fork() == 0) { work(); } }")),
    ("cpp_subprocess", native('void f() { system("nvidia-smi"); }')),
    ("cpp_stream", native("void f() { cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking); }")),
    ("cpp_stream", native("void f() { k<<<1, 1, 0, cudaStreamPerThread>>>(); }")),
    ("cpp_stream", native("void f() { auto s = at::cuda::getStreamFromPool(); }")),
    ("cpp_stream", native("void f() { auto s = c10::cuda::getStreamFromPool(true); }")),
    ("cpp_host_alloc", native("void f() { float* h; cudaMallocHost(&h, 1024); }")),
    ("cpp_host_alloc", native("void f() { float* h; cudaHostAlloc(&h, 1024, 0); }")),
    ("cpp_host_alloc", native("void f() { float* m; cudaMallocManaged(&m, 1024); }")),
    ("cpp_static", native("torch::Tensor f() {\n  static torch::Tensor cache;\n  return cache;\n}")),
    ("cpp_static", native("at::Tensor f(at::Tensor x) {\n  static at::Tensor out = x;\n  return out;\n}")),
    ("cpp_static", native("void f() {\n  static float* buf = nullptr;\n}")),
    ("cpp_static", native("void f() {\n  static const float* last = nullptr;\n}")),
    ("cpp_static", native("void f() {\n  static int calls = 0;\n  calls++;\n}")),
    ("cpp_static", native("void f() {\n  static std::unordered_map<int64_t, torch::Tensor> memo;\n}")),
    ("cpp_static", native("torch::Tensor g_cache;\nvoid f() {}")),
    ("cpp_static", native("__device__ float g_acc;\n__global__ void k() {}")),
    ("cpp_graph", native("void f() { cudaGraph_t g; cudaStreamBeginCapture(s, mode); }")),
    ("cpp_graph", native("void f() { at::cuda::CUDAGraph g; }")),
    ("cpp_env", native('void f() { const char* v = getenv("KW_MODE"); }')),
    ("cpp_exit", native("void f() { exit(0); }")),
    ("cpp_exit", native("void f() { abort(); }")),
    ("cpp_exit", native("void f() { _exit(0); }")),
    ("cpp_exit", native("void f() { std::exit(3); }")),
    ("cpp_file", native('void f() { FILE* fp = fopen("/tmp/x", "w"); }')),
    ("cpp_file", native('void f() { std::ofstream out("/tmp/x"); }')),
    ("cpp_file", native("void f() { write(1, buf, 4); }")),
    ("cpp_dlopen", native('void f() { void* h = dlopen("libcuda.so", RTLD_NOW); auto p = dlsym(h, "x"); }')),
    ("cpp_l2_persist", native("void f() { cudaDeviceSetLimit(cudaLimitPersistingL2CacheSize, 1 << 20); }")),
    ("cpp_l2_persist", native("void f() { cudaStreamAttrValue a; a.accessPolicyWindow.base_ptr = p; }")),
    ("cpp_timer", native('__device__ long t() { long v; asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(v)); }')),
    ("cpp_timer", native('__device__ int t() { int v; asm volatile("mov.u32 %0, %%clock;" : "=r"(v)); }')),
    ("cpp_timer", native("__device__ long long t() { return clock64(); }")),
    ("cpp_timer", "import triton.language as tl\nasm = 'mov.u64 $0, %globaltimer;'\n"),
]


@pytest.mark.parametrize("rule,source", POSITIVE, ids=[f"{r}-{i}" for i, (r, _) in enumerate(POSITIVE)])
def test_rule_fires(rule, source):
    found = rules(source)
    assert rule in found, found


RULE_IDS = {
    "thread", "stream", "gc", "inspect", "monkeypatch", "exit", "signal", "atexit", "file_write", "subprocess",
    "ctypes", "network", "dynamic_code", "env", "tensor_subclass", "torch_function", "cuda_graph", "memo_cache",
    "data_ptr", "global_flag", "timer", "seed", "harness", "cpp_thread", "cpp_subprocess", "cpp_stream",
    "cpp_host_alloc", "cpp_static", "cpp_graph", "cpp_env", "cpp_exit", "cpp_file", "cpp_dlopen",
    "cpp_l2_persist", "cpp_timer", "proc",
}


def test_every_rule_has_a_positive_snippet():
    assert {rule for rule, _ in POSITIVE} == RULE_IDS


NEGATIVE = [
    "import torch\nm = torch.compile(m)\n",           # torch.compile is not compile()
    "import re\np = re.compile('x')\n",
    "def f(model):\n    model.eval()\n    return model\n",
    "f = open('x.txt')\n",                            # reading is fine
    "f = open('x.txt', 'rb')\n",
    "from PIL import Image\nimg = Image.open(path)\n",
    "import torch\ns = torch.cuda.current_stream()\n",
    "import torch\nflag = torch.backends.cudnn.enabled\n",  # reading a flag
    "import torch\nok = torch.backends.cuda.is_built()\n",
    "class M:\n    def __init__(self):\n        self.weight = 1\n        self.time = 0\n",
    "import torch\nx = torch.randn(3)\ny: torch.Tensor = x\n",
    "LUT = {'float': 1}\ndef f(k):\n    return LUT[k]\n",  # a read-only table is not a cache
    native("void f() {\n  static const int BLOCK = 256;\n  static constexpr int N = 4;\n}"),
    native("static __device__ __forceinline__ float sq(float v) { return v * v; }\n"
           "static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }\n"
           "__global__ void k(float* x) { __shared__ float s[32]; x[0] = static_cast<float>(s[0]); }"),
    native("__constant__ float c_w[16];\nconst int N = 4;\nusing T = float;\nint launch(int n,\n"
           "           int threads = 256);\nint n_threads() { return std::thread::hardware_concurrency(); }"),
    native("// std::thread would be bad\n/* cudaMallocHost(&p, n); exit(1); */\nvoid f() {}"),
    native('void f() { printf("// not a comment: %d\\n", 1); x.clone(); }'),
]


@pytest.mark.parametrize("source", NEGATIVE)
def test_no_false_positive(source):
    assert scan_source(source) == []


def test_syntax_error_is_a_single_finding():
    findings = scan_source("class ModelNew(nn.Module):\n    def forward(self, x)\n        return x\n")
    assert len(findings) == 1
    assert findings[0].rule == "syntax" and findings[0].line == 2
    assert "does not parse" in findings[0].detail


ODD = ["", "\x00", "(" * 5000, "a" + ".a" * 20000, "x = 1\n" * 5, "\ufeff\n", "def f(:\n", "'''unterminated",
       "s = '/* " + "std::" * 1000 + "'", "s = 'static ' * 5000 + '#include'", "x = [" + "[" * 90 + "]" * 91]


@pytest.mark.parametrize("source", ODD, ids=range(len(ODD)))
def test_never_raises(source):
    findings = scan_source(source)
    assert isinstance(findings, list) and all(isinstance(f, ScanFinding) for f in findings)


def test_embedded_code_lines_are_python_lines():
    source = textwrap.dedent('''\
        import torch
        cuda_src = """
        #include <torch/extension.h>
        void work() {}
        torch::Tensor f(torch::Tensor x) {
            std::thread t(work);
            t.join();
            return x;
        }
        """
        inline = "#include <cuda.h>\\nvoid g() { cudaMallocHost(&p, 4); }"
        ''')
    found = {(f.rule, f.line) for f in scan_source(source)}
    assert ("cpp_thread", 6) in found
    assert ("cpp_host_alloc", 11) in found  # escaped newlines stay on the literal's line


def test_f_string_sources_keep_their_lines():
    source = textwrap.dedent('''\
        N = 4
        src = f"""
        #include <torch/extension.h>
        #define N {N}
        void f() {{
            std::thread t(work);
        }}
        """
        ''')
    assert [(f.rule, f.line) for f in scan_source(source)] == [("cpp_thread", 6)]


def test_sorted_and_deduplicated_per_rule_and_line():
    source = "import threading\nimport threading as th; t = th.Thread(); u = th.Thread()\nimport time\n"
    findings = scan_source(source)
    assert [(f.rule, f.line) for f in findings] == [("thread", 1), ("thread", 2), ("timer", 3)]
    assert findings[1].detail.startswith("starts a thread (threading")
    assert "at line 2: work may run outside the timed region" in findings[1].detail


def test_summarize_one_line_per_rule():
    source = "import threading\nx = 1\nimport time\nthreading.Thread(target=f).start()\n"
    lines = summarize(scan_source(source))
    assert lines == ["static scan: starts a thread (line 1, 4)", "static scan: uses timers (line 3)"]
    assert summarize([]) == []


def test_finding_is_frozen():
    finding = scan_source("import gc\n")[0]
    with pytest.raises(AttributeError):
        finding.line = 3  # type: ignore[misc]
