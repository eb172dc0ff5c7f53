"""The forms a candidate kernel can take: one description shared by prompts, judge and search.

A form says what language a kernel is written in, how it gets built and how long that
takes, what a proposer must follow to write one, and how to recognise it in a
candidate's source. Each form comes with a skeleton: a complete, working candidate for a
toy task (`relu(x) + y`) that shows the build-and-launch glue, so proposers adapt a
working file instead of inventing the glue each time. The fast forms build in about a
second or less and are the default targets: NVRTC on CUDA, plain C through ctypes on the
CPU. KernelBench-style files (`load_inline`, plain PyTorch) are still accepted unchanged.

Every form is judged alike: same process isolation, same checks. A C library or a raw
CUDA kernel can still write anywhere in its own process; the process boundary is the
defense, not the form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Form:
    """One way to write and build a candidate kernel."""

    name: str
    device: str  # "cuda" | "cpu"
    language: str  # how prompts and reports name it
    build: str  # what builds it and roughly how long that takes (measured: docs/forms.md)
    fast: bool  # builds in about a second or less: no prebuild worker needed
    rules: str  # what a proposer must follow, one paragraph
    markers: tuple[str, ...]  # regexes: a source in this form matches any of them

    def skeleton(self) -> str:
        """The form's working example candidate for the toy task relu(x) + y."""
        return resources.files("kernelwright.forms").joinpath("skeletons", f"{self.name}.py").read_text()


FORMS: dict[str, Form] = {f.name: f for f in (
    Form("nvrtc", "cuda", "CUDA C++ compiled by NVRTC", "NVRTC at first call, about 0.1 s", True,
         "Write each kernel as extern \"C\" __global__ CUDA C++ in a Python string (no torch or host "
         "headers), compile it with torch.cuda._compile_kernel(source, name) once and cache the result, "
         "and launch it from forward with kernel(grid=..., block=..., args=[tensors, ints, floats], "
         "shared_mem=...) on the current stream. The launcher passes a tensor as its data pointer, a "
         "Python int as a 32-bit C int (wrapped silently past 2**31) and a Python float as a C double: "
         "declare float arguments as double, and pass every size or count as two int parameters, "
         "its low and high 32-bit words (args=[..., *_i64(n)], joined in the kernel by join64 into a "
         "long long, both as in the skeleton); never declare a long long, int64_t or size_t parameter. "
         "Index with 64-bit integers wherever a product of sizes can reach 2**31. Allocate outputs "
         "with torch.empty*.",
         (r"torch\.cuda\._compile_kernel", r"torch\.cuda\.compile_kernel")),
    Form("triton", "cuda", "Triton", "Triton's JIT at first launch, a few seconds", True,
         "Write the kernels in Triton (@triton.jit) and launch them from forward with an explicit grid; "
         "keep block sizes, num_warps and num_stages as visible integer literals.",
         (r"@triton\.jit", r"import triton")),
    Form("c", "cpu", "C for the CPU, called through ctypes", "cc -O3 -shared, well under a second", True,
         "Write the kernels as plain C functions on raw pointers in a Python string, build them once with "
         "the system C compiler into a shared library under TORCH_EXTENSIONS_DIR (keyed by a hash of "
         "source and flags, renamed into place atomically) and call them through ctypes with "
         "tensor.data_ptr() of contiguous tensors. Parallelize with OpenMP only (the judge sets "
         "OMP_NUM_THREADS to PyTorch's thread count).",
         (r"ctypes\.CDLL",)),
    Form("cuda_inline", "cuda", "CUDA C++ through torch.utils.cpp_extension.load_inline",
         "nvcc and the host compiler, about 15 s split as the skeleton is (60-70 s KernelBench-style)", False,
         "Use load_inline only when the kernel needs what NVRTC lacks (CUTLASS, cuBLAS, host templates). "
         "Keep torch headers out of cuda_sources: put the kernels and a plain C launcher taking a "
         "cudaStream_t there, and the torch binding (at::cuda::getCurrentCUDAStream()) in cpp_sources, "
         "which must begin with #include <torch/extension.h> (the judge serves that header "
         "precompiled); pass no_implicit_headers=True so load_inline adds no torch header to the "
         ".cu file. That cuts the build from about 70 s to about 15 s.",
         (r"load_inline\([^)]*cuda_sources",)),
    Form("cpp_inline", "cpu", "C++ through torch.utils.cpp_extension.load_inline",
         "the host compiler with torch headers, about 11 s with the judge's precompiled header", False,
         "Build with load_inline(cpp_sources=..., functions=[...]); parallelize only through "
         "at::parallel_for so the thread count stays PyTorch's.",
         (r"load_inline\(",)),
)}
ALIASES = {"cuda": "cuda_inline", "cpp": "cpp_inline"}  # the target names of earlier releases
DEFAULT_TARGET = {"cuda": "nvrtc", "cpu": "c"}


def get(name: str) -> Form:
    """A form by name or alias; ValueError naming the known ones."""
    form = FORMS.get(ALIASES.get(name, name))
    if form is None:
        raise ValueError(f"unknown form {name!r}; known: {', '.join(sorted(FORMS) + sorted(ALIASES))}")
    return form


def for_device(device: str) -> list[Form]:
    """The forms that run on a device, fast ones first."""
    return sorted((f for f in FORMS.values() if f.device == device), key=lambda f: not f.fast)


def detect(source: str) -> Form | None:
    """The form a candidate's source is written in, or None (plain PyTorch, or unrecognised)."""
    for form in FORMS.values():
        if any(re.search(m, source) for m in form.markers):
            return form
    return None
