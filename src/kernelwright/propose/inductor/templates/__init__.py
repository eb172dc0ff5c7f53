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

CPU_BUILD = ("The C++ kernels are built once at import as a torch extension (load_inline, with "
             "the compiler flags Inductor used) and called as torch.ops.{namespace}.*.")
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
load_inline(
    "{namespace}",
    [_IND_CPP],
    extra_cflags=_IND_CFLAGS,
    extra_ldflags={ldflags},
    is_python_module=False,
    no_implicit_headers=True,
)
'''

CPP_PRELUDE = '''#include <torch/csrc/inductor/cpp_prefix.h>
#include <torch/library.h>
{includes}
// Inductor sized some per-thread arrays for {threads} threads when it generated these
// kernels: teams never exceed that, nor the thread count torch is set to.
namespace kw_ind_rt {{
inline int omp_team(int cap) {{
    const int n = omp_get_max_threads();
    return n < cap ? n : cap;
}}
}}  // namespace kw_ind_rt
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
