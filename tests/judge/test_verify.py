"""End-to-end behaviour of the judge on honest candidates (CPU)."""

from __future__ import annotations

import json

import pytest

from kernelwright import constants as C

from tests.conftest import CANDIDATES, TASKS


@pytest.mark.slow
def test_compile_baseline_is_timed_by_the_same_protocol(judge) -> None:
    result = judge("linear_relu", CANDIDATES / "linear_relu_torch.py", compile_baseline=True)
    assert result.accepted, result.reasons
    t = result.timing
    assert t.compile_ms is not None and t.compile_ms.median > 0 and t.speedup_vs_compile > 0
    assert t.eager_ms.batches == t.candidate_ms.batches
    # Interleaved with them in the base rounds; the extra rounds (a wide interval vs eager) are the
    # claim's, candidate and eager only.
    assert t.compile_ms.batches == min(t.candidate_ms.batches, C.TIMING_BATCHES)


def test_result_is_plain_json_with_phases_and_environment(judge) -> None:
    result = judge("linear_relu", CANDIDATES / "linear_relu_torch.py")
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["verdict"] == "accepted"
    assert {"start", "compile", "correctness", "timing"} <= set(data["phases_s"])
    assert data["environment"]["threads"] == 1
    assert any("copied 2 of 2" in f for f in data["findings"])
    # Trials cycle through every distribution.
    assert {c["distribution"] for c in data["correctness"]} == {"task", "shifted", "scaled", "positive"}


def test_trials_option_and_extra_shapes(judge, tmp_path) -> None:
    task = tmp_path / "task.py"
    task.write_text((TASKS / "gelu_mul.py").read_text()
                    + '\nKERNELWRIGHT = {"shapes": [{"batch_size": 3, "dim": 17}], '
                      '"exclude_distributions": ["scaled"]}\n')
    result = judge(task, CANDIDATES / "gelu_mul_torch.py", trials=7, timing=False)
    assert result.accepted, result.reasons
    shapes = [c.shape_variant for c in result.correctness]
    assert len(result.correctness) == 8 and "batch_size=3,dim=17" in shapes
    assert "scaled" not in {c.distribution for c in result.correctness}


def test_timing_without_input_perturbation(judge, tmp_path) -> None:
    """Tasks whose inputs must keep a structure (sorted, unique) can turn perturbation off."""
    task = tmp_path / "task.py"
    task.write_text((TASKS / "gelu_mul.py").read_text() + '\nKERNELWRIGHT = {"perturb_timing_inputs": False}\n')
    result = judge(task, CANDIDATES / "gelu_mul_torch.py")
    assert result.accepted, result.reasons
    assert result.environment["task_metadata"]["perturb_timing_inputs"] is False


def test_kernelbench_style_scalar_output_task(judge) -> None:
    """Two inputs, torch.distributions inputs, a 0-dim output: accepted; a wrong scalar is not."""
    result = judge("hinge_loss", CANDIDATES / "hinge_loss_torch.py")
    assert result.accepted, result.reasons
    wrong = (CANDIDATES / "hinge_loss_torch.py").read_text().replace(".mean()", ".mean() * 1.001")
    result = judge("hinge_loss", wrong, timing=False)
    assert result.checks == ["mismatch"], result.reasons


_FIRST_CALL_RAISES = '''
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the kernel failed to launch")
        return F.gelu(x * 2 + 1) * F.sigmoid(x)
'''


def test_a_candidate_whose_unchecked_first_call_raises_is_a_crash(judge) -> None:
    """The first call (on the warm-up set, while the reference makes the other sets) is not
    checked, but a raise there is reported as the crash it is, with the candidate's error."""
    result = judge("gelu_mul", _FIRST_CALL_RAISES, timing=False)
    assert result.checks == ["crash"], result.reasons
    assert "first call" in result.reasons[0].detail and "failed to launch" in result.reasons[0].detail
    assert result.correctness == []  # no trial ran


# Correct, and 0.3 ms slower in every other 50 ms window of the wall clock: whole batches land
# in a slow window or a fast one, so the speedup's interval stays wide across the bar, and a
# verdict with extra rounds adds them (24-48 rounds in three runs on the 2-core machine).
SPIKY = '''
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def forward(self, x):
        if int(time.time() * 20) % 2:
            time.sleep(0.0003)
        return F.gelu(x * 2 + 1) * torch.sigmoid(x)
'''


def test_a_search_verdict_adds_no_rounds_to_a_wide_interval(judge) -> None:
    """The search's verdicts only rank kernels; the crowned one's fresh re-judgement adds rounds."""
    result = judge("gelu_mul", SPIKY, extra_rounds=False)
    assert result.accepted, result.reasons
    assert result.timing is not None and result.timing.rounds == C.TIMING_BATCHES


def test_pending_gpu_work_is_reported_per_trial_and_absent_on_the_cpu(judge) -> None:
    from kernelwright.judge._support import finite_or_none

    result = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", timing=False)
    assert result.accepted, result.reasons
    assert result.correctness and all(t.pending_ms is None for t in result.correctness)
    assert json.loads(json.dumps(result.to_dict()))["correctness"][0]["pending_ms"] is None
    # What a worker reports is taken only as a finite number.
    assert [finite_or_none(v) for v in (0.01, 3, float("nan"), float("inf"), "0.1", True, None)] == \
        [0.01, 3.0, None, None, None, None, None]
