"""Candidate forms: one description for prompts, judge and search; every skeleton is a working candidate."""

from __future__ import annotations

import pytest

from kernelwright import forms
from kernelwright.propose import prompts
from kernelwright.propose.base import Parent, ProposalRequest
from tests.conftest import TASKS

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
