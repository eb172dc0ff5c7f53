"""Text the standalone writer pastes into candidates: the docstring, runtime helpers, ModelNew.

Kept as Python string constants (not data files) so they ship with the package. Each
`{name}` is filled with `str.format`; literal braces in the emitted code are doubled.
"""

# Paragraphs of the candidate's module docstring; the writer wraps them to 88 columns.
DOCSTRING = [
    "ModelNew generated from the code torch.compile (Inductor) wrote for this task.",
    "Made by the Inductor proposer with torch {torch_version} on {device}, without an LLM. It is "
    "standalone: it needs torch and {toolchain}, never torch.compile, dynamo or Inductor. {build}",
    "The task's Model is embedded below so that ModelNew has the same parameters and buffers; "
    "forward hands them with the inputs to Inductor's `call` code, specialised to these inputs "
    "(shape, dtype): {shapes}.",
]

CPU_BUILD = ("The C++ kernels are built once at import into a shared library, with the compiler "
             "flags Inductor used, and called through ctypes on the tensors' data pointers. Their "
             "launch knobs (OpenMP team cap, each parallel loop's static chunk) are named constants "
             "in the C++ with the range each is safe in.")
CUDA_BUILD = ("The Triton kernels are plain @triton.jit functions; each launcher states its block "
              "sizes, num_warps and num_stages, the config Inductor's autotuner chose.")

# Helpers the generated `call` code uses, with public torch APIs only.
RUNTIME = '''

def _ind_attr(obj, path):
    """The parameter, buffer or tensor attribute at a dotted path ("linear.weight")."""
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _ind_layout(t, size, stride):
    """t itself when it has the size and strides the generated code was compiled for, else a copy that has."""
    if t.shape == size and t.stride() == stride:
        return t
    out = torch.empty_strided(size, stride, dtype=t.dtype, device=t.device)
    out.copy_(t)
    return out


def _ind_key(inputs):
    """What selects a specialisation: (shape, dtype) of tensors, the value of anything else."""
    return tuple((tuple(x.shape), x.dtype) if isinstance(x, torch.Tensor) else x for x in inputs)
'''

EMPTY_STRIDED = '''

def _ind_empty_strided_{name}(size, stride, dtype):
    return torch.empty_strided(size, stride, dtype=dtype, {options})
'''

REINTERPRET = '''

def _ind_reinterpret_tensor(t, size, stride, offset):
    """A view of t's storage at t's offset plus `offset` (Inductor's reinterpret_tensor)."""
    return t.as_strided(size, stride, t.storage_offset() + offset)
'''

BIAS_ADDMM = '''

def _ind_bias_addmm(inp, mat1, mat2, *, out=None, alpha=1, beta=1):
    """Inductor's bias_addmm: a broadcast bias row goes to addmm as a 1-D tensor."""
    if (inp.stride(0) == 0 and inp.size(0) != 0) or inp.size(0) == 1:
        return torch.addmm(inp[0], mat1, mat2, out=out, alpha=alpha, beta=beta)
    return torch.addmm(inp, mat1, mat2, out=out, alpha=alpha, beta=beta)
'''

COPY_IF_MISALIGNED = '''

def _ind_copy_if_misaligned(t):
    """t itself when its data is 16-byte aligned, as the kernels may assume, else a copy with its strides."""
    if t.data_ptr() % 16 == 0:
        return t
    extent = sum((n - 1) * s for n, s in zip(t.shape, t.stride())) + 1 if t.numel() else 0
    return torch.as_strided(torch.as_strided(t, (extent,), (1,)).clone(), t.shape, t.stride())
'''

# The helper each `_ind_` name in rewritten call code needs, pasted in only when used.
CALL_HELPERS = {
    "_ind_empty_strided_cpu": EMPTY_STRIDED.format(name="cpu", options='device="cpu"'),
    "_ind_empty_strided_cpu_pinned": EMPTY_STRIDED.format(name="cpu_pinned", options='device="cpu", pin_memory=True'),
    "_ind_empty_strided_cuda": EMPTY_STRIDED.format(name="cuda", options='device="cuda"'),
    "_ind_reinterpret_tensor": REINTERPRET,
    "_ind_bias_addmm": BIAS_ADDMM,
    "_ind_copy_if_misaligned": COPY_IF_MISALIGNED,
}

