"""The store's API on one process: runs, candidates, verdicts, usage, queries, migrations."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from kernelwright.propose.base import Usage
from kernelwright.store import (
    SchemaTooNew,
    Store,
    StoreError,
    UnknownCandidate,
    UnknownRun,
    content_hash,
    default_store_path,
    schema,
)

TASK = "class Model: pass\n"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store(tmp_path / "kw.db") as s:
        yield s


def judged(store: Store, cid: str, verdict: str = "accepted", speedup: float | None = 1.0,
           checks: tuple[str, ...] = ()) -> None:
    store.record_verdict(
        cid, verdict=verdict, reasons=[{"check": c, "detail": f"{c} failed"} for c in checks],
        speedup_vs_eager=speedup, speedup_vs_compile=None, candidate_ms=1.0,
        eager_ms=speedup, compile_ms=None, result_json=json.dumps({"verdict": verdict}),
        judge_seconds=0.5)


def add(store: Store, run_id: str, source: str | None = "src", **kw: Any) -> str:
    kw.setdefault("proposer", "test")
    kw.setdefault("stage", "optimize")
    if source is None:
        kw.setdefault("failure", "no code block in the reply")
    return store.add_candidate(run_id, source=source, **kw)


def test_runs_round_trip_newest_first(store: Store) -> None:
    first = store.create_run("t.py", TASK, "gelu", "cpu", {"budget": 3, "proposers": ["a"]})
    second = store.create_run("t.py", TASK, "gelu", "cuda", {})
    run = store.get_run(first)
    assert (run.status, run.task_source, run.task_hash) == ("running", TASK, content_hash(TASK))
    assert run.config == {"budget": 3, "proposers": ["a"]} and run.best_candidate_id is None
    assert [r.id for r in store.list_runs()] == [second, first]
    assert [r.id for r in store.list_runs(limit=1)] == [second]
    tasks = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
    assert tasks == 1  # the same source twice is one task


def test_unknown_run_is_a_clear_key_error(store: Store) -> None:
    with pytest.raises(UnknownRun, match="no run 'r-nope'") as err:
        store.get_run("r-nope")
    assert isinstance(err.value, KeyError)
    for call in (store.candidates, store.counts, store.usage_totals, store.best):
        with pytest.raises(UnknownRun):
            call("r-nope")


def test_run_status_and_best_candidate(store: Store) -> None:
    run_id = store.create_run("t.py", TASK, "gelu", "cpu", {})
    other = store.create_run("t.py", TASK, "gelu", "cpu", {})
    cid = add(store, run_id)
    store.set_run_status(run_id, "interrupted", best_candidate_id=cid)
    store.set_run_status(run_id, "finished")  # keeps the best candidate
    run = store.get_run(run_id)
    assert (run.status, run.best_candidate_id) == ("finished", cid) and run.updated >= run.created
    with pytest.raises(ValueError, match="status"):
        store.set_run_status(run_id, "done")
    with pytest.raises(UnknownCandidate):
        store.set_run_status(other, "finished", best_candidate_id=cid)


def test_candidates_keep_parents_in_order_and_join_verdicts(store: Store) -> None:
    run_id = store.create_run("t.py", TASK, "gelu", "cpu", {})
    a, b = add(store, run_id, "a", stage="translate"), add(store, run_id, "b")
    child = add(store, run_id, "c", stage="crossover", parent_ids=[b, a], generation=2, island=1,
                prompt="p", reply="r", note="BLOCK 256 -> 512")
    failed = add(store, run_id, None)
    judged(store, a, "rejected", None, checks=("mismatch", "timing"))
    rows = {c.id: c for c in store.candidates(run_id)}
    assert list(rows) == [a, b, child, failed]
    c = rows[child]
    assert (c.parent_ids, c.generation, c.island, c.note, c.prompt) == ((b, a), 2, 1, "BLOCK 256 -> 512", "p")
    assert c.source_hash == content_hash("c") and c.verdict is None and c.speedup_vs_eager is None
    assert rows[failed].source is None and rows[failed].failure and rows[failed].source_hash is None
    assert rows[a].verdict == "rejected" and rows[a].first_reason_check == "mismatch"
    assert rows[a].reasons == ({"check": "mismatch", "detail": "mismatch failed"},
                               {"check": "timing", "detail": "timing failed"})
    assert [u.id for u in store.unjudged(run_id)] == [b, child]
    json.dumps([r.to_dict() for r in rows.values()])  # every record is JSON-ready


def test_bad_candidates_and_verdicts_are_refused(store: Store) -> None:
    run_id = store.create_run("t.py", TASK, "gelu", "cpu", {})
    with pytest.raises(ValueError, match="either source or a failure"):
        store.add_candidate(run_id, source="x", failure="y", proposer="p", stage="repair")
    with pytest.raises(ValueError, match="either source or a failure"):
        store.add_candidate(run_id, source=None, proposer="p", stage="repair")
    with pytest.raises(UnknownCandidate):
        add(store, run_id, parent_ids=["c-missing"])
    with pytest.raises(UnknownRun):
        add(store, "r-missing")
    cid, failed = add(store, run_id), add(store, run_id, None)
    with pytest.raises(ValueError, match="verdict"):
        judged(store, cid, "maybe")
    judged(store, cid)
    with pytest.raises(StoreError, match="already has a verdict"):
        judged(store, cid)
    with pytest.raises(StoreError, match="no source"):
        judged(store, failed)
    assert len(store.candidates(run_id)) == 2  # refused writes left nothing behind


def test_best_prefers_speed_then_the_earlier(store: Store) -> None:
    run_id = store.create_run("t.py", TASK, "gelu", "cpu", {})
    assert store.best(run_id) is None
    slow, fast, tie, wrong = (add(store, run_id, s) for s in "abcd")
    judged(store, slow, speedup=1.2)
    judged(store, fast, speedup=2.0)
    judged(store, tie, speedup=2.0)
    judged(store, wrong, "rejected", speedup=9.0, checks=("timer",))
    best = store.best(run_id)
    assert best is not None and best.id == fast


def test_lineage_is_breadth_first_and_survives_cycles(store: Store) -> None:
    run_id = store.create_run("t.py", TASK, "gelu", "cpu", {})
    root = add(store, run_id, "root")
    left, right = add(store, run_id, "l", parent_ids=[root]), add(store, run_id, "r", parent_ids=[root])
    child = add(store, run_id, "c", parent_ids=[right, left])
    assert [c.id for c in store.lineage(child)] == [right, left, root]
    assert store.lineage(root) == []
    # The API cannot make a cycle; a hand-edited database can, and lineage must still end.
    with sqlite3.connect(store.path) as raw:
        raw.execute("INSERT INTO candidate_parents VALUES (?, ?, 0)", (root, child))
    assert [c.id for c in store.lineage(child)] == [right, left, root]
    with pytest.raises(UnknownCandidate):
        store.lineage("c-missing")


def test_counts_and_usage_totals(store: Store) -> None:
    run_id = store.create_run("t.py", TASK, "gelu", "cpu", {})
    ids = [add(store, run_id, str(i)) for i in range(5)]
    add(store, run_id, None)
    judged(store, ids[0])
    judged(store, ids[1], "rejected", checks=("mismatch",))
    judged(store, ids[2], "rejected", checks=("mismatch", "shape"))
    judged(store, ids[3], "rejected", checks=("compile",))
    assert store.counts(run_id) == {
        "by_verdict": {"accepted": 1, "rejected": 3, "error": 0, "no_source": 1, "unjudged": 1},
        "by_reason": {"mismatch": 2, "compile": 1}}
    assert store.usage_totals(run_id) == Usage()
    store.record_usage(run_id, ids[0], "openai:x", Usage(1, 100, 50, 0.25, 2.0))
    store.record_usage(run_id, None, "openai:x", Usage(2, 10, 5, 0.5, 1.0))
    assert store.usage_totals(run_id) == Usage(3, 110, 55, 0.75, 3.0)
    other = store.create_run("t.py", TASK, "gelu", "cpu", {})
    with pytest.raises(UnknownCandidate):  # usage is charged to a candidate of the same run
        store.record_usage(other, ids[0], "openai:x", Usage(1))
    assert store.usage_totals(other) == Usage()


def test_verdict_for_source_spans_runs_of_one_task_and_device(store: Store) -> None:
    first = store.create_run("t.py", TASK, "gelu", "cpu", {})
    cid = add(store, first, "kernel")
    judged(store, cid, speedup=1.7)
    key = (content_hash(TASK), "cpu", content_hash("kernel"))
    later = store.create_run("elsewhere/t.py", TASK, "gelu", "cpu", {})
    found = store.verdict_for_source(*key)
    assert found is not None and found.candidate_id == cid and found.speedup_vs_eager == 1.7
    assert store.verdict_for_source(key[0], "cuda", key[2]) is None
    assert store.verdict_for_source(content_hash("other task"), "cpu", key[2]) is None
    # What a run does with a known source: copy the verdict instead of judging again.
    again = add(store, later, "kernel")
    store.record_verdict(again, verdict=found.verdict, reasons=found.reasons, speedup_vs_eager=1.7,
                         speedup_vs_compile=None, candidate_ms=None, eager_ms=None, compile_ms=None,
                         result_json=found.result_json, judge_seconds=0.0)
    assert store.candidates(later)[0].verdict == "accepted"
    # A judge error says nothing about the source, so it is not reused.
    errored = add(store, later, "flaky")
    judged(store, errored, "error", None, checks=("crash",))
    assert store.verdict_for_source(key[0], "cpu", content_hash("flaky")) is None


def test_archive_holds_the_best_kernel_of_each_other_task(store: Store) -> None:
    def task_with(task: str, device: str, speedups: dict[str, float]) -> None:
        run_id = store.create_run(f"{task}.py", task, task, device, {})
        for source, speedup in speedups.items():
            judged(store, add(store, run_id, source), speedup=speedup)

    task_with("relu", "cpu", {"relu-a": 1.5, "relu-b": 3.0})
    task_with("gemm", "cpu", {"gemm-a": 2.0})
    task_with("gemm", "cpu", {"gemm-b": 2.5})  # a second run of the same task
    task_with("conv", "cuda", {"conv-a": 9.0})
    run_id = store.create_run("soft.py", "soft", "soft", "cpu", {})
    judged(store, add(store, run_id, "soft-bad"), "rejected", speedup=5.0, checks=("mismatch",))

    entries = store.archive("cpu")
    assert [(e.task_name, e.source, e.speedup_vs_eager) for e in entries] == [
        ("relu", "relu-b", 3.0), ("gemm", "gemm-b", 2.5)]
    assert entries[0].task_source == "relu" and entries[0].task_hash == content_hash("relu")
    assert [e.task_name for e in store.archive("cpu", exclude_task_hash=content_hash("relu"))] == ["gemm"]
    assert len(store.archive("cpu", limit=1)) == 1
    assert [e.source for e in store.archive("cuda")] == ["conv-a"]


def test_pragmas(store: Store) -> None:
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    assert schema.schema_version(conn) == len(schema.MIGRATIONS)


def test_default_store_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERNELWRIGHT_STORE", str(tmp_path / "x.db"))
    assert default_store_path() == tmp_path / "x.db"
    monkeypatch.delenv("KERNELWRIGHT_STORE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_store_path() == tmp_path / "kernelwright" / "kernelwright.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / ".local/share/kernelwright/kernelwright.db"


# -- migrations ---------------------------------------------------------------

def _add_best_speedup_table(conn: sqlite3.Connection) -> None:
    # A stand-in "version 2": a new table filled from existing rows.
    conn.execute("CREATE TABLE run_best (run_id TEXT PRIMARY KEY, speedup REAL)")
    conn.execute("INSERT INTO run_best SELECT c.run_id, MAX(v.speedup_vs_eager) FROM verdicts v"
                 " JOIN candidates c ON c.id = v.candidate_id GROUP BY c.run_id")


def test_an_older_database_is_upgraded_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kw.db"
    with Store(path) as old:
        run_id = old.create_run("t.py", TASK, "gelu", "cpu", {})
        judged(old, add(old, run_id), speedup=1.25)
    shipped = len(schema.MIGRATIONS)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, _add_best_speedup_table])
    with Store(path) as new:
        assert schema.schema_version(new._conn) == shipped + 1
        assert [tuple(r) for r in new._conn.execute("SELECT * FROM run_best")] == [(run_id, 1.25)]
        assert new.best(run_id) is not None  # the old rows are still there


def test_an_empty_file_gets_the_whole_schema(tmp_path: Path) -> None:
    path = tmp_path / "kw.db"
    sqlite3.connect(path).close()
    with Store(path) as store:
        assert schema.schema_version(store._conn) == len(schema.MIGRATIONS)
        store.create_run("t.py", TASK, "gelu", "cpu", {})


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def half_done(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("migration bug")

    path = tmp_path / "kw.db"
    Store(path).close()
    shipped = len(schema.MIGRATIONS)
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, half_done])
    with pytest.raises(RuntimeError, match="migration bug"):
        Store(path)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == shipped
    assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None


def test_a_newer_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kw.db"
    Store(path).close()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {len(schema.MIGRATIONS) + 1}")
    n = len(schema.MIGRATIONS)
    with pytest.raises(SchemaTooNew, match=rf"version {n + 1}, but this kernelwright knows only up to {n}"):
        Store(path)


def test_a_version_1_store_gains_crownings_and_keeps_its_runs(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "kw.db"
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:1])  # what kernelwright 0.1 at e239ca2 wrote
        with Store(path) as old:
            run_id = old.create_run("t.py", TASK, "gelu", "cpu", {})
            cid = add(old, run_id)
            judged(old, cid, speedup=1.25)
    with Store(path) as new:
        assert schema.schema_version(new._conn) == len(schema.MIGRATIONS)
        assert new.crowning(run_id) is None  # an old run: never crowned as far as the store knows
        new.record_crowning(run_id, candidate_id=cid, path="/x/best.py", speedup_vs_eager=1.2,
                            speedup_vs_eager_interval=(1.1, 1.3), note="re-judged in a fresh process")
        c = new.crowning(run_id)
        assert c is not None and c.speedup_vs_eager_interval == (1.1, 1.3) and c.rejudged == ()
        assert c.to_dict()["speedup_vs_eager_interval"] == [1.1, 1.3]
        assert new.best(run_id).speedup_vs_eager == 1.25
