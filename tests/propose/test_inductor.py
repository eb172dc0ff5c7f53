"""The Inductor proposer: standalone candidates from torch.compile's output, and its failures.

The slow tests compile tasks with Inductor in a child process and judge the candidate
on the CPU (about 30 s each here). The unit tests run the writer on wrapper text shaped
like Inductor's, CUDA's included, so the Triton rewriting is checked without a GPU, and
on the wrapper modules each supported torch version really wrote, recorded under
tests/fixtures/inductor/<version>/ by scripts/record_inductor_fixtures.py (pure AST
work, so every version is tested on whichever torch is installed); the gpu tests judge
real CUDA candidates.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from kernelwright.propose.base import ProposalRequest
from kernelwright.propose.inductor import InductorProposer, Unsupported, generate_candidate
from kernelwright.propose.inductor.capture import Capture, LaunchConfig, Variant, compile_flags, parse_capture
from kernelwright.propose.inductor.standalone import TritonHelpers, build_candidate, parse_kernels, rewrite_call

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "tests" / "fixtures" / "tasks"
EXAMPLES = ROOT / "examples"
TRITON_HELPERS = Path(torch.__file__).parent / "_inductor" / "runtime" / "triton_helpers.py"
RECORDED = ROOT / "tests" / "fixtures" / "inductor"

# --- wrapper text as Inductor writes it (torch 2.13), trimmed ------------------------

CPU_WRAPPER = '''
import torch
from torch._inductor.async_compile import AsyncCompile
from torch._inductor.select_algorithm import extern_kernels
assert_size_stride = torch._C._dynamo.guards.assert_size_stride
empty_strided_cpu = torch._C._dynamo.guards._empty_strided_cpu
reinterpret_tensor = torch._C._dynamo.guards._reinterpret_tensor
async_compile = AsyncCompile()

cpp_fused_mul_relu_0 = async_compile.cpp_pybinding(['float*'], r\'\'\'
#include <torch/csrc/inductor/cpp_prefix.h>
extern "C"  void  kernel(float* in_out_ptr0)
{
    #pragma omp parallel
    {
        #pragma omp for
        for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(2479L); x0+=static_cast<int64_t>(1L))
        {
            in_out_ptr0[x0] = std::max(in_out_ptr0[x0], 0.0f) * 0.5f;
        }
    }
}
\'\'\')

async_compile.wait(globals())
del async_compile

class Runner:
    def __init__(self, partitions):
        self.partitions = partitions

    def call(self, args):
        arg0_1, arg1_1, arg2_1 = args
        args.clear()
        assert_size_stride(arg1_1, (67, ), (1, ), 'input')
        assert_size_stride(arg2_1, (37, 129), (129, 1), 'input')
        assert_size_stride(arg0_1, (67, 129), (129, 1), 'input')
        buf0 = empty_strided_cpu((37, 67), (67, 1), torch.float32)
        extern_kernels.addmm(arg1_1, arg2_1, reinterpret_tensor(arg0_1, (129, 67), (1, 129), 0), alpha=1, beta=1, out=buf0)
        del arg0_1
        buf1 = buf0; del buf0  # reuse
        cpp_fused_mul_relu_0(buf1)
        return (buf1, )

runner = Runner(partitions=[])
call = runner.call
'''

TRITON_KERNEL = """
import triton
import triton.language as tl

from torch._inductor.runtime import triton_helpers, triton_heuristics
from torch._inductor.runtime.triton_helpers import libdevice, math as tl_math
from torch._inductor.runtime.hints import AutotuneHint, ReductionHint, TileHint, DeviceProperties
triton_helpers.set_driver_to_gpu()

