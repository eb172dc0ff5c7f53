"""`kernelwright verify --from-export`: every row of an export judged again, and the rows that no
longer hold named: a verdict that changed, or a claimed speedup this machine does not confirm."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.bench.suite_fixture import BROKEN_TASK
from tests.conftest import CANDIDATES, TASKS
from tests.executor.bench_cli import bench_env

ZEROS = """
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)
"""


def _row(kernel: str, verdict: str, reference: str | None = None, **extra) -> dict:
    return {"task_id": "level1/1_GeluMul.py", "candidate_id": f"c-{verdict}", "verdict": verdict,
            "kernel_code": kernel, "reference_code": reference or (TASKS / "gelu_mul.py").read_text(),
            "speedup_vs_eager": None, "speedup_vs_eager_interval": None, **extra}


@pytest.mark.parametrize("executor", [(), ("--slots", "2")], ids=["in-process", "local-2-slots"])
def test_rows_whose_verdict_or_claimed_speedup_no_longer_hold_are_named(tmp_path, executor):
    # The same checks, in the rows' order, whether the rows are judged here one after another or
    # on an executor's slots (issue 16: `verify --from-export` took only this machine's one; Ray's
    # slots take the same jobs, test_rows_go_to_the_executor_given_and_come_back_in_their_order).
    honest = (CANDIDATES / "gelu_mul_torch.py").read_text()
    rows = [_row(honest, "accepted"),  # holds
            _row(ZEROS, "accepted"),  # a lying archive: it was never correct
            _row(honest, "accepted", speedup_vs_eager=3.2, speedup_vs_eager_interval=[3.0, 3.5]),  # a claim
            _row(honest, "rejected"),  # a verdict that changed the other way
            _row(honest, "accepted", reference=BROKEN_TASK)]  # nothing to judge it against
    path = tmp_path / "k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "verify", "--from-export", str(path),
                        "--device", "cpu", "--no-compile-baseline", "--threads", "1", "--json", *executor],
                       capture_output=True, text=True, timeout=900, env=bench_env(tmp_path / "unused.db"))
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    checks = doc["rows"]
    assert [c["index"] for c in checks] == [0, 1, 2, 3, 4]
    assert [c["holds"] for c in checks] == [True, False, False, False, False]
    assert checks[1]["now_verdict"] == "rejected" and checks[1]["why"].startswith("was accepted, now rejected (")
    assert checks[2]["now_verdict"] == "accepted" and "no longer at least 1.05x" in checks[2]["why"]
    assert checks[3]["why"] == "was rejected, now accepted"
    assert checks[4]["now_verdict"] == "error" and "could not be judged here" in checks[4]["why"]
    assert doc["summary"] == {"rows": 5, "hold": 1, "no_longer_hold": 3, "not_judged": 1}


def test_an_unreadable_export_is_exit_2_with_the_reason(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    r = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "verify", "--from-export", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no kernel_code and reference_code" in r.stderr
    r = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "verify", str(bad), "--from-export", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "--from-export FILE alone" in r.stderr


def test_rows_go_to_the_executor_given_and_come_back_in_their_order():
    """check_rows with an executor hands it every row as a job and puts the outcomes, which slots
    return in any order, back in the rows' order."""
    from kernelwright.executor._base import judge_here
    from kernelwright.judge.verify import VerifyOptions
    from kernelwright.report.rejudge import check_rows

    class Backwards:
        """The executor interface, answering the last job first (as a slot that finishes early would)."""

        def __init__(self) -> None:
            self.jobs: list = []

        def judge(self, jobs, device, opts):
            self.jobs += jobs
            for job in reversed(jobs):
                yield job, judge_here(job.task.path, job.candidate, opts)

    honest = (CANDIDATES / "gelu_mul_torch.py").read_text()
    rows = [_row(honest, "accepted"), _row(ZEROS, "accepted")]
    ex = Backwards()
    checks = check_rows(rows, VerifyOptions(device="cpu", threads=1, timing=False), executor=ex)
    assert [j.index for j in ex.jobs] == [0, 1] and ex.jobs[1].source == ZEROS
    assert [(c.index, c.holds, c.now_verdict) for c in checks] == [(0, True, "accepted"), (1, False, "rejected")]
