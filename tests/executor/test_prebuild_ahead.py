"""The one-slot local executor builds slow-building candidates ahead and judges in job order."""

from __future__ import annotations

import time

from kernelwright import forms
from kernelwright.executor import _local
from tests.executor.slow_builds import StubPairs


def test_one_slot_builds_every_slow_building_candidate_ahead_in_the_pool(monkeypatch) -> None:
    """One slot (a one-GPU machine's default) queues every slow-building candidate's build in the
    driver's pool, one build per core the slot leaves, and judges in job order; a build not
    started when its verdict begins is left to the verdict."""
    from pathlib import Path
    from types import SimpleNamespace

    from kernelwright import constants as C
    from kernelwright.executor import _builds
    from kernelwright.judge.verify import VerifyOptions

    built: list[str] = []
    judged: list[str] = []
    monkeypatch.setenv(C.BUILD_JOBS_ENV, "2")
    monkeypatch.setattr(_builds, "prebuild", lambda source, filename, device: built.append(filename))
    monkeypatch.setattr(_local, "PairPool", StubPairs)

    def judge_here(task: Path, cand: Path, opts: object, pool: object) -> str:
        if not judged:  # the first verdict: both later slow builds are under way in the pool meanwhile
            deadline = time.monotonic() + 30
            while len(built) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        judged.append(cand.name)
        return cand.name

    monkeypatch.setattr(_local, "judge_here", judge_here)
    workers: list[int] = []
    real_pool = _builds.BuildPool
    monkeypatch.setattr(_local, "BuildPool", lambda device, n: workers.append(n) or real_pool(device, n))
    sources = {"a.py": forms.FORMS["c"].skeleton(), "b.py": forms.FORMS["cpp_inline"].skeleton(),
               "c.py": "import torch\n\nclass ModelNew(torch.nn.Module):\n    pass\n",
               "d.py": forms.FORMS["cpp_inline"].skeleton().replace("relu", "relu ")}
    jobs = [SimpleNamespace(source=src, candidate=Path(n), task=SimpleNamespace(path=Path("t.py")),
                            task_source="t") for n, src in sources.items()]
    outcomes = [o for _, o in _local.judge_in_order(jobs, "cpu", VerifyOptions(device="cpu", timing=False))]
    assert outcomes == judged == ["a.py", "b.py", "c.py", "d.py"]
    assert workers == [2]
    assert sorted(built) == ["b.py", "d.py"]  # only the slow forms, both ahead of their verdicts


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
