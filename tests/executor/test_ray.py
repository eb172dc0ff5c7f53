"""The Ray executor on a local Ray cluster (CPU): the same verdicts as the local executor, one
writer, and a judging slot killed mid-run loses and duplicates nothing (issue 16)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelwright.bench import records as R
from tests.bench.suite_fixture import make_suite

ray = pytest.importorskip("ray")

FAST = ["--device", "cpu", "--no-compile-baseline", "--no-timing", "--threads", "1", "--json"]


def _env(store: Path) -> dict[str, str]:
    env = dict(os.environ, KERNELWRIGHT_STORE=str(store), COLUMNS="160")
    env.pop("RAY_ADDRESS", None)  # a local cluster of the test's own
    return env


def _bench(suite: Path, cands: Path, out: Path, store: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "bench", str(suite), "--candidates",
                           str(cands), "--out", str(out), *FAST, *extra], capture_output=True, text=True,
                          env=_env(store), timeout=900)


def _verdicts(out: Path) -> dict[str, tuple[str, list[str]]]:
    return {r.candidate: (str(r.verdict), [x["check"] for x in r.reasons]) for r in R.load(out)}


@pytest.mark.slow
def test_the_same_verdicts_on_a_local_ray_cluster_as_on_the_local_executor(tmp_path):
    suite, cands = make_suite(tmp_path)
    local = _bench(suite, cands, tmp_path / "local", tmp_path / "local.db")
    on_ray = _bench(suite, cands, tmp_path / "ray", tmp_path / "ray.db", "--executor", "ray")
    assert local.returncode == 0, local.stderr[-2000:]
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    assert _verdicts(tmp_path / "ray") == _verdicts(tmp_path / "local")
    assert len(_verdicts(tmp_path / "ray")) == 5
    # The driver alone wrote the store: one run per task, each finished, every verdict in it.
    from kernelwright.store import Store

    with Store(tmp_path / "ray.db") as store:
        runs = store.list_runs()
        assert sorted(r.task_name for r in runs) == ["level1/1_GeluMul.py", "level1/2_Hinge.py", "level2/2_Broken.py"]
        assert all(r.status == "finished" for r in runs)
        assert sum(len(store.candidates(r.id)) for r in runs) == 5
    # The summary is the local one's, and the tasks come in suite order.
    assert json.loads(on_ray.stdout)["summary"] == json.loads(local.stdout)["summary"]
    assert [t["task"] for t in json.loads(on_ray.stdout)["tasks"]] == [t["task"] for t in json.loads(local.stdout)["tasks"]]


def _slot_pids() -> list[int]:
    """Ray worker processes running a verdict (Ray titles them after the task's function)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"_judge_in_slot" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_a_judging_slot_killed_mid_run_loses_and_duplicates_nothing(tmp_path):
    suite, cands = make_suite(tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kernelwright.cli.main", "bench", str(suite), "--candidates", str(cands),
           "--out", str(out), *FAST, "--executor", "ray"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(tmp_path / "s.db"))
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        pids = _slot_pids()
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=900)
    assert killed is not None, "no judging slot was seen running"
    assert proc.returncode == 0, stderr[-2000:]
    lines = (out / R.RESULTS).read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len(keys) == len(set(keys)) == 5  # each verdict once: the killed one was run again, not lost
    assert not any(x["check"] == "infrastructure" for r in R.load(out) for x in r.reasons)
    assert json.loads(stdout)["summary"]["candidates"] == 5


def test_a_record_of_a_lost_slot_is_judged_again_on_resume(tmp_path):
    suite, cands = make_suite(tmp_path)
    out = tmp_path / "out"
    first = _bench(suite, cands, out, tmp_path / "s.db")
    assert first.returncode == 0, first.stderr[-2000:]
    rows = R.load(out)
    lost = rows[0]
    # As the Ray executor records a slot lost on both tries.
    lines = [json.dumps({**lost.to_dict(), "verdict": "error", "reasons": [
        {"check": "infrastructure", "detail": "the judging slot was lost on both tries"}]})]
    lines += [json.dumps(r.to_dict()) for r in rows[1:]]
    (out / R.RESULTS).write_text("\n".join(lines) + "\n")
    again = _bench(suite, cands, out, tmp_path / "s.db")
    assert again.returncode == 0, again.stderr[-2000:]
    latest = {r.key: r for r in R.load(out)}  # the last record of a key is the one that counts
    assert str(latest[lost.key].verdict) == str(lost.verdict)
    assert len((out / R.RESULTS).read_text().splitlines()) == 6  # only the lost one judged again


def test_the_outcome_of_a_slot_lost_twice_is_an_infrastructure_error():
    from kernelwright.bench.records import ErrorCheck
    from kernelwright.executor import _ray

    class _Ray:
        @staticmethod
        def get(ref):
            raise ray.exceptions.WorkerCrashedError()

    out = _ray._outcome(_Ray, object())
    assert out.verdict is None and out.error_check == ErrorCheck.INFRASTRUCTURE
    assert "not the candidate's fault" in (out.error or "")
