"""Input sets the candidate's worker makes itself from the reference's seed (`local_inputs`, on
by default on CUDA): nothing crosses the judge, and the judge compares the set's fingerprint
with the reference's. Inputs are data, not secrets: a candidate that makes them wrongly, or lies
about them, only has its own outputs checked against the reference's on the true inputs."""

from __future__ import annotations

from tests.conftest import CANDIDATES

FALLBACK = "did not make the same input set"

# The same task, but its inputs depend on the process that makes them.
PER_PROCESS = '''
import os
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def forward(self, x):
        return F.gelu(x * 2 + 1) * torch.sigmoid(x)


def get_inputs():
    return [torch.randn(61, 1531) + os.getpid() * 1e-6]  # two processes, two pids


def get_init_inputs():
    return []
'''


def test_honest_candidate_makes_its_own_sets_and_is_accepted(judge):
    result = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", local_inputs=True)
    assert result.accepted, result.reasons
    assert not any(FALLBACK in f for f in result.findings), result.findings
    assert result.timing is not None and result.timing.speedup_vs_eager is not None


def test_a_task_whose_inputs_differ_between_processes_is_relayed(judge, tmp_path):
    task = tmp_path / "per_process.py"
    task.write_text(PER_PROCESS)
    result = judge(task, PER_PROCESS + "\n\nclass ModelNew(Model):\n    pass\n", local_inputs=True, timing=False)
    assert result.accepted, result.reasons
    assert sum(FALLBACK in f for f in result.findings) == 1, result.findings
