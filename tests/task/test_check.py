"""`kernelwright check-task`: tasks that cannot tell work from no work are flagged, each with why;
honest tasks are not; a task that fails or kills its process is a row, never the end of the run."""

from __future__ import annotations

import json
import subprocess
import sys

from kernelwright.task.check import Flag, check_task
from tests.conftest import TASKS

HEAD = "import torch\nimport torch.nn as nn\n\n"
TAIL = "\n\ndef get_inputs():\n    return [torch.randn(32, 64)]\n\n\ndef get_init_inputs():\n    return []\n"

ZEROS = HEAD + "class Model(nn.Module):\n    def forward(self, x):\n        return x - x\n" + TAIL
RELU_AFTER_SOFTMAX = HEAD + ("class Model(nn.Module):\n    def forward(self, x):\n"
                             "        return torch.relu(torch.softmax(x, dim=1))\n") + TAIL
IGNORES_WEIGHTS = HEAD + ("class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                          "        self.lin = nn.Linear(64, 64)\n\n    def forward(self, x):\n"
                          "        return torch.tanh(x) + self.lin(x) * 0\n") + TAIL
CRASHES = HEAD + ("import os\n\n\nclass Model(nn.Module):\n    def forward(self, x):\n        os._exit(9)\n") + TAIL


def _task(tmp_path, name: str, source: str):
    path = tmp_path / name
    path.write_text(source)
    return path


def test_each_kind_of_degenerate_task_is_flagged_with_its_reason(tmp_path):
    zeros = check_task(_task(tmp_path, "zeros.py", ZEROS), "cpu")
    assert Flag.UNDER_TOLERANCE in zeros.flags and Flag.INPUT_INDEPENDENT in zeros.flags, zeros
    relu = check_task(_task(tmp_path, "relu.py", RELU_AFTER_SOFTMAX), "cpu")
    assert relu.flags == [Flag.DELETABLE_WORK] and "relu" in relu.details[0], relu
    weights = check_task(_task(tmp_path, "weights.py", IGNORES_WEIGHTS), "cpu")
    assert Flag.WEIGHT_INDEPENDENT in weights.flags and Flag.INPUT_INDEPENDENT not in weights.flags, weights
    assert any("parameters" in d for d in weights.details)
    # The judge's own degenerate fixture: 1 + 1e-6 * tanh(x), the tanh deletable too.
    near = check_task(TASKS / "degenerate_near_constant.py", "cpu")
    assert Flag.INPUT_INDEPENDENT in near.flags and Flag.DELETABLE_WORK in near.flags, near


def test_honest_tasks_are_not_flagged():
    for name in ("gelu_mul.py", "linear_relu.py", "relu_add.py", "hinge_loss.py", "diag_matmul.py"):
        c = check_task(TASKS / name, "cpu")
        assert not c.flags and not c.error, (name, c)


def test_a_task_that_kills_its_process_is_a_row_with_the_reason(tmp_path):
    c = check_task(_task(tmp_path, "crash.py", CRASHES), "cpu")
    assert c.error.startswith("the check process failed (exit 9)") and not c.flags


def test_a_suite_is_checked_task_by_task_with_one_json_object(tmp_path):
    suite = tmp_path / "suite" / "level1"
    suite.mkdir(parents=True)
    (suite / "1_Zeros.py").write_text(ZEROS)
    (suite / "2_GeluMul.py").write_text((TASKS / "gelu_mul.py").read_text())
    (suite / "3_Broken.py").write_text(HEAD + "class Model(nn.Module):\n    pass\n\n\ndef get_inputs():\n"
                                       "    raise RuntimeError('no inputs')\n\n\ndef get_init_inputs():\n    return []\n")
    r = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "check-task", str(tmp_path / "suite"),
                        "--device", "cpu", "--json"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    rows = {t["task"]: t for t in doc["tasks"]}
    assert "under_tolerance" in rows["level1/1_Zeros.py"]["flags"]
    assert rows["level1/2_GeluMul.py"]["flags"] == [] and not rows["level1/2_GeluMul.py"]["error"]
    assert "no inputs" in rows["level1/3_Broken.py"]["error"]
    assert doc["summary"] == {"tasks": 3, "flagged": 1, "errors": 1, "device": "cpu"}


