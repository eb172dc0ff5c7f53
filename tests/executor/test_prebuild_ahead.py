"""The local executor builds the next candidate ahead only when its form is slow to build."""

from __future__ import annotations

from kernelwright import forms
from kernelwright.executor import _local


def test_only_the_next_slow_building_candidate_is_built_ahead(monkeypatch) -> None:
    built: list[str] = []
    monkeypatch.setattr(_local, "prebuild", lambda source, filename, device: built.append(filename))
    queue = [(forms.FORMS["c"].skeleton(), "a.py"), (forms.FORMS["cpp_inline"].skeleton(), "b.py"),
             ("import torch\n\nclass ModelNew(torch.nn.Module):\n    pass\n", "c.py"),
             (forms.FORMS["cpp_inline"].skeleton(), "d.py")]
    with _local.Prebuilder("cpu", queue) as ahead:
        ahead.next()  # a.py is judged: b.py (load_inline C++) builds meanwhile
        ahead.next()  # b.py is judged: c.py is plain PyTorch, nothing to build
        ahead.next()  # c.py is judged: d.py builds
        ahead.next()  # d.py is judged: nothing after it
    assert ahead.submitted == ["b.py", "d.py"]
    assert built and set(built) <= {"b.py", "d.py"}  # a build still queued at the end is dropped


def test_consecutive_candidates_of_a_task_share_its_reference_worker_and_a_new_task_gets_its_own(tmp_path) -> None:
    """One slot judges in job order: the second candidate of a task is judged by the reference
    worker of the first (when the candidate is fully confined), the next task by a new one, and
    every verdict is the one it gets alone."""
    from kernelwright.bench.suite import SuiteTask
    from kernelwright.executor._base import JudgeJob
    from kernelwright.judge.verify import VerifyOptions
    from kernelwright.sandbox.confine import Confinement
    from tests.bench.suite_fixture import ZEROS
    from tests.conftest import CANDIDATES, TASKS

    zeros = tmp_path / "zeros.py"
    zeros.write_text(ZEROS)
    hinge, gelu = TASKS / "hinge_loss.py", TASKS / "gelu_mul.py"
    gelu_own = tmp_path / "gelu_own.py"
    gelu_own.write_text(gelu.read_text().replace("class Model(", "class ModelNew("))
    plan = [(hinge, CANDIDATES / "hinge_loss_torch.py"), (hinge, zeros), (hinge, CANDIDATES / "hinge_loss_torch.py"),
            (gelu, gelu_own)]
    jobs = [JudgeJob(i, SuiteTask(t.name, t, 1, i), t.read_text(), c, c.name, c.read_text(), f"key{i}")
            for i, (t, c) in enumerate(plan)]
    opts = VerifyOptions(device="cpu", threads=1, compile_baseline=False, timing=False)
    verdicts = [o.verdict for _, o in _local.judge_in_order(jobs, "cpu", opts)]
    assert [v["verdict"] for v in verdicts] == ["accepted", "rejected", "accepted", "accepted"]
    if any(Confinement(**v["environment"]["confinement"]).missing() for v in verdicts):
        return  # not fully confined here: nothing is kept (tests/judge/test_pairs.py checks that)
    kept = ["earlier verdict of this task" in " ".join(v["findings"]) for v in verdicts]
    assert kept == [False, True, True, False]
