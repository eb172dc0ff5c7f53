"""kill -9 in the middle of a search, then --resume: nothing judged is lost, nothing judged is judged again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelwright.store import Store
from tests.search import kernels as K

TASK = Path(__file__).parent.parent / "fixtures" / "tasks" / "diag_matmul.py"


def _optimize(tmp_path: Path, script: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "kernelwright.cli.main", "optimize", str(TASK), "--model", f"scripted:{script}",
           "--budget", "5", "--device", "cpu", "--json", "--store", str(tmp_path / "kw.db"),
           "--out", str(tmp_path / "out"), "--parallel", "1", "--no-compile-baseline", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _judged(db: Path) -> list:
    if not db.exists():
        return []
    with Store(db) as store:
        runs = store.list_runs()
        return [c for c in store.candidates(runs[0].id) if c.verdict] if runs else []


@pytest.mark.slow
def test_resume_after_kill_9_loses_nothing_and_repeats_no_judging(tmp_path):
    script = tmp_path / "replies.jsonl"
    script.write_text("\n".join(json.dumps({"text": K.reply(code)})
                                for code in (K.WRONG, K.SLOW, K.FAST, K.CRASH, K.TIE)) + "\n")
    db = tmp_path / "kw.db"
    proc = _optimize(tmp_path, script)
    deadline = time.monotonic() + 300
    while len(_judged(db)) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the search finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the judge process and everything it started
    proc.wait()
    before = {c.id: (c.verdict, c.judged_at, c.source_hash) for c in _judged(db)}
    assert len(before) >= 2
    with Store(db) as store:
        run_id = store.list_runs()[0].id
        assert store.get_run(run_id).status == "running"  # killed: nobody marked it

    resumed = _optimize(tmp_path, script, "--resume", run_id)
    out, err = resumed.communicate(timeout=900)
    assert resumed.returncode in (0, 1), err[-3000:]
    assert out.strip(), err[-3000:]
    summary = json.loads(out)
    assert summary["run_id"] == run_id
    with Store(db) as store:
        cands = store.candidates(run_id)
        assert store.get_run(run_id).status == "finished"
    assert len(cands) == 5  # the budget counts proposals made before the kill
    after = {c.id: (c.verdict, c.judged_at, c.source_hash) for c in cands}
    for cid, record in before.items():
        assert after[cid] == record  # kept exactly, not judged again
    judged_for_real = [c.source_hash for c in cands if (c.judge_seconds or 0) > 0]
    assert len(judged_for_real) == len(set(judged_for_real))  # no source judged twice
    assert all(c.verdict for c in cands if c.source)


@pytest.mark.slow
def test_ctrl_c_exits_130_marks_the_run_interrupted_and_leaves_no_worker(tmp_path):
    script = tmp_path / "replies.jsonl"
    script.write_text("\n".join(json.dumps({"text": K.reply(code)}) for code in (K.WRONG, K.SLOW, K.FAST)) + "\n")
    db = tmp_path / "kw.db"
    workers_before = _workers()
    proc = _optimize(tmp_path, script)
    deadline = time.monotonic() + 300
    while len(_judged(db)) < 1 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # inside the next judgement
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err
    with Store(db) as store:
        assert store.get_run(store.list_runs()[0].id).status == "interrupted"
    time.sleep(1.0)
    assert _workers() <= workers_before  # the judge's workers died with the run


def _workers() -> int:
    out = subprocess.run(["pgrep", "-f", "kernelwright.worker.entry"], capture_output=True, text=True)
    return len(out.stdout.split())
