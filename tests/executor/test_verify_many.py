"""`kernelwright verify TASK CAND1 CAND2 ...` on an executor: each candidate its own verdict, the
one `verify TASK CAND` gives it alone (issue 16)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.bench.suite_fixture import ZEROS
from tests.conftest import CANDIDATES, TASKS

FAST = ["--device", "cpu", "--threads", "1", "--no-compile-baseline", "--no-timing", "--json"]


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "verify", *args, *FAST],
                          capture_output=True, text=True, timeout=600)


def _checks(verdict: dict) -> tuple[str, list[str]]:
    return verdict["verdict"], [r["check"] for r in verdict["reasons"]]


@pytest.mark.slow
@pytest.mark.parametrize("executor", [["--slots", "2"], ["--executor", "ray"]], ids=["local-2-slots", "ray"])
def test_several_candidates_get_the_verdicts_they_get_alone(tmp_path, executor) -> None:
    if "ray" in executor:
        pytest.importorskip("ray")
    task = str(TASKS / "hinge_loss.py")
    zeros = tmp_path / "zeros.py"
    zeros.write_text(ZEROS)
    cands = [str(CANDIDATES / "hinge_loss_torch.py"), str(zeros)]
    many = _verify(task, *cands, *executor)
    assert many.returncode == 1, many.stderr[-2000:]  # one rejected
    doc = json.loads(many.stdout)  # exactly one object
    assert [e["candidate"] for e in doc["candidates"]] == cands
    assert doc["summary"] == {"accepted": 1, "rejected": 1, "error": 0}
    alone = [json.loads(_verify(task, c).stdout) for c in cands]
    assert [_checks(e) for e in doc["candidates"]] == [_checks(a) for a in alone]
    assert _checks(alone[1]) == ("rejected", ["mismatch"])


def test_a_missing_candidate_is_bad_input() -> None:
    out = _verify(str(TASKS / "hinge_loss.py"), str(CANDIDATES / "hinge_loss_torch.py"), "/nonexistent/c.py")
    assert out.returncode == 2
    assert "is not a file" in json.loads(out.stdout)["error"]