def test_a_suite_checked_into_a_file_resumes_where_it_stopped(tmp_path):
    """--out: each row is written as it is checked, and a second run checks only what is missing."""
    suite = tmp_path / "suite" / "level1"
    suite.mkdir(parents=True)
    (suite / "1_Zeros.py").write_text(ZEROS)
    (suite / "2_GeluMul.py").write_text((TASKS / "gelu_mul.py").read_text())
    out = tmp_path / "checked.jsonl"
    # A first run that got as far as the first task, its last line torn by the interruption.
    first = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "check-task", str(tmp_path / "suite"),
                            "--device", "cpu", "--json", "--tasks", "1_*", "--out", str(out)],
                           capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    out.write_text(out.read_text() + '{"task": "level1/2_GeluMul.py", "fla')
    r = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "check-task", str(tmp_path / "suite"),
                        "--device", "cpu", "--json", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "[1/2] level1/1_Zeros.py: under_tolerance" in r.stderr and "(resumed)" in r.stderr.splitlines()[0]
    assert "[2/2] level1/2_GeluMul.py: ok" in r.stderr and "(resumed)" not in r.stderr.splitlines()[1]
    doc = json.loads(r.stdout)
    assert [t["task"] for t in doc["tasks"]] == ["level1/1_Zeros.py", "level1/2_GeluMul.py"]
    assert doc["summary"]["flagged"] == 1


def test_jobs_check_tasks_side_by_side_and_a_task_out_of_memory_beside_others_is_checked_again_alone(tmp_path):
    """--jobs 2: every task gets exactly one row; one whose process ran out of memory while another
    ran beside it is checked once more, alone, and that second row is the one kept."""
    suite = tmp_path / "suite" / "level1"
    suite.mkdir(parents=True)
    marker = tmp_path / "first_try_done"
    (suite / "1_Zeros.py").write_text(ZEROS)
    (suite / "2_GeluMul.py").write_text((TASKS / "gelu_mul.py").read_text())
    (suite / "3_Tight.py").write_text(HEAD + "import pathlib\n\n\nclass Model(nn.Module):\n"
                                      "    def forward(self, x):\n        return torch.tanh(x)\n\n\n"
                                      "def get_inputs():\n"
                                      f"    m = pathlib.Path({str(marker)!r})\n"
                                      "    if not m.exists():\n        m.touch()\n"
                                      "        raise torch.OutOfMemoryError('CUDA out of memory (simulated)')\n"
                                      "    return [torch.randn(32, 64)]\n\n\ndef get_init_inputs():\n    return []\n")
    out = tmp_path / "checked.jsonl"
    r = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "check-task", str(tmp_path / "suite"),
                        "--device", "cpu", "--json", "--jobs", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [t["task"] for t in doc["tasks"]] == ["level1/1_Zeros.py", "level1/2_GeluMul.py", "level1/3_Tight.py"]
    rows = {t["task"]: t for t in doc["tasks"]}
    assert marker.exists() and rows["level1/3_Tight.py"]["error"] == "" and rows["level1/3_Tight.py"]["flags"] == []
    assert "under_tolerance" in rows["level1/1_Zeros.py"]["flags"]
    written = [json.loads(line)["task"] for line in out.read_text().splitlines()]
    assert sorted(written) == sorted(rows)  # the out-of-memory row was not written


CLONE_THEN_RELU_AFTER_SOFTMAX = HEAD + ("class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                                        "        self.drop = nn.Dropout(0.0)\n\n    def forward(self, x):\n"
                                        "        y = x.clone().detach().contiguous()\n"
                                        "        return torch.relu(torch.softmax(self.drop(y), dim=1))\n") + TAIL
LAYER_NORM = HEAD + ("class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                     "        self.ln = nn.LayerNorm(64)\n\n    def forward(self, x):\n        return self.ln(x)\n") + TAIL


def test_copies_and_aliases_are_not_deletable_work_and_constant_weights_are_named_as_such(tmp_path):
    """Skipping a clone, a detach or a Dropout of p=0 is exact, not a finding; a LayerNorm's weights
    are the same for every seed (ones and zeros), which the detail says rather than 'the output
    ignores them'."""
    c = check_task(_task(tmp_path, "clone.py", CLONE_THEN_RELU_AFTER_SOFTMAX), "cpu")
    assert c.flags == [Flag.DELETABLE_WORK], c
    assert "relu" in c.details[0] and "clone" not in c.details[0] and "detach" not in c.details[0] \
        and "drop" not in c.details[0] and "contiguous" not in c.details[0], c.details
    ln = check_task(_task(tmp_path, "ln.py", LAYER_NORM), "cpu")
    assert ln.flags == [Flag.WEIGHT_INDEPENDENT] and "same for every seed" in ln.details[0], ln


def test_the_check_process_is_the_one_the_system_kills_and_is_capped_on_the_cpu():
    """A task too big for the machine must not take the command (or anything else) down with it:
    the child marks itself first in line for the OOM killer and, on the CPU, caps its address
    space at what a worker gets, so a huge allocation fails as an error row instead."""
    code = ("import resource; from kernelwright.task.check import _limit_self; "
            "from kernelwright.sandbox.limits import default_worker_memory; _limit_self('cpu'); "
            "print(open('/proc/self/oom_score_adj').read().strip(), "
            "resource.getrlimit(resource.RLIMIT_AS)[0] == 2 * default_worker_memory())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1000", "True"], r.stdout
