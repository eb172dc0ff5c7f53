"""kernelwright.verify judges a kernel for an nn.Module or a task file, as `kernelwright verify` does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import kernelwright
from kernelwright.api import ConversionError, KernelFallbackWarning, KernelRejectedError, UnverifiedInputError
from kernelwright.task.loader import InputError
from tests.api.modules import SCALE_SHIFT_C, SCALE_SHIFT_C_WRONG, ScaleShift

# Fast settings, as the judge fixture in tests/conftest.py uses: one thread, no torch.compile.
FAST = {"threads": 1, "compile_baseline": False}


def test_accepted_kernel_for_a_module_with_weights_and_a_value_argument(tmp_path):
    module = ScaleShift()
    x = torch.randn(64, 257)
    candidate = tmp_path / "scale_shift_c.py"
    candidate.write_text(SCALE_SHIFT_C)
    result = kernelwright.verify(module, candidate, (x, 0.5), **FAST)

    assert result.accepted and result.verdict == "accepted" and result.reasons == ()
    assert result.kernel_path == str(candidate) and result.kernel_source == SCALE_SHIFT_C
    assert result.device == "cpu" and Path(result.task_path).name == "scale_shift.py"
    assert [s.describe() for s in result.signatures] == ["(float32[64, 257] on cpu, 0.5)"]
    # The judge gave the candidate the module's real weights, by name.
    assert "weights: copied 2 of 2 reference parameters and buffers into ModelNew by name" in result.findings
    assert result.timing is not None and result.speedup_vs_eager is not None and result.speedup_vs_eager > 0
    as_json = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert as_json["verdict"] == "accepted" and as_json["kernel"]["path"] == str(candidate)
    assert as_json["signatures"] == [[{"kind": "tensor", "shape": [64, 257], "dtype": "float32", "device": "cpu"},
                                      {"kind": "value", "type": "float", "value": "0.5"}]]
    assert as_json["judge"]["verdict"] == "accepted"

    fast = result.module
    assert fast is result.module  # built once
    other = torch.randn(64, 257)
    torch.testing.assert_close(fast(other, 0.5), module(other, 0.5))
    with pytest.raises(UnverifiedInputError, match=r"\(float32\[64, 257\] on cpu, 0.25\) were not verified"):
        fast(other, 0.25)
    with pytest.raises(UnverifiedInputError, match="float32"):
        fast(torch.randn(8, 257), 0.5)

    lenient = result.build_module(fallback="original")
    small = torch.randn(8, 257)
    with pytest.warns(KernelFallbackWarning):
        out = lenient(small, 0.25)
    torch.testing.assert_close(out, module(small, 0.25))
    assert lenient.fallback_calls == 1


def test_wrong_kernel_given_as_source_is_rejected():
    result = kernelwright.verify(ScaleShift(), SCALE_SHIFT_C_WRONG, (torch.randn(64, 257), 0.5), timing=False, **FAST)
    assert result.verdict == "rejected" and not result.accepted
    assert result.checks == ["mismatch"], result.reasons
    assert result.kernel_path is None and result.kernel_source is None and result.signatures == ()
    with pytest.raises(KernelRejectedError, match="mismatch"):
        result.module  # noqa: B018
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["kernel"] is None


TASK = '''import torch
import torch.nn as nn

KERNELWRIGHT = {"shapes": [{"batch_size": 5}]}


class Model(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return torch.relu(self.linear(x))


batch_size = 37
in_features = 129
out_features = 67


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features]
'''

CANDIDATE = '''import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)

    def forward(self, x):
        return torch.clamp_min(torch.addmm(self.linear.bias, x, self.linear.weight.t()), 0)
'''


def test_task_file_verifies_its_shapes_and_builds_the_module_here(tmp_path):
    task = tmp_path / "linear_relu.py"
    task.write_text(TASK)
    rng = torch.get_rng_state()
    result = kernelwright.verify(str(task), CANDIDATE, device="cpu", timing=False, **FAST)
    assert result.accepted, result.reasons
    assert [s.describe() for s in result.signatures] == ["(float32[37, 129] on cpu)", "(float32[5, 129] on cpu)"]
    assert torch.equal(torch.get_rng_state(), rng)  # making the signatures left the caller's RNG alone

    fast = result.build_module(fallback="original")
    original = fast.original
    assert original is not None and type(original).__name__ == "Model"
    for rows in (37, 5):
        x = torch.randn(rows, 129)
        torch.testing.assert_close(fast(x), original(x))
    with pytest.warns(KernelFallbackWarning):
        fast(torch.randn(6, 129))
    assert fast.fallback_calls == 1


def test_bad_arguments_are_value_errors_before_any_judging(tmp_path):
    module, x = ScaleShift(), torch.randn(4, 257)
    with pytest.raises(ConversionError, match="example_inputs are required"):
        kernelwright.verify(module, SCALE_SHIFT_C)
    with pytest.raises(InputError, match="device='cuda'"):
        kernelwright.verify(module, SCALE_SHIFT_C, (x, 0.5), device="cuda")
    with pytest.raises(InputError, match="candidate file not found"):
        kernelwright.verify(module, str(tmp_path / "missing.py"), (x, 0.5))
    with pytest.raises(InputError, match="fallback"):
        kernelwright.verify(module, SCALE_SHIFT_C, (x, 0.5), fallback="maybe")
    task = tmp_path / "task.py"
    task.write_text(TASK)
    with pytest.raises(InputError, match="example_inputs only apply to an nn.Module"):
        kernelwright.verify(task, SCALE_SHIFT_C, (x,))
    with pytest.raises(InputError, match="task file not found"):
        kernelwright.verify(tmp_path / "nope.py", SCALE_SHIFT_C)
    with pytest.raises(InputError, match="nn.Module instance or a task file path"):
        kernelwright.verify(42, SCALE_SHIFT_C)  # type: ignore[arg-type]
