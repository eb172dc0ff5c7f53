"""The Inductor proposer's CPU form: C++ through ctypes, with named OpenMP launch knobs.

The unit tests run the writer on kernel text shaped like Inductor's (torch 2.13/2.14) and
on the recorded captures under tests/fixtures/inductor; the slow ones compile the shared
library (about 2-3 s each here), call it, and have the judge accept a candidate and its
most extreme mutant, with no torch.compile in the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kernelwright import forms
from kernelwright.propose.inductor.capture import Capture, parse_capture
from kernelwright.propose.inductor.standalone import _cpu_kernel_code, _Kernel, build_candidate, cpp_unit
from kernelwright.propose.mutate import apply, find_tunables, neighbours

ROOT = Path(__file__).resolve().parents[2]
RECORDED = ROOT / "tests" / "fixtures" / "inductor"
CPU_RECORDINGS = sorted(RECORDED.glob("*/cpu/*.json"))

# An Inductor CPU kernel as torch 2.13 writes it for a 4-thread compile, with the loop forms
# the writer meets: literal bounds, two collapsed loops, a symbolic bound, too few iterations.
KERNEL = '''
#include <torch/csrc/inductor/cpp_prefix.h>
extern "C"  void kernel(const float* in_ptr0,
                       float* out_ptr0,
                       const int64_t ks0)
{
    #pragma omp parallel num_threads(4)
    {
        int tid = omp_get_thread_num();
        {
            #pragma omp for
            for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(1000L); x0+=static_cast<int64_t>(16L))
            {
                out_ptr0[x0] = in_ptr0[x0];
            }
        }
        {
            #pragma omp for collapse(2)
            for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(10L); x0+=static_cast<int64_t>(1L))
            {
                for(int64_t x1=static_cast<int64_t>(0L); x1<static_cast<int64_t>(30L); x1+=static_cast<int64_t>(1L))
                {
                    out_ptr0[x0 * 30 + x1] += 1.0f;
                }
            }
        }
        {
            #pragma omp for
            for(int64_t x0=static_cast<int64_t>(0L); x0<ks0; x0+=static_cast<int64_t>(1L))
            {
                out_ptr0[x0] += 1.0f;
            }
        }
        {
            #pragma omp for
            for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(3L); x0+=static_cast<int64_t>(1L))
            {
                out_ptr0[x0] += 1.0f;
            }
        }
    }
}
'''

SERIAL = '''
#include <torch/csrc/inductor/cpp_prefix.h>
extern "C"  void kernel(float* out_ptr0)
{
    for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(8L); x0+=static_cast<int64_t>(1L))
    {
        out_ptr0[x0] = 0.0f;
    }
}
'''


def _kernel(source: str = KERNEL, argtypes: tuple[str, ...] = ("const float*", "float*", "const int64_t")) -> _Kernel:
    return _Kernel("cpp_fused_0", "cpp", source, list(argtypes))


def _recorded(path: Path) -> tuple[str, Capture]:
    data = json.loads(path.read_text())
    cap = data["capture"]
    for variant in cap["variants"]:
        variant["wrapper"] = (path.parent / variant.pop("wrapper_file")).read_text()
    return data["task_source"], parse_capture(cap)


def _buildable(path: Path) -> tuple[str, Capture]:
    """A recording of this torch whose vector ISA this CPU runs (its kernels step by that width)."""
    import torch

    version = torch.__version__.split("+")[0]
    path = RECORDED / version / "cpu" / path.name
    if not path.exists():
        pytest.skip(f"no CPU capture recorded with torch {version}")
    task_source, cap = _recorded(path)
    isa = next((f.split("CPU_CAPABILITY_")[1] for f in cap.cflags if "CPU_CAPABILITY_" in f), "DEFAULT")
    if isa not in ("DEFAULT", torch.backends.cpu.get_cpu_capability()):
        pytest.skip(f"the recording's kernels use {isa}, which this CPU lacks")
    return task_source, cap


def _knob(source: str, name: str) -> int:
    return next(t.value for t in find_tunables(source) if t.name == name)


# --- the writer -----------------------------------------------------------------------


def test_team_cap_and_loop_chunks_are_named_knobs_with_their_ranges() -> None:
    source, _ = cpp_unit([_kernel()], threads=4)
    # Inductor's own team size becomes the cap, which teams may only go below.
    assert "num_threads(4)" not in source
    assert "#pragma omp parallel num_threads(kw_ind_rt::omp_team())" in source
    assert "constexpr int OMP_TEAM_CAP = 4;  // range 1..4" in source
    # ceil(ceil(1000 / 16) / 4) = 16 and ceil(10 * 30 / 4) = 75: Inductor's own static split.
    assert "constexpr int64_t OMP_CHUNK_0 = 16;  // range 1..16" in source
    assert "constexpr int64_t OMP_CHUNK_1 = 75;  // range 1..75" in source
    assert "#pragma omp for schedule(static, OMP_CHUNK_0)" in source
    assert "#pragma omp for collapse(2) schedule(static, OMP_CHUNK_1)" in source
    # A symbolic bound cannot be split statically and 3 iterations over 4 threads have one
    # split only: both loops are left as Inductor wrote them.
    assert source.count("schedule(") == 2 and "OMP_CHUNK_2" not in source


def test_mutate_sees_the_knobs_within_their_ranges() -> None:
    source, _ = cpp_unit([_kernel()], threads=4)
    found = {t.name: t for t in find_tunables(source)}
    assert set(found) == {"OMP_TEAM_CAP", "OMP_CHUNK_0", "OMP_CHUNK_1"}
    assert neighbours(found["OMP_TEAM_CAP"]) == [2]  # never above what the arrays were sized for
    assert neighbours(found["OMP_CHUNK_1"]) == [37]
    smaller = apply(source, [(found["OMP_CHUNK_1"], 37)])
    assert neighbours(next(t for t in find_tunables(smaller) if t.name == "OMP_CHUNK_1")) == [18, 74]
    assert neighbours(next(t for t in find_tunables(apply(source, [(found["OMP_CHUNK_1"], 74)]))
                           if t.name == "OMP_CHUNK_1")) == [37, 75]  # the top of the range stays reachable


def test_one_thread_or_no_parallel_region_has_no_knob_to_move() -> None:
    one, _ = cpp_unit([_kernel()], threads=1)
    assert "schedule(" not in one
    assert all(not neighbours(t) for t in find_tunables(one))
    serial, _ = cpp_unit([_kernel(SERIAL, ("float*",))], threads=4)
    assert "OMP_TEAM_CAP" not in serial and find_tunables(serial) == []


def test_each_kernel_gets_an_extern_c_entry_and_a_ctypes_wrapper() -> None:
    source, [entry] = cpp_unit([_kernel()], threads=4)
    assert 'extern "C" int kw_cpp_fused_0(const float* a0, float* a1, int64_t a2) noexcept' in source
    assert "kw_ind_cpp_fused_0::kernel(a0, a1, static_cast<int64_t>(a2));" in source
    assert entry.argtypes == ["ctypes.c_void_p", "ctypes.c_void_p", "ctypes.c_int64"]
    cap = Capture(device="cpu", torch_version="2.13.0", variants=[], cflags=["-O3"], threads=4)
    imports, code, _ = _cpu_kernel_code(cap, [_kernel()])
    assert "import ctypes" in imports and not any("cpp_extension" in i for i in imports)
    assert "def cpp_fused_0(a0, a1, a2):\n    _ind_check(_IND_LIB.kw_cpp_fused_0(a0.data_ptr(), a1.data_ptr(), a2))" \
        in code
    assert "_IND_LIB.kw_cpp_fused_0.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]" in code


@pytest.mark.parametrize("path", CPU_RECORDINGS, ids=lambda p: f"{p.parent.parent.name}-{p.stem}")
def test_recorded_cpu_capture_becomes_a_ctypes_candidate(path: Path) -> None:
    task_source, cap = _recorded(path)
    source = build_candidate(task_source, cap)
    assert "load_inline" not in source and "cpp_extension" not in source and "torch.ops." not in source
    form = forms.detect(source)
    assert form is not None and form.name == "c"
    assert re.search(r"^_IND_LIB = _ind_build\(_IND_CPP, _IND_CFLAGS\)$", source, flags=re.M)
    # Inductor leaves small loops serial (2.11 did so for linear_relu's 2479 elements on 16
    # threads): the team knob exists exactly when a kernel opens a parallel region.
    parallel = any("#pragma omp parallel" in v.wrapper for v in cap.variants)
    if cap.threads > 1 and parallel:
        assert _knob(source, "OMP_TEAM_CAP") == cap.threads
    else:
        assert not any(t.name == "OMP_TEAM_CAP" for t in find_tunables(source))


# --- slow: the library built and called ------------------------------------------------

RUN = r'''
import os, sys, importlib.util, torch
spec = importlib.util.spec_from_file_location("cand", sys.argv[1])
cand = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cand)
torch.manual_seed(0)
model = cand.Model(*cand.get_init_inputs())
new = cand.ModelNew(*cand.get_init_inputs())
new.load_state_dict(model.state_dict())
xs = cand.get_inputs()
with torch.no_grad():
    torch.testing.assert_close(new(*xs), model(*xs), rtol=1e-4, atol=1e-4)
print(sorted(os.listdir(os.environ["TORCH_EXTENSIONS_DIR"])))
'''


def _run(args: list[str], build: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(build), OMP_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-c", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_library_is_built_once_by_content_and_computes_the_model(tmp_path: Path) -> None:
    task_source, cap = _buildable(Path("gelu_mul_shapes.json"))
    path = tmp_path / "cand.py"
    path.write_text(build_candidate(task_source, cap))
    build = tmp_path / "build"
    first = _run([RUN, str(path)], build)
    assert first.returncode == 0, first.stderr[-2000:]
    [lib] = [p for p in build.iterdir() if p.suffix == ".so"]
    # Renamed into place: no temporary library is left, and a second import does not rebuild.
    assert not list(build.glob("*.tmp")) and re.fullmatch(r"kw_ind_[0-9a-f]{16}\.so", lib.name)
    mtime = lib.stat().st_mtime_ns
    assert _run([RUN, str(path)], build).returncode == 0
    assert lib.stat().st_mtime_ns == mtime


@pytest.mark.slow
def test_a_cpp_exception_is_raised_in_python_not_a_crash(tmp_path: Path) -> None:
    throws = _kernel('extern "C" void kernel(float* out_ptr0)\n{\n    throw std::runtime_error("kw: boom");\n}\n',
                     ("float*",))
    cap = Capture(device="cpu", torch_version="", variants=[], cflags=["-O1", "-std=c++17"], threads=2)
    imports, code, _ = _cpu_kernel_code(cap, [throws])
    module = "\n".join(["import torch", *imports]) + code + (
        "\ntry:\n    cpp_fused_0(torch.zeros(4))\nexcept RuntimeError as e:\n    print('raised:', e)\n")
    done = _run([module], tmp_path)
    assert done.returncode == 0 and "raised: kw: boom" in done.stdout, done.stderr[-2000:]


@pytest.mark.slow
def test_the_judge_accepts_a_candidate_and_its_most_extreme_mutant(judge: Any) -> None:
    task_source, cap = _buildable(Path("gelu_mul_shapes.json"))
    source = build_candidate(task_source, cap)
    task = ROOT / "tests" / "fixtures" / "tasks" / "gelu_mul_shapes.py"
    result = judge(task, source, threads=2)
    assert result.accepted, result.reasons
    assert "form: C for the CPU, called through ctypes" in result.findings
    # Every knob at the bottom of its range (one thread, chunks of one iteration) is still
    # correct; how fast it is does not matter here.
    low = apply(source, [(t, t.bounds[0]) for t in find_tunables(source) if t.bounds])
    assert low != source
    result = judge(task, low, threads=2, timing=False)
    assert result.accepted, result.reasons


def test_capture_checks_the_generated_code_a_stretch_at_a_time() -> None:
    # Whole float64 copies of a 6 GiB output ran a capture out of an H100's memory (level1/19):
    # the check now goes a stretch at a time and must still see a difference in the last one.
    import torch

    from kernelwright.propose.inductor.capture import _reproduces

    want = torch.linspace(-3, 3, 1000)
    assert _reproduces(want.clone(), want, chunk=64)
    late = want.clone()
    late[-1] += 0.1
    assert not _reproduces(late, want, chunk=64)
    # NaN where the forward has NaN is reproduced; an inf in the forward does not excuse every
    # other difference (the tolerance comes from the finite values).
    nan = want.clone()
    nan[500] = float("nan")
    assert _reproduces(nan.clone(), nan, chunk=64)
    inf = want.clone()
    inf[0] = float("inf")
    off = inf.clone()
    off[900] += 0.1
    assert _reproduces(inf.clone(), inf, chunk=64) and not _reproduces(off, inf, chunk=64)