@triton_heuristics.persistent_reduction(
    size_hints={'x': 1024, 'r0_': 1024},
    reduction_hint=ReductionHint.INNER,
    filename=__file__,
    triton_meta={'signature': {'in_ptr0': '*fp32', 'out_ptr2': '*fp32', 'xnumel': 'i32', 'r0_numel': 'i32', 'XBLOCK': 'constexpr'}, 'device': DeviceProperties(type='cuda', index=0, multi_processor_count=132, cc=90, major=9, regs_per_multiprocessor=65536, max_threads_per_multi_processor=2048, warp_size=32), 'constants': {}},
    inductor_meta={'grid_type': 'Grid1D', 'kernel_name': 'triton_per_fused__softmax_0', 'mutated_arg_names': [], 'autotune_hints': set()}
)
@triton.jit
def triton_per_fused__softmax_0(in_ptr0, out_ptr2, xnumel, r0_numel, XBLOCK : tl.constexpr):
    xnumel = 512
    r0_numel = 1000
    R0_BLOCK: tl.constexpr = 1024
    rnumel = r0_numel
    RBLOCK: tl.constexpr = R0_BLOCK
    xoffset = tl.program_id(0) * XBLOCK
    xindex = xoffset + tl.arange(0, XBLOCK)[:, None]
    xmask = xindex < xnumel
    r0_index = tl.arange(0, R0_BLOCK)[None, :]
    r0_mask = r0_index < r0_numel
    x0 = xindex
    tmp0 = tl.load(in_ptr0 + (r0_index + 1000*x0), r0_mask & xmask, other=0.0)
    tmp1 = tl.broadcast_to(tmp0, [XBLOCK, R0_BLOCK])
    tmp3 = tl.where(r0_mask & xmask, tmp1, float("-inf"))
    tmp4 = triton_helpers.max2(tmp3, 1)[:, None]
    tmp5 = tmp0 - tmp4
    tmp6 = libdevice.exp(tmp5)
    tmp7 = tl.broadcast_to(tmp6, [XBLOCK, R0_BLOCK])
    tmp9 = tl.where(r0_mask & xmask, tmp7, 0)
    tmp10 = tl.sum(tmp9, 1)[:, None]
    tmp11 = tmp6 / tmp10
    tl.store(out_ptr2 + (r0_index + 1000*x0), tmp11, r0_mask & xmask)
