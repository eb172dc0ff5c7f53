"""`kernelwright export`: one row per judged kernel of a run or a bench, as the store recorded it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelwright.report import ExportFormat, rows_for, write
from kernelwright.store import Store
from kernelwright.task.loader import InputError
from tests.conftest import CANDIDATES, TASKS


def _export(*args: str, store: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERNELWRIGHT_STORE=str(store))
    return subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "export", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_a_bench_exports_every_judged_kernel_with_its_code_verdict_and_task(tmp_path, benched):
    pa = pytest.importorskip("pyarrow.parquet")
    out, store = benched
    r = _export(str(out), "-o", str(tmp_path / "k.jsonl"), store=store)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (tmp_path / "k.jsonl").read_text().splitlines()]
    by_note = {row["note"]: row for row in rows}
    # The five candidates the bench judged (the broken task's is an error record of the task).
    assert {"level1/1_GeluMul.py", "level_1_problem_1_sample_0_kernel.py", "level1/2_Hinge/honest.py",
            "level1/2_Hinge/zeros.py"} <= set(by_note)
    honest = by_note["level1/2_Hinge/honest.py"]
    assert honest["correct"] and honest["verdict"] == "accepted" and honest["error"] is None
    assert (honest["task_id"], honest["level"], honest["problem_id"], honest["task_name"]) == (
        "level1/2_Hinge.py", 1, 2, "Hinge")
    assert honest["kernel_code"] == (CANDIDATES / "hinge_loss_torch.py").read_text()
    assert honest["reference_code"] == (TASKS / "hinge_loss.py").read_text()
    assert honest["proposer"] == "bench" and honest["max_difference"] is not None
    assert honest["environment"].get("device") == "cpu" and honest["findings"]
    zeros = by_note["level1/2_Hinge/zeros.py"]
    assert not zeros["correct"] and zeros["verdict"] == "rejected"
    assert zeros["error"].startswith(zeros["reasons"][0]["check"] + ": ")
    replay = by_note["level_1_problem_1_sample_0_kernel.py"]
    assert not replay["correct"] and replay["task_id"] == "level1/1_GeluMul.py"
    # The same rows as one parquet table (nested fields as JSON text).
    r = _export(str(out), "--format", "parquet", "-o", str(tmp_path / "k.parquet"), store=store)
    assert r.returncode == 0, r.stderr
    table = pa.read_table(tmp_path / "k.parquet").to_pylist()
    assert [(t["note"], t["verdict"], t["correct"]) for t in table] == [
        (row["note"], row["verdict"], row["correct"]) for row in rows]
    assert json.loads(next(t for t in table if t["note"] == "level1/2_Hinge/zeros.py")["reasons"]) == zeros["reasons"]


def test_a_runs_rows_carry_the_timing_and_its_intervals(tmp_path, judge):
    result = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py")
    assert result.accepted, result.reasons
    with Store(tmp_path / "s.db") as store:
        task = TASKS / "gelu_mul.py"
        run_id = store.create_run(task, task.read_text(), "gelu_mul", "cpu", {})
        parent = store.add_candidate(run_id, source="# a parent", proposer="inductor", stage="draft")
        cid = store.add_candidate(run_id, source=(CANDIDATES / "gelu_mul_torch.py").read_text(), proposer="mutate",
                                  stage="optimize", parent_ids=[parent])
        store.add_candidate(run_id, source=None, proposer="mutate", stage="optimize", failure="nothing to vary")
        d = result.to_dict()
        t = d["timing"]
        store.record_verdict(cid, verdict="accepted", reasons=[], speedup_vs_eager=t["speedup_vs_eager"],
                             speedup_vs_compile=None, candidate_ms=t["candidate_ms"]["median"],
                             eager_ms=t["eager_ms"]["median"], compile_ms=None,
                             # As a search stores it: the verdict with the feedback its proposers got.
                             result_json=json.dumps({"result": d, "feedback": "fast"}), judge_seconds=3.0)
        rows = rows_for(store, run_id)
    assert len(rows) == 1  # the unjudged parent and the proposal without source are not kernels
    row = rows[0]
    assert row.parent_id == parent and row.proposer == "mutate" and row.level is None
    assert row.max_difference == max(tr.max_abs_error for tr in result.correctness)
    assert row.speedup_vs_eager == t["speedup_vs_eager"]
    assert row.speedup_vs_eager_interval == list(t["speedup_vs_eager_interval"])
    assert row.kernel_ms == t["candidate_ms"]["median"] and row.profile_summary
    assert row.environment["device"] == "cpu" and row.findings
    write(rows, tmp_path / "one.jsonl", ExportFormat.JSONL)
    assert json.loads((tmp_path / "one.jsonl").read_text())["candidate_id"] == cid


def test_what_cannot_be_exported_says_why(tmp_path, monkeypatch):
    store = tmp_path / "s.db"
    r = _export("r-20990101-000000-abcdef", "-o", str(tmp_path / "x.jsonl"), store=store)
    assert r.returncode == 2 and "no run" in r.stderr and not (tmp_path / "x.jsonl").exists()
    empty = tmp_path / "out"
    empty.mkdir()
    with Store(store) as s:
        with pytest.raises(InputError, match="no bench records"):
            rows_for(s, str(empty))
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    with pytest.raises(InputError, match=r"kernelwright\[parquet\]"):
        write([], tmp_path / "x.parquet", ExportFormat.PARQUET)
    assert not (tmp_path / "x.parquet").exists()


WINNERS = """
import json, sys
import torch
sys.path.insert(0, sys.argv[1])
from kernels import L1P1GeluMul, L1P2Hinge, UnverifiedInputs
sys.path.insert(0, sys.argv[2])
import gelu_mul, hinge_loss

torch.manual_seed(0)
x = torch.randn(61, 1531)
k = L1P1GeluMul()
ok = torch.allclose(k(x), gelu_mul.Model()(x), atol=1e-5)
small = torch.allclose(k(x[:3]), gelu_mul.Model()(x[:3]), atol=1e-6)  # falls back
try:
    L1P1GeluMul(fallback=False)(x.double())
    raised = ""
except UnverifiedInputs as exc:
    raised = str(exc)
print(json.dumps({"ok": ok, "small": small, "raised": raised,
                  "hinge": L1P2Hinge.__module__, "verified": sys.modules["kernels.level1_1_gelumul"].VERIFIED}))
"""


def test_the_winners_as_a_package_run_where_verified_and_fall_back_elsewhere(tmp_path, benched):
    out, store = benched
    pkg = tmp_path / "kernels"
    r = _export(str(out), "--as-module", str(pkg), store=store)
    assert r.returncode == 0, r.stderr
    assert "L1P1GeluMul" in r.stdout and "L1P2Hinge" in r.stdout
    # The honest gelu candidate won over the replaying one (only it was accepted); its code as judged.
    assert (pkg / "_kernels" / "level1_1_gelumul.py").read_text() == (CANDIDATES / "gelu_mul_torch.py").read_text()
    run = subprocess.run([sys.executable, "-c", WINNERS, str(tmp_path), str(TASKS)], capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert got["ok"] and got["small"]
    assert "input 0 is torch.float64, verified as float32" in got["raised"]
    assert got["verified"]["inputs"][0] == {"kind": "tensor", "dtype": "float32", "shape": [61, 1531]}
    assert got["verified"]["how"] == "best accepted in the bench" and got["verified"]["device"] == "cpu"
    # A folder that holds something else is never written into.
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    r = _export(str(out), "--as-module", str(other), store=store)
    assert r.returncode == 2 and "not empty" in r.stderr
