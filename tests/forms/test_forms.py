"""Candidate forms: one description for prompts, judge and search; every skeleton is a working candidate."""

from __future__ import annotations

import ctypes
import inspect
import re
import subprocess

import pytest

from kernelwright import forms
from kernelwright.propose import prompts
from kernelwright.propose.base import Parent, ProposalRequest
from tests.conftest import EXAMPLES, TASKS

TASK = TASKS / "relu_add.py"


@pytest.mark.parametrize("name", sorted(forms.FORMS))
def test_each_skeleton_is_recognised_as_its_own_form(name):
    assert forms.detect(forms.FORMS[name].skeleton()).name == name


def test_aliases_defaults_and_unknown_names():
    assert forms.get("cuda").name == "cuda_inline" and forms.get("cpp").name == "cpp_inline"
    assert forms.DEFAULT_TARGET == {"cuda": "nvrtc", "cpu": "c"}
    assert all(forms.FORMS[forms.DEFAULT_TARGET[d]].fast for d in ("cuda", "cpu"))
    assert [f.name for f in forms.for_device("cpu")] == ["c", "cpp_inline"]
    with pytest.raises(ValueError, match="unknown form"):
        forms.get("fortran")
    assert forms.detect("import torch\nclass ModelNew(torch.nn.Module): pass\n") is None


@pytest.mark.parametrize("name", sorted(forms.FORMS))
@pytest.mark.parametrize("stage", ["translate", "repair", "optimize", "crossover"])
def test_prompts_carry_the_form_rules_and_skeleton(name, stage):
    form = forms.FORMS[name]
    parents = (Parent("c-1", "print(1)", "accepted", 1.2, "fast"), Parent("c-2", "print(2)", "accepted", 1.1, "ok"))
    req = ProposalRequest(TASK.read_text(), "relu_add", name, form.device, stage, parents=parents)
    system, user = prompts.render(req)
    assert form.rules in system and form.skeleton().strip() in system
    assert "torch.relu(x) + y" in user and form.language in user + system


@pytest.mark.slow
@pytest.mark.parametrize("name", ["c", "cpp_inline"])
def test_cpu_skeletons_are_accepted(judge, name):
    result = judge(TASK, forms.FORMS[name].skeleton())
    assert result.accepted, result.reasons
    assert f"form: {forms.FORMS[name].language}" in result.findings
    assert any("work was done by custom code" in f for f in result.findings), result.findings


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.parametrize("name", ["nvrtc", "triton", "cuda_inline"])
def test_gpu_skeletons_are_accepted_and_their_kernels_seen(judge, name):
    result = judge(TASK, forms.FORMS[name].skeleton(), device="cuda")
    assert result.accepted, result.reasons
    assert any(f.startswith("custom kernels ran") for f in result.findings), result.findings


# --- NVRTC arguments: torch's launcher passes a Python int as a 32-bit C int, so sizes travel
# as two ints (low, high word) that the kernel joins into a long long. A kernel parameter wider
# than the value the launcher wrote makes the driver read past it: garbage, not an error.
NVRTC_FILES = {"skeleton": forms.FORMS["nvrtc"].skeleton(),
               **{p.parent.name: p.read_text() for p in sorted(EXAMPLES.glob("*/cuda_nvrtc.py"))}}
KERNEL_SIGNATURE = re.compile(r'extern "C"\s+__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(([^)]*)\)')
JOIN64 = re.compile(r"__device__ __forceinline__ long long join64\(int lo, int hi\) \{.*?\n\}", re.DOTALL)


def _namespace(source: str) -> dict:
    ns: dict = {"__name__": "nvrtc_candidate"}
    exec(compile(source, "nvrtc_candidate", "exec"), ns)  # noqa: S102  (defines only: nothing compiled or launched)
    return ns


def _kernel_params(source: str) -> list[tuple[str, str, str]]:
    """(kernel, parameter type, parameter name) of every extern "C" __global__ kernel in the source."""
    out = []
    for kernel, params in KERNEL_SIGNATURE.findall(source):
        for param in params.split(","):
            *words, name = param.replace("*", " * ").split()
            out.append((kernel, " ".join(words), name))
    return out


def test_torch_launcher_marshals_ints_as_c_int_and_floats_as_c_double():
    # What the NVRTC rules and docs/forms.md say; the same in torch 2.11 through 2.14.
    torch = pytest.importorskip("torch")
    call = inspect.getsource(torch.cuda._utils._CudaKernel.__call__)
    assert "ctypes.c_int(arg)" in call and "ctypes.c_double(arg)" in call and "ctypes.c_void_p(arg.data_ptr())" in call
    assert ctypes.c_int(2**31).value == -(2**31) and ctypes.c_int(2**32 + 5).value == 5  # wraps, no error


@pytest.mark.parametrize("name", sorted(NVRTC_FILES))
def test_nvrtc_kernels_take_sizes_as_two_32_bit_halves(name):
    params = _kernel_params(NVRTC_FILES[name])
    assert params, "no extern \"C\" __global__ kernel found"
    for kernel, ptype, pname in params:
        where = f"{kernel}({ptype} {pname})"
        if "*" in ptype:
            continue  # a tensor: the launcher passes its 64-bit data pointer
        # No 64-bit integer parameter (the launcher writes 4 bytes), no float (it writes a double).
        assert ptype in {"int", "double"}, f"{where}: only int (halves of a size) and double scalars"
        if ptype == "int":
            stem, _, half = pname.rpartition("_")
            assert half in {"lo", "hi"} and stem, f"{where}: a size goes in as <name>_lo, <name>_hi"
            assert (kernel, "int", f"{stem}_{'hi' if half == 'lo' else 'lo'}") in params, f"{where}: unpaired"
    assert JOIN64.search(NVRTC_FILES[name]), "join64 missing or changed"
    assert "*_i64(" in NVRTC_FILES[name], "sizes not passed through _i64"


@pytest.mark.parametrize("name", sorted(NVRTC_FILES))
def test_i64_halves_survive_the_launchers_c_int_and_join64(name, tmp_path):
    # The Python half of each file (_i64) and the kernel half (join64, compiled here for the host
    # from the file's own source) round-trip 64-bit values through ctypes.c_int, as torch marshals them.
    source = NVRTC_FILES[name]
    c_file = tmp_path / "join64.c"
    c_file.write_text("#define __device__\n#define __forceinline__\n" + JOIN64.search(source).group(0) + "\n")
    subprocess.run(["cc", "-O1", "-shared", "-fPIC", str(c_file), "-o", str(tmp_path / "join64.so")], check=True)
    join64 = ctypes.CDLL(str(tmp_path / "join64.so")).join64
    join64.argtypes, join64.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_longlong
    i64 = _namespace(source)["_i64"]
    for v in (0, 1, 1000, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 3 * 2**31 + 7, 2**40 + 12345, 2**63 - 1):
        lo, hi = i64(v)
        assert -(2**31) <= lo < 2**31 and -(2**31) <= hi < 2**31, v  # fit a C int, whatever the launcher checks
        assert join64(ctypes.c_int(lo).value, ctypes.c_int(hi).value) == v
