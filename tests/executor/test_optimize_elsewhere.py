"""`bench --optimize` on an executor (issue 16): each task's whole search in a slot (a local slot
process, a Ray task) into a private store that the driver alone merges into the bench's store.
The same records as one slot, one run per task with its lineage, and a slot killed mid-search
loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from kernelwright.bench import records as R
from kernelwright.store import Store
from tests.bench.suite_fixture import BROKEN_TASK
from tests.conftest import TASKS
from tests.executor.bench_cli import bench_env, judging_slots, pids_with
from tests.search import kernels as K

SLOTS = ("--slots", "2")
RAY = ("--executor", "ray")


def _suite(root: Path) -> tuple[Path, Path]:
    """The bench --optimize tests' suite (a task the scripted kernels solve, one whose inputs cannot be
    made) and the scripted proposer's replies (a slow kernel, then a fast one)."""
    suite = root / "suite"
    (suite / "level1").mkdir(parents=True)
    (suite / "level2").mkdir()
    (suite / "level1" / "1_DiagMatmul.py").write_text((TASKS / "diag_matmul.py").read_text())
    (suite / "level2" / "1_Broken.py").write_text(BROKEN_TASK.replace(
        "def forward(self, x):\n        return x * 2", "def forward(self, a, b):\n        return a @ b"))
    script = root / "replies.jsonl"
    script.write_text("\n".join(json.dumps({"text": K.reply(code)}) for code in (K.SLOW, K.FAST)) + "\n")
    return suite, script


def _cmd(root: Path, name: str, *extra: str) -> list[str]:
    suite, script = root / "suite", root / "replies.jsonl"
    return [sys.executable, "-m", "kernelwright.cli.main", "bench", str(suite), "--optimize",
            "--model", f"scripted:{script}", "--budget", "2", "--parallel", "1", "--device", "cpu",
            "--threads", "1", "--no-compile-baseline", "--out", str(root / name), "--store", str(root / f"{name}.db"),
            "--json", *extra]


def _bench(root: Path, name: str, *extra: str) -> subprocess.CompletedProcess:
    done = subprocess.run(_cmd(root, name, *extra), capture_output=True, text=True, timeout=900,
                          env=bench_env(root / "unused.db"))
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _kinds(out: Path) -> dict[str, tuple[str, list[str], bool]]:
    """Each task's verdict, its reasons' checks and whether a kernel was found (speeds vary: not compared)."""
    return {r.task: (str(r.verdict), [x["check"] for x in r.reasons], r.speedup_vs_eager is not None)
            for r in R.load(out)}


def _assert_one_run_per_task(root: Path, name: str) -> None:
    """The bench's store has each task's search once, the solved task's with both proposals judged and
    the second made from the first; its record names that run, and `show` reads it."""
    rows = {r.task: r for r in R.load(root / name)}
    assert len(rows) == 2 and len((root / name / R.RESULTS).read_text().splitlines()) == 2
    with Store(root / f"{name}.db") as store:
        runs = store.list_runs()
        assert sorted(r.task_name for r in runs) == ["1_Broken", "1_DiagMatmul"]
        diag = rows["level1/1_DiagMatmul.py"]
        assert diag.run_id in {r.id for r in runs} and diag.candidate == f"optimize:{diag.run_id}"
        assert store.get_run(diag.run_id).status == "finished"
        cands = store.candidates(diag.run_id)
        # Both judged (the slow one's verdict may vary with the machine's load), one accepted at least.
        assert len(cands) == 2 and all(c.verdict for c in cands) and any(c.verdict == "accepted" for c in cands)
        assert [p.id for p in store.lineage(cands[1].id)] == [cands[0].id]
        crowned = store.crowning(diag.run_id)
        assert crowned is None or crowned.path is None or Path(crowned.path).is_file()
    shown = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "show", diag.run_id, "--store",
                            str(root / f"{name}.db")], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, COLUMNS="200"))
    assert shown.returncode == 0 and "lineage" in shown.stdout and cands[0].id in shown.stdout, shown.stderr


@pytest.mark.slow
def test_the_same_task_records_on_one_slot_two_slots_and_ray(tmp_path):
    pytest.importorskip("ray")
    _suite(tmp_path)
    _bench(tmp_path, "one", "--slots", "1")
    two = _bench(tmp_path, "two", *SLOTS)
    _bench(tmp_path, "ray", *RAY)
    assert _kinds(tmp_path / "two") == _kinds(tmp_path / "one") == _kinds(tmp_path / "ray")
    assert _kinds(tmp_path / "one")["level1/1_DiagMatmul.py"] == ("accepted", [], True)
    assert _kinds(tmp_path / "one")["level2/1_Broken.py"][:2] == ("error", ["task"])
    for name in ("one", "two", "ray"):
        _assert_one_run_per_task(tmp_path, name)
    # Run again: every task has its record, nothing is searched again, on either executor.
    again = _bench(tmp_path, "two", *SLOTS)
    assert json.loads(again.stdout)["tasks"] == json.loads(two.stdout)["tasks"]
    _bench(tmp_path, "ray", *RAY)
    for name in ("two", "ray"):
        _assert_one_run_per_task(tmp_path, name)


def _searching_ray_worker(bench: int) -> list[int]:
    # Ray titles a worker after the task's function while it runs it.
    return pids_with(b"_search_in_slot")


