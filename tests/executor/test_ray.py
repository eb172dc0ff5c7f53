"""The Ray executor on a local Ray cluster (CPU): the same verdicts as the local executor, one
writer, and a judging slot killed mid-run loses and duplicates nothing (issue 16)."""

from __future__ import annotations

import json

import pytest

from kernelwright.bench import records as R
from tests.bench.suite_fixture import make_suite
from tests.executor.bench_cli import assert_one_writer, kill_a_slot_mid_run, pids_with, run_bench
from tests.executor.bench_cli import verdicts as _verdicts

ray = pytest.importorskip("ray")
_bench = run_bench


@pytest.mark.slow
def test_the_same_verdicts_on_a_local_ray_cluster_as_on_the_local_executor(tmp_path):
    suite, cands = make_suite(tmp_path)
    local = _bench(suite, cands, tmp_path / "local", tmp_path / "local.db")
    on_ray = _bench(suite, cands, tmp_path / "ray", tmp_path / "ray.db", "--executor", "ray")
    assert local.returncode == 0, local.stderr[-2000:]
    assert on_ray.returncode == 0, on_ray.stderr[-2000:]
    assert _verdicts(tmp_path / "ray") == _verdicts(tmp_path / "local")
    assert len(_verdicts(tmp_path / "ray")) == 5
    assert_one_writer(tmp_path / "ray.db")
    # The summary is the local one's, and the tasks come in suite order.
    assert json.loads(on_ray.stdout)["summary"] == json.loads(local.stdout)["summary"]
    assert [t["task"] for t in json.loads(on_ray.stdout)["tasks"]] == [t["task"] for t in json.loads(local.stdout)["tasks"]]


@pytest.mark.slow
def test_a_judging_slot_killed_mid_run_loses_and_duplicates_nothing(tmp_path):
    # Ray titles a worker running a verdict after the task's function.
    kill_a_slot_mid_run(tmp_path, lambda bench: pids_with(b"_judge_in_slot"), "--executor", "ray")


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
