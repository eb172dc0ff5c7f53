"""Several processes and threads writing one store at once, while another reads it."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from kernelwright.store import Store

TASK = "class Model: pass\n"
PER_WRITER = 50

# Waits for a common start time so the writers really overlap (opening included),
# then writes one candidate and its verdict at a time, yielding the CPU between them.
WRITER = """
import sys, time
from kernelwright.store import Store
path, run_id, name, start = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
while time.time() < start:
    time.sleep(0.0005)
with Store(path) as store:
    if run_id == "new":
        run_id = store.create_run("t.py", "class Model: pass\\n", "t", "cpu", {"writer": name})
    for i in range(int(sys.argv[5])):
        cid = store.add_candidate(run_id, source=f"{name}-{i}", proposer=name, stage="optimize")
        store.record_verdict(cid, verdict="accepted", reasons=[], speedup_vs_eager=1.0 + i,
                             speedup_vs_compile=None, candidate_ms=1.0, eager_ms=1.0 + i,
                             compile_ms=None, result_json="{}", judge_seconds=0.1)
        time.sleep(0.001)
"""


def spawn_writers(path: Path, run_id: str, n: int, per_writer: int) -> list[subprocess.Popen[str]]:
    start = time.time() + 1.0  # time enough for every interpreter to start
    return [subprocess.Popen([sys.executable, "-c", WRITER, str(path), run_id, f"w{k}", str(start),
                              str(per_writer)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k in range(n)]


def finish(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err  # "database is locked" would surface here


def test_four_processes_write_while_one_reads(tmp_path: Path) -> None:
    path = tmp_path / "kw.db"
    with Store(path) as store:
        run_id = store.create_run("t.py", TASK, "t", "cpu", {})
        procs = spawn_writers(path, run_id, 4, PER_WRITER)
        seen = reads = 0
        while any(p.poll() is None for p in procs):
            rows = store.candidates(run_id)
            assert len(rows) >= seen  # committed rows never disappear
            assert all(r.verdict is None or r.speedup_vs_eager is not None for r in rows)
            seen, reads = len(rows), reads + 1
        finish(procs)
        rows = store.candidates(run_id)
    assert reads > 1
    assert sorted(r.source or "" for r in rows) == sorted(f"w{k}-{i}" for k in range(4) for i in range(PER_WRITER))
    assert all(r.verdict == "accepted" for r in rows)
    writers_in_order = [r.proposer for r in rows]  # ordered by creation time
    switches = sum(a != b for a, b in itertools.pairwise(writers_in_order))
    assert switches > 3, "the writers ran one after another, so nothing was tested"


def test_processes_opening_a_new_file_at_once(tmp_path: Path) -> None:
    # Each one races to create the file, switch it to WAL and apply the migrations.
    path = tmp_path / "kw.db"
    finish(spawn_writers(path, "new", 6, 5))
    with Store(path) as store:
        runs = store.list_runs()
        assert sorted(r.config["writer"] for r in runs) == [f"w{k}" for k in range(6)]
        assert all(len(store.candidates(r.id)) == 5 for r in runs)


def test_threads_share_one_store(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with Store(tmp_path / "kw.db") as store:
        run_id = store.create_run("t.py", TASK, "t", "cpu", {})

        def write(name: str) -> None:
            try:
                for i in range(25):
                    cid = store.add_candidate(run_id, source=f"{name}-{i}", proposer=name, stage="repair")
                    store.counts(run_id)
                    store.record_verdict(cid, verdict="rejected", reasons=[{"check": "shape", "detail": ""}],
                                         speedup_vs_eager=None, speedup_vs_compile=None,
                                         candidate_ms=None, eager_ms=None, compile_ms=None,
                                         result_json="{}", judge_seconds=None)
            except BaseException as exc:  # noqa: BLE001 - surfaced below; a thread's exception is otherwise lost
                errors.append(exc)

        threads = [threading.Thread(target=write, args=(f"t{k}",)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert store.counts(run_id)["by_reason"] == {"shape": 100}


def test_opening_waits_for_a_writer_on_a_new_file(tmp_path: Path) -> None:
    # Switching to WAL while another connection writes in rollback-journal mode fails
    # at once, without the busy handler: what processes opening a new file together
    # run into. The store must wait for the writer rather than fail "database is locked".
    path = tmp_path / "kw.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.3, holder.execute, ("COMMIT",)).start()
    started = time.monotonic()
    with Store(path, busy_timeout=5.0) as store:
        assert time.monotonic() - started >= 0.25
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    holder.close()
