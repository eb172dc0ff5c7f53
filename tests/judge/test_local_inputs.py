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
    return [torch.randn(61, 1531) + (os.getpid() % 7)]


def get_init_inputs():
    return []
'''

# Reports the true fingerprint of each set it makes, then zeroes the set before any call.
LIES_ABOUT_ITS_INPUTS = '''
import torch
import torch.nn as nn
import torch.nn.functional as F
from kernelwright.worker import candidate as _c

_orig = _c.CandidateWorker.op_make_inputs


def _lying(self, header, blobs):
    reply = _orig(self, header, blobs)  # the true set, and its true fingerprint
    for t in self.h.sets[int(header["set_id"])]:
        t.zero_()
    return reply


_c.CandidateWorker.op_make_inputs = _lying


class ModelNew(nn.Module):
    def forward(self, x):
        return F.gelu(x * 2 + 1) * torch.sigmoid(x)
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
    if any(FALLBACK in f for f in result.findings):
        assert result.accepted, result.reasons
    else:  # the two workers' pids happened to agree mod 7: the sets were the same
        assert result.accepted, result.reasons


def test_a_candidate_that_lies_about_its_inputs_is_rejected(judge):
    result = judge("gelu_mul", LIES_ABOUT_ITS_INPUTS, local_inputs=True, timing=False)
    assert not result.accepted
    # Replacing the worker's code is caught as such; were it not, the zeroed inputs would give
    # outputs that differ from the reference's on the true inputs.
    assert result.checks[0] in {"tamper", "mismatch"}, result.reasons


# Makes every set it generates all zeros (an easy input), and computes honestly on what it gets.
ZERO_GENERATOR = """
import torch
import torch.nn as nn
import torch.nn.functional as F

_randn = torch.randn
torch.randn = lambda *a, **k: _randn(*a, **k).zero_()


class ModelNew(nn.Module):
    def forward(self, x):
        return F.gelu(x * 2 + 1) * torch.sigmoid(x)
"""


def test_a_candidate_that_makes_easy_inputs_gets_the_true_ones_instead(judge):
    result = judge("gelu_mul", ZERO_GENERATOR, local_inputs=True, timing=False)
    # Its fingerprint gives it away: the sets are relayed, and it is judged on them (or its
    # patch of torch is itself rejected).
    if result.accepted:
        assert any(FALLBACK in f for f in result.findings), result.findings
    else:
        assert result.checks[0] == "tamper", result.reasons
