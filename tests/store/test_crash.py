"""A writer killed with SIGKILL mid-write loses at most its open transaction."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelwright.store import Store

# Writes candidates and verdicts as fast as it can; says "ready" after its first commit.
WRITER = """
import json, sys
from kernelwright.store import Store
store = Store(sys.argv[1])
run_id = sys.argv[2]
for i in range(10**9):
    source = f"kernel {i} " + "x" * 2000
    cid = store.add_candidate(run_id, source=source, proposer="w", stage="optimize", note=str(i))
    store.record_verdict(cid, verdict="accepted", reasons=[], speedup_vs_eager=float(i),
                         speedup_vs_compile=None, candidate_ms=1.0, eager_ms=float(i),
                         compile_ms=None, result_json=json.dumps({"i": i, "pad": "y" * 4000}),
                         judge_seconds=0.1)
    if i == 0:
        print("ready", flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_write_leaves_a_sound_database(tmp_path: Path) -> None:
    path = tmp_path / "kw.db"
    with Store(path) as store:
        run_id = store.create_run("t.py", "class Model: pass\n", "t", "cpu", {})
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), run_id],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n", proc.stderr
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL  # it was still writing when killed

    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    raw.close()
    # A fresh writer gets the lock at once: the dead process left none behind.
    started = time.monotonic()
    with Store(path, busy_timeout=0.5) as store:
        rows = store.candidates(run_id)
        store.add_candidate(run_id, source="after the crash", proposer="new", stage="repair")
        assert time.monotonic() - started < 1.0
    assert len(rows) > 10, "the writer was killed before it wrote much; nothing was tested"
    assert [int(r.note) for r in rows] == list(range(len(rows)))  # no gap: commits are in order
    assert all(r.verdict is not None for r in rows[:-1])  # only the last may lack its verdict
    for row in rows:
        i = int(row.note)
        assert row.source == f"kernel {i} " + "x" * 2000
        if row.verdict is not None:
            assert row.speedup_vs_eager == float(i) and row.judged_at is not None
            assert row.result_json is not None and json.loads(row.result_json)["i"] == i
