"""A small suite in KernelBench's layout, written by the tests from kernelwright's own fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.conftest import CANDIDATES, TASKS

ZEROS = '''
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, predictions, targets):
        return torch.zeros((), device=predictions.device)
'''

# Caches its first output and returns it for every later call: a cheat the judge must reject.
REPLAY = '''
import torch
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.kept = None

    def forward(self, x, y):
        if self.kept is None:
            self.kept = F.gelu(x) * y
        return self.kept
'''


# A task that fails when its inputs are made: an `error` record, and the bench carries on.
BROKEN_TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return x * 2


def get_inputs():
    raise RuntimeError("this task cannot make its inputs")


def get_init_inputs():
    return []
'''


def make_suite(root: Path) -> tuple[Path, Path]:
    """suite/ (4 tasks in 2 levels, one broken) and cands/ (every layout; honest and cheating)."""
    suite, cands = root / "suite", root / "cands"
    for rel, src in (("level1/1_GeluMul.py", "gelu_mul.py"), ("level1/2_Hinge.py", "hinge_loss.py"),
                     ("level2/1_LinearRelu.py", "linear_relu.py")):
        (suite / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(TASKS / src, suite / rel)
    (suite / "level1" / "README.md").write_text("not a task")
    (suite / "level2" / "2_Broken.py").write_text(BROKEN_TASK)
    (cands / "level1" / "2_Hinge").mkdir(parents=True)
    shutil.copy(CANDIDATES / "gelu_mul_torch.py", cands / "level1" / "1_GeluMul.py")
    shutil.copy(CANDIDATES / "hinge_loss_torch.py", cands / "level1" / "2_Hinge" / "honest.py")
    (cands / "level1" / "2_Hinge" / "zeros.py").write_text(ZEROS)
    (cands / "level_1_problem_1_sample_0_kernel.py").write_text(REPLAY)
    (cands / "level2").mkdir()
    (cands / "level2" / "2_Broken.py").write_text(BROKEN_TASK.replace("class Model(", "class ModelNew("))
    return suite, cands
