"""Copying one run, whole, from another store file into this one (`Store.merge_run`).

A search that ran elsewhere (a local judging slot, a Ray task) writes a private store of its
own; the driver, the one writer of the bench's store, merges each finished run into it. The
rows keep their ids (a bench record's run and candidate ids stay valid), a merge is one
transaction, and merging a run the store already has changes nothing: a result sent twice is
merged once.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

# The tables that hold a run, in an order that satisfies their foreign keys. llm_usage's own
# INTEGER id is the destination's to assign: it is left out and made afresh.
_RUN_TABLES: tuple[tuple[str, str], ...] = (
    ("runs", "SELECT * FROM runs WHERE id = ?"),
    ("candidates", "SELECT * FROM candidates WHERE run_id = ? ORDER BY rowid"),
    ("candidate_parents", "SELECT p.* FROM candidate_parents p JOIN candidates c ON c.id = p.candidate_id"
                          " WHERE c.run_id = ? ORDER BY p.rowid"),
    ("verdicts", "SELECT v.* FROM verdicts v JOIN candidates c ON c.id = v.candidate_id"
                 " WHERE c.run_id = ? ORDER BY v.rowid"),
    ("llm_usage", "SELECT * FROM llm_usage WHERE run_id = ? ORDER BY id"),
    ("crownings", "SELECT * FROM crownings WHERE run_id = ?"),
)


def read_run(src: Path, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of run `run_id` in the store file `src`, by table (its task's row under "tasks").

    Raises KeyError when `src` has no such run.
    """
    conn = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("BEGIN")  # one snapshot of every table
        rows = {table: [dict(r) for r in conn.execute(query, (run_id,))] for table, query in _RUN_TABLES}
        if not rows["runs"]:
            raise KeyError(f"no run {run_id!r} in {src}")
        rows["tasks"] = [dict(r) for r in conn.execute("SELECT * FROM tasks WHERE hash = ?",
                                                       (rows["runs"][0]["task_hash"],))]
    finally:
        conn.close()
    for row in rows["llm_usage"]:
        del row["id"]
    return rows


def relocate(rows: dict[str, list[dict[str, Any]]], task_path: str | None,
             moved: tuple[str, str] | None) -> None:
    """Point the run at where its files are now: the driver's task file, and the crowned kernel's
    path under `moved[1]` where it was under `moved[0]` (the folder the search ran in)."""
    if task_path is not None:
        rows["runs"][0]["task_path"] = task_path
    if moved is None:
        return
    old, new = moved
    for crowning in rows["crownings"]:
        path = crowning.get("path")
        if path and Path(path).is_relative_to(old):
            crowning["path"] = str(Path(new) / Path(path).relative_to(old))


def insert_run(conn: sqlite3.Connection, rows: dict[str, list[dict[str, Any]]]) -> bool:
    """Insert the rows `read_run` gave, inside the caller's write transaction.

    False (and nothing written) when the run is there already.
    """
    run_id = rows["runs"][0]["id"]
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is not None:
        return False
    for task in rows["tasks"]:
        _insert(conn, "tasks", task, "INSERT OR IGNORE")  # the same task source: the same row
    for table, _ in _RUN_TABLES:
        for row in rows[table]:
            _insert(conn, table, row, "INSERT")
    return True


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any], verb: str) -> None:
    columns = list(row)
    conn.execute(f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                 [row[c] for c in columns])
