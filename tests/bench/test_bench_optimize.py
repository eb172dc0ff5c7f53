"""`kernelwright bench --optimize` on the CPU: the engineer on each task, a record per task from a
fresh verdict, a search cut by kill -9 resumed (not started again), nothing run twice."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelwright.bench import records as R
from kernelwright.bench.run import RUNS
from kernelwright.store import Store
from tests.bench.suite_fixture import BROKEN_TASK
from tests.conftest import TASKS
from tests.search import kernels as K


def _cmd(suite: Path, out: Path, script: Path, db: Path) -> list[str]:
    return [sys.executable, "-m", "kernelwright.cli.main", "bench", str(suite), "--optimize",
            "--model", f"scripted:{script}", "--budget", "2", "--parallel", "1", "--device", "cpu",
            "--threads", "1", "--no-compile-baseline", "--out", str(out), "--store", str(db), "--json"]


def _runs(db: Path) -> list:
    if not db.exists():
        return []
    with Store(db) as store:
        return store.list_runs()


@pytest.mark.slow
def test_optimize_records_a_fresh_verdict_per_task_and_resumes_a_killed_search(tmp_path):
    suite, out, db = tmp_path / "suite", tmp_path / "out", tmp_path / "kw.db"
    (suite / "level1").mkdir(parents=True)
    (suite / "level2").mkdir()
    shutil.copy(TASKS / "diag_matmul.py", suite / "level1" / "1_DiagMatmul.py")
    # Broken where the scripted kernels fit it (forward(a, b)): its inputs cannot be made.
    (suite / "level2" / "1_Broken.py").write_text(
        BROKEN_TASK.replace("def forward(self, x):\n        return x * 2", "def forward(self, a, b):\n        return a @ b"))
    script = tmp_path / "replies.jsonl"
    script.write_text("\n".join(json.dumps({"text": K.reply(code)}) for code in (K.SLOW, K.FAST)) + "\n")

    # Cut the first task's search short once it has started (its run is noted, a proposal judged).
    proc = subprocess.Popen(_cmd(suite, out, script, db), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        runs = _runs(db)
        if runs and (out / RUNS).exists():
            with Store(db) as store:
                if any(c.verdict for c in store.candidates(runs[0].id)):
                    break
        time.sleep(0.2)
    assert proc.poll() is None, "the bench finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    started = _runs(db)
    assert len(started) == 1 and not R.load(out)

    done = subprocess.run(_cmd(suite, out, script, db), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(done.stdout)
    by_task = {t["task"]: t for t in doc["tasks"]}
    diag = by_task["level1/1_DiagMatmul.py"]
    # Both proposals are correct: whatever was crowned or not, the task has an accepted kernel,
    # with a speedup from a fresh verdict, under the run that was resumed rather than a new one.
    assert diag["verdict"] == "accepted", diag
    assert diag["speedup_vs_eager"] is not None
    assert diag["candidate"] == f"optimize:{started[0].id}"
    broken = by_task["level2/1_Broken.py"]
    assert broken["verdict"] == "error" and broken["reasons"][0]["check"] == "task"
    assert doc["summary"]["correct"] == 1
    with Store(db) as store:
        assert store.get_run(started[0].id).status == "finished"
        assert len(store.candidates(started[0].id)) == 2  # the budget, across the kill
    runs_after = {r.id for r in _runs(db)}

    again = subprocess.run(_cmd(suite, out, script, db), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["tasks"] == doc["tasks"]
    assert {r.id for r in _runs(db)} == runs_after  # nothing optimized again
    assert len(R.load(out)) == 2


def test_optimize_and_candidates_together_or_neither_is_exit_2(tmp_path):
    (tmp_path / "suite" / "level1").mkdir(parents=True)
    shutil.copy(TASKS / "relu_add.py", tmp_path / "suite" / "level1" / "1_ReluAdd.py")
    base = [sys.executable, "-m", "kernelwright.cli.main", "bench", str(tmp_path / "suite"), "--device", "cpu",
            "--out", str(tmp_path / "out"), "--store", str(tmp_path / "kw.db")]
    for extra in ([], ["--optimize", "--candidates", str(tmp_path)]):
        r = subprocess.run(base + extra, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and "--optimize" in r.stderr, r.stderr
    r = subprocess.run(base + ["--optimize", "--model", "nosuch:model"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "nosuch" in r.stderr, r.stderr


def test_a_search_without_source_says_why_in_its_no_kernel_record(tmp_path):
    # KernelBench's level1/19 on an H100: Inductor's capture ran out of GPU memory and the only
    # record was "no candidate was accepted (no_source 1)". The record names the failures now.
    from kernelwright.bench.run import _row_of_run
    from kernelwright.bench.suite import SuiteTask
    from kernelwright.judge.verify import VerifyOptions

    task_path = tmp_path / "19_ReLU.py"
    shutil.copy(TASKS / "relu_add.py", task_path)
    oom = "capturing Inductor's output failed (OutOfMemoryError: CUDA out of memory. Tried to allocate 12.00 GiB.)"
    with Store(tmp_path / "kw.db") as store:
        run_id = store.create_run(task_path, task_path.read_text(), "level1/19_ReLU.py", "cpu", {})
        store.add_candidate(run_id, source=None, failure=oom, proposer="inductor", stage="translate")
        store.add_candidate(run_id, source=None, failure=oom, proposer="inductor", stage="translate")
        store.add_candidate(run_id, source=None, failure="no parent to mutate", proposer="mutate", stage="mutate")
        store.record_crowning(run_id, candidate_id=None, path=None, note="no candidate was accepted")
        row = _row_of_run(SuiteTask("level1/19_ReLU.py", task_path, 1, 19), "k", "cpu", VerifyOptions(), store,
                          run_id, tmp_path / "run")
    assert row.verdict == R.Verdict.REJECTED and row.reasons[0]["check"] == "no_kernel"
    detail = row.reasons[0]["detail"]
    assert detail.startswith("no candidate was accepted (no_source 3)"), detail
    assert detail.count("OutOfMemoryError") == 1 and "no parent to mutate" in detail, detail