@pytest.mark.slow
@pytest.mark.parametrize("extra,slots", [(SLOTS, judging_slots), (RAY, _searching_ray_worker)],
                         ids=["local-slots", "ray"])
def test_a_slot_killed_mid_search_loses_and_duplicates_nothing(tmp_path, extra, slots):
    if extra == RAY:
        pytest.importorskip("ray")
    _suite(tmp_path)
    killed = _kill_one_slot(tmp_path, "out", extra, slots)
    assert killed, "no searching slot was seen"
    assert not any(x["check"] == "infrastructure" for r in R.load(tmp_path / "out") for x in r.reasons)
    assert _kinds(tmp_path / "out")["level1/1_DiagMatmul.py"] == ("accepted", [], True)
    _assert_one_run_per_task(tmp_path, "out")


def _kill_one_slot(root: Path, name: str, extra: tuple[str, ...], slots: Callable[[int], list[int]]) -> bool:
    """Run the bench, SIGKILL the first slot `slots(bench's pid)` shows once it has judged for a while."""
    proc = subprocess.Popen(_cmd(root, name, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=bench_env(root / "unused.db"))
    killed, seen = False, None
    deadline = time.monotonic() + 300
    while not killed and proc.poll() is None and time.monotonic() < deadline:
        pids = slots(proc.pid)
        if pids and seen is None:
            seen = time.monotonic()
        if pids and time.monotonic() - seen > 3.0:  # mid-search: its store and folder are under way
            os.kill(pids[0], signal.SIGKILL)
            killed = True
        time.sleep(0.05)
    _, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 0, stderr[-3000:]
    return killed


@pytest.mark.slow
def test_optimize_of_one_task_on_ray_lands_its_run_here(tmp_path):
    """`optimize TASK --executor ray`: the search and its re-judgement run in a Ray task into a
    private store; the run is merged into the store here (ids, lineage, crowning), the run's files
    land in --out, and the summary printed is the one `optimize` prints, its paths this machine's."""
    pytest.importorskip("ray")
    _, script = _suite(tmp_path)
    out, db = tmp_path / "out", tmp_path / "store.db"
    cmd = [sys.executable, "-m", "kernelwright.cli.main", "optimize", str(TASKS / "diag_matmul.py"),
           "--model", f"scripted:{script}", "--budget", "2", "--parallel", "1", "--device", "cpu",
           "--no-compile-baseline", "--out", str(out), "--store", str(db), "--json"]
    done = subprocess.run([*cmd, *RAY], capture_output=True, text=True, timeout=900, env=bench_env(db))
    assert done.returncode in (0, 1), done.stderr[-3000:]
    summary = json.loads(done.stdout)  # exactly one object
    assert summary["executor"] == "ray" and summary["out_dir"] == str(out)
    assert sum(summary["candidates"]["by_verdict"].values()) == 2
    with Store(db) as store:
        run = store.get_run(summary["run_id"])
        assert run.status == "finished" and run.task_path == str((TASKS / "diag_matmul.py").resolve())
        cands = store.candidates(run.id)
        assert len(cands) == 2 and [p.id for p in store.lineage(cands[1].id)] == [cands[0].id]
        crowned = store.crowning(run.id)
    assert crowned is not None
    if summary["best"]:
        assert summary["best"]["path"] == crowned.path == str(out / "best.py")
        assert (out / "best.py").is_file() and (out / "best.json").is_file()
    shown = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "show", run.id, "--store", str(db)],
                           capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and run.id in shown.stdout, shown.stderr[-2000:]
    resumed = subprocess.run([*cmd, *RAY, "--resume", run.id], capture_output=True, text=True, timeout=300,
                             env=bench_env(db))
    assert resumed.returncode == 2 and "--resume" in json.loads(resumed.stdout)["error"]


@pytest.mark.slow
def test_a_ray_search_cut_short_by_a_killed_driver_resumes_on_the_next_bench(tmp_path):
    """On a node that shares the bench's folders (here: the local Ray cluster), a Ray search runs in
    the task's scratch folder under OUT, as a local slot's does: a bench killed mid-search (the driver
    and everything it started) leaves that search's private store there, and the next bench resumes
    the same run rather than searching again from nothing."""
    pytest.importorskip("ray")
    from kernelwright.bench.run import SCRATCH

    _suite(tmp_path)
    proc = subprocess.Popen(_cmd(tmp_path, "out", *RAY), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=bench_env(tmp_path / "unused.db"), start_new_session=True)
    started = None
    deadline = time.monotonic() + 400
    try:
        while started is None and proc.poll() is None and time.monotonic() < deadline:
            for db in (tmp_path / "out" / SCRATCH).glob("*/kernelwright.db"):
                with Store(db) as private:
                    for run in private.list_runs():
                        if run.task_name == "1_DiagMatmul" and any(c.verdict for c in private.candidates(run.id)):
                            started = run.id
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        for pid in pids_with(b"_search_in_slot"):  # a Ray worker left behind would search on
            os.kill(pid, signal.SIGKILL)
    assert started is not None, "the search never judged a proposal in the bench's scratch folder"

    done = _bench(tmp_path, "out", *RAY)
    rows = {t["task"]: t for t in json.loads(done.stdout)["tasks"]}
    assert rows["level1/1_DiagMatmul.py"]["candidate"] == f"optimize:{started}"  # the same run, resumed
    _assert_one_run_per_task(tmp_path, "out")  # and its two proposals, across the kill, no more
