"""Tasks whose outputs are large for the machine (issue 14): the judge holds only some sets'
references and makes the rest when each is used; a task that cannot fit at all is a task
error with the numbers; the kernel's OOM killer takes a worker, never the judge."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright.sandbox import limits
from kernelwright.task.metadata import TaskError
from tests.conftest import CANDIDATES
from tests.exploits.test_call_counting import COUNTER

# Honest on its first two calls (the sets a judge would hold), zeros after.
ZEROS_AFTER_TWO = COUNTER.replace("self.calls <= 12", "self.calls <= 2")


def test_deferred_references_still_judge_every_trial(judge):
    # A budget of one byte: the judge holds two sets (its minimum) and defers every other trial set.
    result = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", timing=False, reference_memory_bytes=1)
    assert result.accepted, result.reasons
    assert len(result.correctness) >= 5 and all(t.passed for t in result.correctness)
    assert any(f.startswith("large outputs: the judge holds the references of") for f in result.findings)


def test_a_cheat_on_a_deferred_set_is_caught(judge):
    result = judge("gelu_mul", ZEROS_AFTER_TWO, timing=False, reference_memory_bytes=1)
    assert not result.accepted and result.checks[0] == "mismatch", result.reasons


def test_without_pressure_nothing_is_deferred(judge):
    result = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", timing=False)
    assert not any(f.startswith("large outputs") for f in result.findings)


def test_a_task_that_cannot_fit_is_a_task_error_with_the_numbers(judge, tmp_path, monkeypatch):
    # This machine, as the judge sees it, has 1 MiB available.
    monkeypatch.setattr(limits, "machine_memory", lambda: (64 << 30, 1 << 20))
    big = tmp_path / "big.py"
    big.write_text(Path(CANDIDATES.parent / "tasks" / "gelu_mul.py").read_text())
    with pytest.raises(TaskError, match=r"does not fit this machine: each input set's outputs .* take [0-9.]+ MiB.* with 1.0 MiB of memory available"):
        judge(big, CANDIDATES / "gelu_mul_torch.py", timing=False, reference_memory_bytes=1)


def test_worker_memory_comes_from_the_machine():
    total, _ = limits.machine_memory()
    assert limits.default_worker_memory() == max(4 << 30, int(0.45 * total))


def test_the_oom_killer_prefers_a_worker(tmp_path):
    from kernelwright import protocol as P
    from kernelwright.sandbox.process import SandboxConfig, Worker

    w = Worker(P.Role.REFERENCE, SandboxConfig(threads=1))
    try:
        assert Path(f"/proc/{w.proc.pid}/oom_score_adj").read_text().strip() == "1000"
    finally:
        w.close()
    assert Path("/proc/self/oom_score_adj").read_text().strip() != "1000"
