"""`kernelwright verify --from-export`: every row of an export judged again, and the rows that no
longer hold named: a verdict that changed, or a claimed speedup this machine does not confirm."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.bench.suite_fixture import BROKEN_TASK
from tests.conftest import CANDIDATES, TASKS

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


def test_rows_whose_verdict_or_claimed_speedup_no_longer_hold_are_named(tmp_path):
    honest = (CANDIDATES / "gelu_mul_torch.py").read_text()
    rows = [_row(honest, "accepted"),  # holds
            _row(ZEROS, "accepted"),  # a lying archive: it was never correct
            _row(honest, "accepted", speedup_vs_eager=3.2, speedup_vs_eager_interval=[3.0, 3.5]),  # a claim
            _row(honest, "rejected"),  # a verdict that changed the other way
            _row(honest, "accepted", reference=BROKEN_TASK)]  # nothing to judge it against
    path = tmp_path / "k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "verify", "--from-export", str(path),
                        "--device", "cpu", "--no-compile-baseline", "--threads", "1", "--json"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 1, r.stderr
    doc = json.loads(r.stdout)
    checks = doc["rows"]
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
