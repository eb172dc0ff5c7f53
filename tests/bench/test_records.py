"""results.jsonl: durable lines, a line cut short by a kill, the resume key."""

from __future__ import annotations

from kernelwright.bench import records as R
from kernelwright.bench.records import BenchRow, Verdict


def test_round_trip_and_a_cut_line_dropped(tmp_path):
    a = BenchRow("level1/1_A.py", "level1/1_A.py", Verdict.ACCEPTED, "k1", "cpu", speedup_vs_eager=1.5,
                 eager_interval=(1.4, 1.6))
    b = BenchRow("level1/2_B.py", "level1/2_B.py", Verdict.REJECTED, "k2", "cpu",
                 reasons=[{"check": "mismatch", "detail": "wrong"}])
    R.append(tmp_path, a)
    R.append(tmp_path, b)
    with open(tmp_path / R.RESULTS, "ab") as f:
        f.write(b'{"task": "level1/3_C.py", "verd')  # killed mid-write
    assert R.load(tmp_path) == [a, b]
    assert (tmp_path / R.RESULTS).read_bytes().endswith(b"\n")  # repaired: the next line starts clean
    R.append(tmp_path, a)
    assert len(R.load(tmp_path)) == 3


def test_the_key_changes_with_whatever_the_verdict_depends_on():
    base = R.verdict_key("t", "task", "cand", "cpu", {"trials": 5})
    assert base == R.verdict_key("t", "task", "cand", "cpu", {"trials": 5})
    for other in (R.verdict_key("t", "task2", "cand", "cpu", {"trials": 5}),
                  R.verdict_key("t", "task", "cand2", "cpu", {"trials": 5}),
                  R.verdict_key("t", "task", "cand", "cuda", {"trials": 5}),
                  R.verdict_key("t", "task", "cand", "cpu", {"trials": 6}),
                  R.verdict_key("t2", "task", "cand", "cpu", {"trials": 5})):
        assert other != base


def test_the_key_settings_name_the_judges_code_and_torch(tmp_path) -> None:
    import shutil

    import torch

    from kernelwright import provenance
    from kernelwright.bench.run import settings_of
    from kernelwright.judge.verify import VerifyOptions

    settings = settings_of(VerifyOptions(device="cpu"))
    assert settings["torch"] == torch.__version__
    assert settings["kernelwright_code"] == provenance.code_digest()
    # One changed line anywhere in the package is another judge.
    copy = tmp_path / "kw"
    shutil.copytree(provenance.PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert provenance.code_digest(copy) == provenance.code_digest()
    timing = copy / "judge" / "timing.py"
    timing.write_text(timing.read_text() + "\n# another judge\n")
    assert provenance.code_digest(copy) != provenance.code_digest()


def test_a_record_keeps_the_most_gpu_work_a_trial_left_queued() -> None:
    from pathlib import Path

    from kernelwright.bench.run import row_from_verdict
    from kernelwright.bench.suite import SuiteTask

    task = SuiteTask("level2/1_Conv2D_ReLU_BiasAdd.py", Path("level2/1_Conv2D_ReLU_BiasAdd.py"), 2, 1)
    verdict = {"verdict": "accepted", "reasons": [], "findings": [], "timing": None,
               "correctness": [{"pending_ms": 0.004}, {"pending_ms": 0.031}, {"pending_ms": None}]}
    row = row_from_verdict(task, "c.py", "k", "cuda", verdict, 1.0)
    assert row.max_pending_ms == 0.031
    assert BenchRow.from_dict(row.to_dict()) == row
    cpu = row_from_verdict(task, "c.py", "k", "cpu", {**verdict, "correctness": [{"pending_ms": None}]}, 1.0)
    assert cpu.max_pending_ms is None
