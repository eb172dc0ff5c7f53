"""`kernelwright bench` end to end on the CPU: verdicts on a small suite, one JSON object,
resuming after kill -9 without judging anything twice, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from kernelwright.bench import records as R
from tests.bench.suite_fixture import make_suite

FAST = ["--device", "cpu", "--no-compile-baseline", "--no-timing", "--threads", "1"]


def _bench(*args: str, store: Path, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERNELWRIGHT_STORE=str(store), COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "bench", *args], capture_output=True,
                          text=True, env=env, timeout=600, **kw)


def test_a_suite_judged_with_one_json_object_and_a_second_run_judging_nothing(tmp_path):
    suite, cands = make_suite(tmp_path)
    out = tmp_path / "out"
    r = _bench(str(suite), "--candidates", str(cands), "--out", str(out), "--json", *FAST, store=tmp_path / "s.db")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # exactly one object
    tasks = {t["task"]: t for t in doc["tasks"]}
    assert list(tasks) == ["level1/1_GeluMul.py", "level1/2_Hinge.py", "level2/1_LinearRelu.py",
                           "level2/2_Broken.py"]
    # The gelu task's honest candidate passes, whatever the replaying one does.
    assert tasks["level1/1_GeluMul.py"]["verdict"] == "accepted"
    assert tasks["level1/1_GeluMul.py"]["candidates"] == 2
    assert tasks["level1/2_Hinge.py"]["verdict"] == "accepted"
    assert tasks["level1/2_Hinge.py"]["candidate"] == "level1/2_Hinge/honest.py"
    assert [(x["candidate"], x["verdict"]) for x in tasks["level1/2_Hinge.py"]["records"]] == [
        ("level1/2_Hinge/honest.py", "accepted"), ("level1/2_Hinge/zeros.py", "rejected")]
    assert tasks["level2/1_LinearRelu.py"]["verdict"] == "missing"
    broken = tasks["level2/2_Broken.py"]
    assert broken["verdict"] == "error" and broken["reasons"][0]["check"] == "task"
    assert "cannot make its inputs" in broken["reasons"][0]["detail"]
    rows = {r.candidate: r for r in R.load(out)}
    assert rows["level1/2_Hinge/zeros.py"].verdict == "rejected"
    assert rows["level_1_problem_1_sample_0_kernel.py"].verdict == "rejected"  # replays its first output
    s = doc["summary"]
    assert (s["tasks"], s["candidates"], s["correct"], s["missing"], s["errors"]) == (4, 5, 2, 1, 1)
    assert s["fast_p"]["eager"] is None  # --no-timing: nothing was timed, and it says so
    # Every verdict went to the store, one run per task.
    from kernelwright.store import Store

    with Store(tmp_path / "s.db") as store:
        runs = store.list_runs()
        assert sorted(run.task_name for run in runs) == ["level1/1_GeluMul.py", "level1/2_Hinge.py",
                                                         "level2/2_Broken.py"]
        assert all(run.status == "finished" for run in runs)
        verdicts = [json.loads(c.result_json) for run in runs for c in store.candidates(run.id)
                    if c.result_json and "correctness" in json.loads(c.result_json)]
    # After the first verdict, each one's workers were started while the previous one wrapped up.
    pre = [v for v in verdicts if any(f.startswith("workers: pre-started") for f in v["findings"])]
    assert len(pre) >= len(verdicts) - 1 >= 2, [v["findings"][:3] for v in verdicts]
    t0 = time.perf_counter()
    again = _bench(str(suite), "--candidates", str(cands), "--out", str(out), "--json", *FAST, store=tmp_path / "s.db")
    assert again.returncode == 0 and json.loads(again.stdout)["summary"] == s
    assert len((out / R.RESULTS).read_text().splitlines()) == 5  # nothing judged twice
    assert time.perf_counter() - t0 < 30


def test_resume_after_kill_9_judges_nothing_twice(tmp_path):
    suite, cands = make_suite(tmp_path)
    out = tmp_path / "out"
    env = dict(os.environ, KERNELWRIGHT_STORE=str(tmp_path / "s.db"))
    proc = subprocess.Popen([sys.executable, "-m", "kernelwright.cli.main", "bench", str(suite), "--candidates",
                             str(cands), "--out", str(out), "--json", *FAST], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / R.RESULTS
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if results.exists() and results.read_text().count("\n") >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the bench finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = [r.key for r in R.load(out)]
    assert 1 <= len(first) < 5
    r = _bench(str(suite), "--candidates", str(cands), "--out", str(out), "--json", *FAST, store=tmp_path / "s.db")
    assert r.returncode == 0, r.stderr  # the killed bench's lock did not outlive it
    keys = [row.key for row in R.load(out)]
    assert len(keys) == len(set(keys)) == 5 and keys[: len(first)] == first
    assert json.loads(r.stdout)["summary"]["candidates"] == 5


def test_bad_suite_and_a_busy_out_are_exit_2(tmp_path):
    suite, cands = make_suite(tmp_path)
    r = _bench(str(tmp_path), "--candidates", str(cands), *FAST, store=tmp_path / "s.db")
    assert r.returncode == 2 and "KernelBench's layout" in r.stderr and "Traceback" not in r.stderr
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = _bench(str(suite), "--candidates", str(cands), "--out", str(out), "--json", *FAST, store=tmp_path / "s.db")
    finally:
        os.close(fd)
    assert r.returncode == 2 and "another kernelwright bench" in json.loads(r.stdout)["error"]


def test_a_degenerate_task_is_marked_in_the_table_and_the_json(tmp_path):
    from tests.conftest import TASKS

    suite, cands = tmp_path / "suite" / "level1", tmp_path / "cands" / "level1"
    suite.mkdir(parents=True)
    cands.mkdir(parents=True)
    task = (TASKS / "degenerate_near_constant.py").read_text()
    (suite / "1_NearConstant.py").write_text(task)
    (cands / "1_NearConstant.py").write_text(task + "\n\nclass ModelNew(Model):\n    pass\n")
    args = [str(tmp_path / "suite"), "--candidates", str(tmp_path / "cands"), *FAST]
    r = _bench(*args, "--out", str(tmp_path / "out"), "--json", store=tmp_path / "s.db")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["tasks"]
    assert row["verdict"] == "accepted" and any("barely depends on its inputs" in d for d in row["degenerate"])
    table = _bench(*args, "--out", str(tmp_path / "out"), store=tmp_path / "s.db")
    assert "level1/1_NearConstant.py *" in table.stdout and "1 degenerate task(s)" in table.stdout, table.stdout


def test_tasks_check_task_flagged_are_marked_in_the_table_the_json_and_the_report(tmp_path):
    """--task-checks FILE: check-task's rows (its --out file) mark the tasks it flagged, beside what
    the judge's own verdicts find; OUT keeps them, so the report and a later run show them too."""
    suite, cands = tmp_path / "suite" / "level1", tmp_path / "cands" / "level1"
    suite.mkdir(parents=True)
    cands.mkdir(parents=True)
    task = ("import torch\nimport torch.nn as nn\n\n\nclass Model(nn.Module):\n    def forward(self, x):\n"
            "        return torch.relu(torch.softmax(x, dim=1))\n\n\ndef get_inputs():\n"
            "    return [torch.randn(32, 64)]\n\n\ndef get_init_inputs():\n    return []\n")
    (suite / "1_ReluAfterSoftmax.py").write_text(task)
    (cands / "1_ReluAfterSoftmax.py").write_text(task + "\n\nclass ModelNew(Model):\n    pass\n")
    checks = tmp_path / "checked.jsonl"
    c = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "check-task", str(tmp_path / "suite"),
                        "--device", "cpu", "--json", "--out", str(checks)], capture_output=True, text=True, timeout=600)
    assert c.returncode == 0 and "deletable_work" in checks.read_text(), c.stderr
    out, store = tmp_path / "out", tmp_path / "s.db"
    args = [str(tmp_path / "suite"), "--candidates", str(tmp_path / "cands"), "--out", str(out), *FAST]
    r = _bench(*args, "--task-checks", str(checks), "--json", store=store)
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)["tasks"]
    assert row["verdict"] == "accepted" and row["task_checks"]["flags"] == ["deletable_work"], row
    assert "relu" in row["task_checks"]["details"][0]
    # A later run without the option shows what OUT kept, in the table.
    table = _bench(*args, store=store)
    assert "level1/1_ReluAfterSoftmax.py *" in table.stdout and "check-task: deletable_work" in table.stdout, \
        table.stdout
    page = tmp_path / "page.html"
    rep = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "report", str(out), "-o", str(page),
                          "--store", str(store)], capture_output=True, text=True, timeout=600)
    assert rep.returncode == 0, rep.stderr
    assert "check-task: deletable_work" in page.read_text()
    # A missing file is a clear error (exit 2), not a bench without marks.
    bad = _bench(*args, "--task-checks", str(tmp_path / "nope.jsonl"), "--json", store=store)
    assert bad.returncode == 2
