"""Store.merge_run: a run written into a private store elsewhere, copied whole into the bench's store
by its one writer; ids kept, lineage and crowning intact, a second merge of the run a no-op."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kernelwright.propose.base import Usage
from kernelwright.store import Store, UnknownRun

TASK = "class Model: pass\n"


def _judge(store: Store, cid: str, verdict: str, speedup: float | None) -> None:
    store.record_verdict(cid, verdict=verdict, reasons=[] if verdict == "accepted" else [{"check": "mismatch",
                         "detail": "wrong"}], speedup_vs_eager=speedup, speedup_vs_compile=None,
                         candidate_ms=1.0, eager_ms=1.0, compile_ms=None,
                         result_json=json.dumps({"verdict": verdict}), judge_seconds=0.5)


def _private_run(path: Path, scratch: Path) -> tuple[str, list[str]]:
    """A finished search in its own store: a parent, a child of it, a failed proposal, usage, a crowning."""
    with Store(path) as s:
        run = s.create_run(scratch / "task.py", TASK, "level1/1_T.py", "cpu", {"budget": 3})
        a = s.add_candidate(run, source="A", proposer="inductor", stage="translate")
        _judge(s, a, "accepted", 1.5)
        b = s.add_candidate(run, source="B", proposer="mutate", stage="optimize", parent_ids=[a], generation=1)
        _judge(s, b, "accepted", 2.0)
        c = s.add_candidate(run, source=None, failure="no code", proposer="llm", stage="repair")
        s.record_usage(run, c, "llm", Usage(1, 10, 20, 0.01, 1.0))
        s.record_crowning(run, candidate_id=b, path=str(scratch / "runs" / "t" / "best.py"),
                          speedup_vs_eager=1.9, speedup_vs_eager_interval=(1.7, 2.1), note="crowned")
        s.set_run_status(run, "finished", b)
    return run, [a, b, c]


def test_a_merged_run_keeps_its_ids_lineage_usage_and_crowning(tmp_path):
    private, scratch = tmp_path / "slot" / "kw.db", tmp_path / "node-scratch"
    run, (a, b, c) = _private_run(private, scratch)
    with Store(tmp_path / "bench.db") as bench:
        other = bench.create_run(tmp_path / "x.py", TASK, "level1/1_T.py", "cpu", {})  # the same task row
        assert bench.merge_run(private, run, task_path="/suite/level1/1_T.py",
                               moved=(str(scratch), str(tmp_path / "here")))
        got = bench.get_run(run)
        assert (got.status, got.best_candidate_id, got.task_path) == ("finished", b, "/suite/level1/1_T.py")
        assert [x.id for x in bench.candidates(run)] == [a, b, c]
        assert [x.id for x in bench.lineage(b)] == [a]
        assert bench.best(run).id == b
        assert bench.counts(run)["by_verdict"]["no_source"] == 1
        assert bench.usage_totals(run).input_tokens == 10
        crown = bench.crowning(run)
        assert crown is not None and crown.candidate_id == b
        assert crown.path == str(tmp_path / "here" / "runs" / "t" / "best.py")
        assert crown.speedup_vs_eager_interval == (1.7, 2.1)
        assert {r.id for r in bench.list_runs()} == {run, other}


def test_merging_a_run_twice_changes_nothing(tmp_path):
    private = tmp_path / "slot" / "kw.db"
    run, cands = _private_run(private, tmp_path)
    with Store(tmp_path / "bench.db") as bench:
        assert bench.merge_run(private, run)
        assert not bench.merge_run(private, run)
        assert len(bench.candidates(run)) == len(cands)
    conn = sqlite3.connect(tmp_path / "bench.db")
    try:
        assert conn.execute("SELECT COUNT(*) FROM llm_usage").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM candidate_parents").fetchone()[0] == 1
    finally:
        conn.close()


def test_a_failed_merge_leaves_nothing_behind(tmp_path):
    private = tmp_path / "slot" / "kw.db"
    run, _ = _private_run(private, tmp_path)
    with Store(tmp_path / "bench.db") as bench:
        with pytest.raises(UnknownRun):
            bench.merge_run(private, "r-nosuch")
        # A candidate id the bench store already holds: the insert fails midway and rolls back whole.
        clash = bench.create_run(tmp_path / "x.py", TASK, "t", "cpu", {})
        conn = sqlite3.connect(private)
        first = conn.execute("SELECT id FROM candidates ORDER BY rowid LIMIT 1").fetchone()[0]
        conn.close()
        bench._conn.execute("INSERT INTO candidates (id, run_id, source_hash, source, proposer, stage, created)"
                            " VALUES (?, ?, 'h', 'X', 'p', 's', 'now')", (first, clash))
        with pytest.raises(sqlite3.IntegrityError):
            bench.merge_run(private, run)
        assert {r.id for r in bench.list_runs()} == {clash}