CPU_LOAD = '''

_IND_CFLAGS = {cflags}


def _ind_build(source, cflags):
    """The kernels' shared library, compiled once per source, flags, compiler and torch.

    Built in TORCH_EXTENSIONS_DIR (the judge's build directory) under a content hash and
    renamed into place, so concurrent or killed builds never leave half a library. It is
    linked against torch's libc10 and libtorch_cpu, which define what Inductor's headers
    declare out of line (vectorised math, checks) and which `import torch` has loaded.
    """
    torch_dir = os.path.dirname(torch.__file__)
    lib_dir = os.path.join(torch_dir, "lib")
    cxx = os.environ.get("CXX", "c++")
    key = hashlib.sha256("\\0".join([source, cxx, torch.__version__, *cflags]).encode()).hexdigest()[:16]
    folder = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(tempfile.gettempdir(), "kw_cpp_kernels")
    os.makedirs(folder, exist_ok=True)
    lib = os.path.join(folder, f"kw_ind_{{key}}.so")
    if not os.path.exists(lib):
        src = os.path.join(folder, f"kw_ind_{{key}}.{{os.getpid()}}.cpp")
        with open(src, "w") as fh:
            fh.write(source)
        tmp = f"{{lib}}.{{os.getpid()}}.tmp"
        # The judge's precompiled copy of Inductor's prelude, when it names one: first on the path.
        pch = os.environ.get("KERNELWRIGHT_CPP_PREFIX_PCH")
        cmd = [cxx, *cflags, "-fPIC", "-shared", *(["-I" + pch] if pch else []),
               "-I" + os.path.join(torch_dir, "include"), src, "-o", tmp,
               "-L" + lib_dir, "-lc10", "-ltorch_cpu", "-Wl,-rpath," + lib_dir]
        built = subprocess.run(cmd, capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError("building Inductor's C++ kernels failed:\\n" + built.stderr[-4000:])
        os.replace(tmp, lib)
    return ctypes.CDLL(lib)


_IND_LIB = _ind_build(_IND_CPP, _IND_CFLAGS)
_IND_LIB.kw_ind_error.restype = ctypes.c_char_p


def _ind_check(status):
    """Raise what the C++ side caught when an entry point returned non-zero."""
    if status != 0:
        raise RuntimeError(_IND_LIB.kw_ind_error().decode(errors="replace"))
'''

# One Python function per kernel, named as the call code names it, on the tensors' data pointers.
CPU_ENTRY = '''

_IND_LIB.{symbol}.argtypes = [{argtypes}]
_IND_LIB.{symbol}.restype = ctypes.c_int


def {name}({params}):
    _ind_check(_IND_LIB.{symbol}({args}))
'''

CPP_PRELUDE = '''#include <torch/csrc/inductor/cpp_prefix.h>
{includes}#include <exception>
#include <string>

namespace kw_ind_rt {{
thread_local std::string last_error;  // why the last entry call that returned 1 failed
}}  // namespace kw_ind_rt
{team}
extern "C" const char* kw_ind_error() {{ return kw_ind_rt::last_error.c_str(); }}
'''

# Launch knobs are named constants with the range they are safe in (`// range LO..HI`),
# which the parameter-mutation proposer reads.
CPP_TEAM = '''
namespace kw_ind_rt {{
// Inductor sized some per-thread arrays for {threads} threads when it generated these
// kernels: a team may be smaller, never larger, nor larger than torch's thread count.
constexpr int OMP_TEAM_CAP = {threads};  // range 1..{threads}
inline int omp_team() {{
    const int n = omp_get_max_threads();
    return n < OMP_TEAM_CAP ? n : OMP_TEAM_CAP;
}}
}}  // namespace kw_ind_rt
'''

CPP_ENTRY = '''
extern "C" int {symbol}({params}) noexcept {{
    try {{
        kw_ind_{name}::kernel({args});
        return 0;
    }} catch (const std::exception& e) {{
        kw_ind_rt::last_error = e.what();
    }} catch (...) {{
        kw_ind_rt::last_error = "a C++ exception of unknown type";
    }}
    return 1;
}}
'''

MODEL_NEW = '''

_IND_VARIANTS = {{
{variants}
}}


class ModelNew(Model):
    """Model's parameters and buffers; forward runs Inductor's generated kernels."""
{init}
    def forward({forward_params}):
        inputs = ({inputs})
        run = _IND_VARIANTS.get(_ind_key(inputs))
        if run is None:
            raise ValueError(
                f"no kernels were generated for inputs {{_ind_key(inputs)}}; "
                f"generated for: {{list(_IND_VARIANTS)}}"
            )
        return run(self, inputs)
'''

INIT = '''
    def __init__({params}):
        super().__init__({call})
'''
