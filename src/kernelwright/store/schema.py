"""The store's schema, as an ordered list of migrations.

`PRAGMA user_version` holds how many migrations a database has had. Opening a
database applies the missing ones, each in its own transaction, so a crash between
two leaves a consistent, older version that the next open finishes. Append new
migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

Migration = Callable[[sqlite3.Connection], None]


class SchemaTooNew(RuntimeError):
    """The database was written by a newer kernelwright than this one."""


def _statements(*sql: str) -> Migration:
    # One execute() per statement: executescript() would commit the open transaction.
    def apply(conn: sqlite3.Connection) -> None:
        for statement in sql:
            conn.execute(statement)
    return apply


_V1 = _statements(
    """CREATE TABLE tasks (
        hash TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        source TEXT NOT NULL,
        created TEXT NOT NULL)""",
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        updated TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted', 'failed')),
        task_path TEXT NOT NULL,
        task_hash TEXT NOT NULL REFERENCES tasks(hash),
        task_name TEXT NOT NULL,
        device TEXT NOT NULL,
        config TEXT NOT NULL,
        best_candidate_id TEXT)""",
    "CREATE INDEX runs_created ON runs(created)",
    "CREATE INDEX runs_task_device ON runs(task_hash, device)",
    """CREATE TABLE candidates (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        source_hash TEXT,
        source TEXT,
        failure TEXT,
        proposer TEXT NOT NULL,
        stage TEXT NOT NULL,
        prompt TEXT,
        reply TEXT,
        note TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        generation INTEGER NOT NULL DEFAULT 0,
        island INTEGER NOT NULL DEFAULT 0,
        CHECK ((source IS NULL) != (failure IS NULL)),
        CHECK ((source IS NULL) = (source_hash IS NULL)))""",
    "CREATE INDEX candidates_run ON candidates(run_id, created)",
    "CREATE INDEX candidates_source_hash ON candidates(source_hash)",
    """CREATE TABLE candidate_parents (
        candidate_id TEXT NOT NULL REFERENCES candidates(id) ON DELETE CASCADE,
        parent_id TEXT NOT NULL REFERENCES candidates(id),
        position INTEGER NOT NULL,
        PRIMARY KEY (candidate_id, position),
        CHECK (candidate_id != parent_id))""",
    """CREATE TABLE verdicts (
        candidate_id TEXT PRIMARY KEY REFERENCES candidates(id) ON DELETE CASCADE,
        verdict TEXT NOT NULL CHECK (verdict IN ('accepted', 'rejected', 'error')),
        reasons TEXT NOT NULL,
        first_reason_check TEXT,
        speedup_vs_eager REAL,
        speedup_vs_compile REAL,
        candidate_ms REAL,
        eager_ms REAL,
        compile_ms REAL,
        result_json TEXT NOT NULL,
        judged_at TEXT NOT NULL,
        judge_seconds REAL)""",
    "CREATE INDEX verdicts_best ON verdicts(verdict, speedup_vs_eager)",
    """CREATE TABLE llm_usage (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        candidate_id TEXT REFERENCES candidates(id) ON DELETE SET NULL,
        proposer TEXT NOT NULL,
        calls INTEGER NOT NULL,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        seconds REAL NOT NULL,
        created TEXT NOT NULL)""",
    "CREATE INDEX llm_usage_run ON llm_usage(run_id)",
)

# V2: the fresh re-judgement that ends a run (the figure every command reports first); the
# search's own verdicts stay in `verdicts`. One row per run: a resumed run crowns again.
_V2 = _statements(
    """CREATE TABLE crownings (
        run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
        candidate_id TEXT REFERENCES candidates(id),
        path TEXT,
        speedup_vs_eager REAL,
        speedup_vs_eager_low REAL,
        speedup_vs_eager_high REAL,
        speedup_vs_compile REAL,
        speedup_vs_compile_low REAL,
        speedup_vs_compile_high REAL,
        candidate_ms REAL,
        note TEXT NOT NULL,
        rejudged TEXT NOT NULL,
        result_json TEXT,
        crowned_at TEXT NOT NULL,
        CHECK ((candidate_id IS NULL) = (path IS NULL)))""",
)

MIGRATIONS: list[Migration] = [_V1, _V2]


def schema_version(conn: sqlite3.Connection) -> int:
    """How many migrations the database has had."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, where: str, migrations: Sequence[Migration] | None = None) -> int:
    """Bring the database up to the latest version and return it.

    `conn` must be in autocommit mode (isolation_level=None). Each step takes the
    write lock before it reads the version, so processes opening one database at
    once never apply a migration twice.
    """
    steps = MIGRATIONS if migrations is None else migrations
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            _refuse_newer(version, len(steps), where)
            if version == len(steps):
                conn.execute("COMMIT")
                return version
            steps[version](conn)
            conn.execute(f"PRAGMA user_version = {version + 1:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _refuse_newer(version: int, latest: int, where: str) -> None:
    if version > latest:
        raise SchemaTooNew(
            f"{where} has store schema version {version}, but this kernelwright knows only up to "
            f"{latest}; upgrade kernelwright, or point KERNELWRIGHT_STORE at another file")