"""

CUDA_WRAPPER = f'''
import torch
from torch._inductor.async_compile import AsyncCompile
from torch._C import _cuda_getCurrentRawStream as get_raw_stream
assert_size_stride = torch._C._dynamo.guards.assert_size_stride
empty_strided_cuda = torch._C._dynamo.guards._empty_strided_cuda
async_compile = AsyncCompile()

triton_per_fused__softmax_0 = async_compile.triton('triton_per_fused__softmax_0', {TRITON_KERNEL!r}, device_str='cuda')

async_compile.wait(globals())
del async_compile

def call(args):
    arg0_1, = args
    args.clear()
    assert_size_stride(arg0_1, (512, 1000), (1000, 1))
    with torch.cuda._DeviceGuard(0):
        torch.cuda.set_device(0)
        buf2 = empty_strided_cuda((512, 1000), (1000, 1), torch.float32)
        stream0 = get_raw_stream(0)
        triton_per_fused__softmax_0.run(arg0_1, buf2, 512, 1000, stream=stream0)
        del arg0_1
    return (buf2, )
'''

SOFTMAX_TASK = (EXAMPLES / "softmax" / "task.py").read_text()


def _no_runtime_compiler_imports(source: str) -> None:
    tree = ast.parse(source)
    assert ast.get_docstring(tree) and torch.__version__ in ast.get_docstring(tree)
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        for name in names:
            assert not name.startswith(("kernelwright", "torch._dynamo", "torch._inductor")), name
    assert "torch.compile(" not in source and "triton_heuristics" not in source


# --- unit: the writer ------------------------------------------------------------------


def test_compile_flags_keep_codegen_flags_only() -> None:
    cmd = ("g++ /c/k.cpp -D TORCH_INDUCTOR_CPP_WRAPPER -D CPU_CAPABILITY_AVX2 -O3 -ffp-contract=off "
           "-shared -fPIC -std=c++20 -fopenmp -I/torch/include -mavx2 -mfma -o /c/k.so -ltorch -L/torch/lib")
    assert compile_flags(cmd) == ["-DCPU_CAPABILITY_AVX2", "-O3", "-ffp-contract=off", "-std=c++20",
                                  "-fopenmp", "-mavx2", "-mfma"]


def test_call_is_rewritten_with_public_torch_names() -> None:
    tree = ast.parse(CPU_WRAPPER)
    call = rewrite_call(tree, "_call_v0", parse_kernels(tree, ""), {"addmm": "torch.addmm"})
    assert "torch.addmm(arg1_1, arg2_1, _ind_reinterpret_tensor(arg0_1, (129, 67), (1, 129), 0)" in call.source
    assert "_ind_empty_strided_cpu((37, 67)" in call.source
    assert "assert_size_stride" not in call.source and "extern_kernels" not in call.source
    assert call.arg_names == ["arg0_1", "arg1_1", "arg2_1"]
    assert call.layouts["arg0_1"] == ((67, 129), (129, 1))
    assert call.runtime == {"torch", "_ind_empty_strided_cpu", "_ind_reinterpret_tensor"}


def test_grouped_and_dtype_asserts_are_dropped_with_their_layouts_recorded() -> None:
    # torch 2.14 asserts several inputs at once, just before the first kernel that reads them.
    wrapper = CPU_WRAPPER.replace(
        "        assert_size_stride(arg1_1, (67, ), (1, ), 'input')\n"
        "        assert_size_stride(arg2_1, (37, 129), (129, 1), 'input')\n", "").replace(
        "        assert_size_stride(arg0_1, (67, 129), (129, 1), 'input')\n",
        "        assert_size_stride_grouped((arg0_1, arg1_1), ((67, 129), (67, )), ((129, 1), (1, )), 'input')\n"
        "        assert_tensor_metadata(arg2_1, (37, 129), (129, 1), torch.float32, 'input')\n"
        "        arg2_1 = copy_if_misaligned(arg2_1)\n")
    tree = ast.parse(wrapper)
    call = rewrite_call(tree, "_call_v0", parse_kernels(tree, ""), {"addmm": "torch.addmm"})
    assert "assert_" not in call.source
    assert "arg2_1 = _ind_copy_if_misaligned(arg2_1)" in call.source
    assert call.layouts == {"arg0_1": ((67, 129), (129, 1)), "arg1_1": ((67,), (1,)), "arg2_1": ((37, 129), (129, 1))}
    assert "_ind_copy_if_misaligned" in call.runtime


def test_misaligned_inputs_are_copied_with_their_strides() -> None:
    from kernelwright.propose.inductor import templates

    scope: dict[str, Any] = {"torch": torch}
    exec(templates.CALL_HELPERS["_ind_copy_if_misaligned"], scope)
    copy_if_misaligned = scope["_ind_copy_if_misaligned"]
    base = torch.arange(64, dtype=torch.float32)
    aligned = base[:32].view(4, 8).t()
    assert copy_if_misaligned(aligned) is aligned
    shifted = base[1:33].view(4, 8).t()
    copy = copy_if_misaligned(shifted)
    assert copy.data_ptr() % 16 == 0 and copy.stride() == shifted.stride() and torch.equal(copy, shifted)


@pytest.mark.parametrize("line, why", [
    ("buf9 = alloc_from_pool(buf1, 0, torch.float32, (4,), (1,))", "alloc_from_pool"),
    ("extern_kernels._mm_plus_mm(buf1, buf1, buf1, buf1, out=buf1)", "_mm_plus_mm"),
])
def test_code_without_standalone_equivalent_is_unsupported(line: str, why: str) -> None:
    wrapper = CPU_WRAPPER.replace("        return (buf1, )", f"        {line}\n        return (buf1, )")
    tree = ast.parse(wrapper)
    with pytest.raises(Unsupported, match=why):
        rewrite_call(tree, "_call_v0", parse_kernels(tree, ""), {"addmm": "torch.addmm"})


def _cuda_capture() -> Capture:
    variant = Variant(inputs=[["tensor", [512, 1000], "torch.float32"]], wrapper=CUDA_WRAPPER,
                      args=[["input", 0]], output="single",
                      launch={"triton_per_fused__softmax_0": LaunchConfig({"XBLOCK": 8}, 8, 1, "Grid1D")})
    return Capture(device="cuda", torch_version=torch.__version__, variants=[variant], cflags=[], threads=1,
                   triton_helpers=TRITON_HELPERS.read_text())


def _helper_closure(helpers_source: str, used: set[str]) -> set[str]:
    """The triton_helpers definitions `used` reach, by the test's own walk of that module's names."""
    defs: dict[str, ast.stmt] = {}
    for node in ast.parse(helpers_source).body:
        if isinstance(node, ast.FunctionDef):
            defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    defs[target.id] = node
    reached: set[str] = set()
    todo = sorted(used)
    while todo:
        name = todo.pop()
        if name in reached or name not in defs:
            continue
        reached.add(name)
        node = defs[name]
        local = {a.arg for a in node.args.args} if isinstance(node, ast.FunctionDef) else set()
        local |= {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name) and n.id not in local]
    return reached


def _assert_helpers_copied(source: str, kernels: list[str], helpers_source: str) -> None:
    """Every triton_helpers.X the kernels use, and all they use, is in the candidate as _th_X."""
    # In the kernel functions only: their module's set_driver_to_gpu() call is not kept.
    used = {n.attr for k in kernels for fn in ast.parse(k).body if isinstance(fn, ast.FunctionDef)
            for n in ast.walk(fn) if isinstance(n, ast.Attribute) and ast.unparse(n.value) == "triton_helpers"}
    expected = _helper_closure(helpers_source, used)
    assert used <= expected, f"the kernels use helpers this torch lacks: {sorted(used - expected)}"
    tree = ast.parse(source)
    copied = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("_th_")}
    copied |= {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
               for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
               if isinstance(t, ast.Name) and t.id.startswith("_th_")}
    assert copied == {"_th_" + n for n in expected}
    functions = [n for n in expected if f"\ndef {n}(" in helpers_source]
    for name in functions:
        assert f"@triton.jit\ndef _th_{name}(" in source, name
    assert "triton_helpers" not in source


def test_cuda_candidate_is_plain_triton_with_literal_launch_parameters() -> None:
    source = build_candidate(SOFTMAX_TASK, _cuda_capture())
    _no_runtime_compiler_imports(source)
    assert "@triton.jit\ndef triton_per_fused__softmax_0(in_ptr0, out_ptr2, xnumel, r0_numel, XBLOCK: tl.constexpr)" \
        in source
    launcher = source[source.index("def _launch_triton_per_fused__softmax_0"):]
    assert launcher.splitlines()[1:4] == [
        "    XBLOCK = 8",
        "    grid = (triton.cdiv(xnumel, XBLOCK), 1, 1)",
        "    triton_per_fused__softmax_0[grid](in_ptr0, out_ptr2, xnumel, r0_numel, XBLOCK=XBLOCK, "
        "num_warps=8, num_stages=1)"]
    assert "_launch_triton_per_fused__softmax_0(arg0_1, buf2, 512, 1000)" in source
    # Inductor's helpers are copied in under _th_ names, with what they call, as plain
    # @triton.jit: which ones max2 reaches is up to this torch's triton_helpers.
    assert "tmp4 = _th_max2(tmp3, 1)[:, None]" in source
    assert {"max2", "maximum"} <= _helper_closure(TRITON_HELPERS.read_text(), {"max2"})
    _assert_helpers_copied(source, [TRITON_KERNEL], TRITON_HELPERS.read_text())
    _check_variant(ast.parse(source), 0, _cuda_capture().variants[0], "")  # what recorded CUDA wrappers get
    assert "from triton.language.extra import libdevice" in source
    assert "get_raw_stream" not in source and "_DeviceGuard" not in source


def test_launch_parameters_are_what_parameter_mutation_varies() -> None:
    mutate = pytest.importorskip("kernelwright.propose.mutate")
    names = {t.name for t in mutate.find_tunables(build_candidate(SOFTMAX_TASK, _cuda_capture()))}
    assert {"XBLOCK", "num_warps", "num_stages"} <= names


def test_helpers_outside_plain_triton_jit_are_unsupported() -> None:
    with pytest.raises(Unsupported, match="if_mask"):
        TritonHelpers(TRITON_HELPERS.read_text()).closure({"if_mask"})


def test_triton_grid_types_beyond_1d_2d_3d_are_unsupported() -> None:
    cap = _cuda_capture()
    launch = {"triton_per_fused__softmax_0": LaunchConfig({"XBLOCK": 8}, 8, 1, "CooperativeReductionGrid")}
    cap.variants[0] = dataclasses.replace(cap.variants[0], launch=launch)
    with pytest.raises(Unsupported, match="CooperativeReductionGrid"):
        build_candidate(SOFTMAX_TASK, cap)


# --- unit: the wrappers each supported torch version really wrote ------------------------


def _recorded(path: Path) -> tuple[str, Capture]:
    """(task source, capture) of a fixture written by scripts/record_inductor_fixtures.py."""
    data = json.loads(path.read_text())
    cap = data["capture"]
    for variant in cap["variants"]:
        variant["wrapper"] = (path.parent / variant.pop("wrapper_file")).read_text()
    if "triton_helpers_file" in cap:
        cap["triton_helpers"] = (path.parent / cap.pop("triton_helpers_file")).read_text()
    return data["task_source"], parse_capture(cap)


RECORDINGS = sorted(RECORDED.glob("*/*/*.json"))
HELPER_VERSIONS = sorted(RECORDED.glob("*/triton_helpers.txt"))


def _fixture_id(path: Path) -> str:
    return path.relative_to(RECORDED).with_suffix("").as_posix()


def _runtime_names(wrapper: ast.Module) -> set[str]:
    """What the wrapper module binds besides its kernels: Inductor's runtime, never the candidate's."""
    names: set[str] = set()
    for node in wrapper.body:
        if isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
        elif isinstance(node, ast.Assign) and not ast.unparse(node.value).startswith("async_compile."):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names - {"call", "runner", "recursively_apply_fns"}


def _free_loads(fn: ast.FunctionDef) -> set[str]:
    stored = {a.arg for a in fn.args.args}
    stored |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    return {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - stored


def _asserted_inputs(wrapper: ast.Module) -> set[str]:
    """Names of the call's tensors whose size and stride the wrapper asserts, in any version's form."""
    out: set[str] = set()
    for node in ast.walk(wrapper):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in (
                "assert_size_stride", "assert_size_stride_grouped", "assert_tensor_metadata") and node.args:
            first = node.args[0]
            out |= {e.id for e in (first.elts if isinstance(first, ast.Tuple) else [first])
                    if isinstance(e, ast.Name)}
    return out


def _check_variant(candidate: ast.Module, index: int, variant: Variant, prefix: str) -> None:
    wrapper = ast.parse(variant.wrapper)
    defs = {n.name: n for n in candidate.body if isinstance(n, ast.FunctionDef)}
    call = defs[f"_call_v{index}"]
    module_names = set(defs) | {t.id for n in candidate.body if isinstance(n, ast.Assign)
                                for t in n.targets if isinstance(t, ast.Name)}
    module_names |= {a.asname or a.name.split(".")[0] for n in candidate.body
                     if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    free = _free_loads(call)
    # No Inductor runtime name is left, and everything call code uses is defined by the candidate.
    assert not free & (_runtime_names(wrapper) - set(parse_kernels(wrapper, ""))), free
    assert free <= module_names | set(dir(builtins)), sorted(free - module_names)
    # Every asserted input layout is enforced where call's arguments are gathered.
    run = ast.unparse(defs[f"_run_v{index}"])
    kernels = parse_kernels(wrapper, prefix)
    layouts = rewrite_call(wrapper, "c", kernels, variant.extern).layouts
    assert set(layouts) == _asserted_inputs(wrapper)
    assert run.count("_ind_layout(") == len(layouts)
    # Each Triton launcher states the captured config as literals: warps, stages, and the
    # value of every constexpr block size the kernel takes.
    for name, cfg in variant.launch.items():
        launcher = ast.unparse(defs[f"_launch_{prefix}{name}"])
        assert f"num_warps={cfg.num_warps}, num_stages={cfg.num_stages}" in launcher
        params = defs[prefix + name].args.args
        for key in [p.arg for p in params if p.annotation is not None and "constexpr" in ast.unparse(p.annotation)]:
            assert f"{key} = {cfg.kwargs[key]}" in launcher, (name, key)


@pytest.mark.parametrize("path", RECORDINGS, ids=_fixture_id)
def test_recorded_wrapper_becomes_a_standalone_candidate(path: Path) -> None:
    task_source, cap = _recorded(path)
    source = build_candidate(task_source, cap)
    candidate = ast.parse(source)
    assert cap.torch_version in (ast.get_docstring(candidate) or "")
    assert "torch._C._dynamo" not in source and "torch._inductor" not in source
    for i, variant in enumerate(cap.variants):
        _check_variant(candidate, i, variant, f"v{i}_" if len(cap.variants) > 1 else "")
    if cap.device == "cuda":
        kernels = [k.source for v in cap.variants for k in parse_kernels(ast.parse(v.wrapper), "").values()]
        _assert_helpers_copied(source, kernels, cap.triton_helpers or "")


def test_every_supported_version_is_recorded() -> None:
    versions = {p.relative_to(RECORDED).parts[0].rsplit(".", 1)[0] for p in RECORDINGS}
    # 2.11 is the GPU machine's torch (recorded there, CPU and CUDA); 2.12 was not available to record.
    assert {"2.11", "2.13", "2.14"} <= versions, versions
    assert any(p.parts[-2] == "cuda" for p in RECORDINGS), "no CUDA wrapper is recorded"


@pytest.mark.parametrize("helpers", HELPER_VERSIONS, ids=lambda p: p.parent.name)
def test_triton_helpers_of_each_version_are_copied_as_plain_triton(helpers: Path) -> None:
    cap = dataclasses.replace(_cuda_capture(), triton_helpers=helpers.read_text())
    source = build_candidate(SOFTMAX_TASK, cap)
    _assert_helpers_copied(source, [TRITON_KERNEL], helpers.read_text())


# --- the proposer's failures are proposals, never exceptions ----------------------------

GRAPH_BREAK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        if x.sum() > 0:  # data-dependent control flow: no single graph
            return x * 2
        return x - 1


def get_inputs():
    return [torch.randn(8, 8)]


def get_init_inputs():
    return []
'''


def _request(task_source: str, device: str = "cpu", target: str = "cpp") -> ProposalRequest:
    return ProposalRequest(task_source=task_source, task_name="t", target=target, device=device, stage="translate")


def test_a_graph_break_is_a_failure() -> None:
    proposal = InductorProposer(timeout_s=120).propose(_request(GRAPH_BREAK))
    assert proposal.source is None
    assert proposal.failure is not None and "torch.compile failed" in proposal.failure
    assert "data-dependent" in proposal.failure.lower()


def test_a_crashing_task_is_a_failure() -> None:
    crash = GRAPH_BREAK.replace("    def forward(self, x):", "    def __init__(self):\n        super().__init__()\n"
                                "        import os\n        os._exit(3)\n\n    def forward(self, x):")
    proposal = InductorProposer(timeout_s=120).propose(_request(crash))
    assert proposal.source is None and proposal.failure == "the torch.compile process died (exit code 3)"


def test_a_hanging_task_times_out_and_is_not_cached() -> None:
    hang = GRAPH_BREAK.replace("def get_init_inputs():", "def get_init_inputs():\n    import time\n"
                               "    time.sleep(600)")
    proposer = InductorProposer(timeout_s=3)
    t0 = time.monotonic()
    proposal = proposer.propose(_request(hang))
    assert time.monotonic() - t0 < 30
    assert proposal.failure == "torch.compile did not finish within 3 s"
    assert proposer._cache == {}  # a timeout may be transient: the next request tries again


def test_an_unknown_device_is_a_failure() -> None:
    proposal = InductorProposer().propose(_request(SOFTMAX_TASK, device="mps", target="cpp"))
    assert proposal.source is None and "'mps'" in (proposal.failure or "")


# --- slow: real candidates on the CPU, judged ------------------------------------------

CPU_TASKS = {
    "gelu_mul": TASKS / "gelu_mul.py",
    "linear_relu": TASKS / "linear_relu.py",
    "softmax": EXAMPLES / "softmax" / "task.py",
}


@pytest.fixture(scope="module")
def cpu_proposer() -> InductorProposer:
    """One proposer for the module, so its cache is shared by the tests that use it."""
    return InductorProposer(timeout_s=300)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(CPU_TASKS))
def test_cpu_candidate_is_accepted_by_the_judge(task: str, cpu_proposer: InductorProposer, judge: Any) -> None:
    path = CPU_TASKS[task]
    proposal = cpu_proposer.propose(_request(path.read_text()))
    assert proposal.failure is None and proposal.source is not None, proposal.failure
    _no_runtime_compiler_imports(proposal.source)
    # The C++ kernels are built by the candidate at import, into a library called through ctypes.
    assert re.search(r"^_IND_LIB = _ind_build\(", proposal.source, flags=re.M)
    result = judge(path, proposal.source)
    assert result.accepted, result.reasons
    # The library's build (a compiler process writing the .so where TORCH_EXTENSIONS_DIR says,
    # with $CXX) and its calls on data pointers draw these scan rules by design, as the C
    # form's do; any other rule would be a fault of the writer.
    form_rules = ("loads native code through ctypes", "spawns a process", "writes, deletes or reopens files",
                  "reads tensor addresses", "reads or changes environment variables")
    assert not [f for f in result.findings if f.startswith("static scan") and not any(
        f.startswith(f"static scan: {rule}") for rule in form_rules)], result.findings
    # The same request again comes from the cache, not from another compile.
    t0 = time.monotonic()
    assert cpu_proposer.propose(_request(path.read_text())) is proposal
    assert time.monotonic() - t0 < 1.0


@pytest.mark.slow
def test_each_task_shape_gets_its_own_specialisation(judge: Any) -> None:
    path = TASKS / "gelu_mul_shapes.py"
    source = generate_candidate(path, "cpu")
    assert "(((61, 1531), torch.float32),): _run_v0" in source
    assert "(((7, 33), torch.float32),): _run_v1" in source
    result = judge(path, source)
    assert result.accepted, result.reasons


# --- gpu: real candidates on CUDA, judged ------------------------------------------------


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("example", ["elementwise", "softmax"])
def test_cuda_candidate_is_accepted_by_the_judge(example: str, judge: Any) -> None:
    path = EXAMPLES / example / "task.py"
    proposal = InductorProposer(timeout_s=600).propose(_request(path.read_text(), device="cuda", target="triton"))
    assert proposal.failure is None and proposal.source is not None, proposal.failure
    _no_runtime_compiler_imports(proposal.source)
    assert "@triton.jit" in proposal.source and "num_warps=" in proposal.source
    result = judge(path, proposal.source, device="cuda")
    assert result.accepted, result.reasons
