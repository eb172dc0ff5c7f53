"""The Store: one SQLite file of runs, candidates, verdicts and LLM usage."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from kernelwright.propose.base import Usage
from kernelwright.store.records import (
    RUN_STATUSES,
    VERDICTS,
    ArchiveEntry,
    CandidateRecord,
    CrowningRecord,
    RunRecord,
    VerdictRecord,
)
from kernelwright.store.schema import migrate


class StoreError(Exception):
    """A request the store cannot satisfy."""


class UnknownRun(StoreError, KeyError):
    """No run has this id."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0])


class UnknownCandidate(StoreError, KeyError):
    """No candidate has this id."""

    def __str__(self) -> str:
        return str(self.args[0])


def content_hash(text: str) -> str:
    """The sha256 hex digest that the store keys task and candidate sources by."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _now() -> str:
    # Fixed-width ISO 8601 in UTC, so text order is time order.
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


_RUN_SELECT = """SELECT r.*, t.source AS task_source FROM runs r JOIN tasks t ON t.hash = r.task_hash"""
_CANDIDATE_COLUMNS = """SELECT c.*, v.verdict, v.reasons, v.first_reason_check, v.speedup_vs_eager,
    v.speedup_vs_compile, v.candidate_ms, v.eager_ms, v.compile_ms, v.result_json, v.judged_at,
    v.judge_seconds"""


class Store:
    """Runs, candidates, verdicts and LLM usage in one SQLite file.

    Every method is one short transaction. One Store may be shared by threads (a
    lock serializes them on one connection); processes each open their own Store on
    the same path, and SQLite's locks serialize their writes. Do not use a Store
    inherited across fork().
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = _connect(self.path, busy_timeout)
        try:
            migrate(self._conn, str(self.path))
        except BaseException:
            self._conn.close()
            raise

    # -- runs --------------------------------------------------------------

    def create_run(self, task_path: str | os.PathLike[str], task_source: str, task_name: str,
                   device: str, config: dict[str, Any]) -> str:
        """Record a new run (status "running") and its task; return the run id."""
        now, task_hash = _now(), content_hash(task_source)
        run_id = f"r-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO tasks (hash, name, source, created) VALUES (?, ?, ?, ?)",
                         (task_hash, task_name, task_source, now))
            conn.execute(
                "INSERT INTO runs (id, created, updated, status, task_path, task_hash, task_name, device,"
                " config) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)",
                (run_id, now, now, str(task_path), task_hash, task_name, device,
                 json.dumps(config, sort_keys=True)))
        return run_id

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this id; raises UnknownRun."""
        with self._read() as conn:
            row = conn.execute(f"{_RUN_SELECT} WHERE r.id = ?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(f"no run {run_id!r} in {self.path}")
        return _run(row)

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        with self._read() as conn:
            rows = conn.execute(f"{_RUN_SELECT} ORDER BY r.created DESC, r.rowid DESC LIMIT ?",
                                (limit,)).fetchall()
        return [_run(row) for row in rows]

    def set_run_status(self, run_id: str, status: str, best_candidate_id: str | None = None) -> None:
        """Set a run's status and, when given, its best candidate (which must belong to the run)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {RUN_STATUSES}, not {status!r}")
        with self._write() as conn:
            self._require_run(conn, run_id)
            if best_candidate_id is not None:
                self._require_candidate(conn, best_candidate_id, run_id)
            conn.execute("UPDATE runs SET status = ?, updated = ?,"
                         " best_candidate_id = COALESCE(?, best_candidate_id) WHERE id = ?",
                         (status, _now(), best_candidate_id, run_id))

    def merge_run(self, src: str | os.PathLike[str], run_id: str, *, task_path: str | None = None,
                  moved: tuple[str, str] | None = None) -> bool:
        """Copy run `run_id` whole (candidates, lineage, verdicts, usage, crowning) from the store
        file `src` into this one, ids kept, in one transaction; False when this store has it already.

        `task_path` replaces the run's task path, and `moved` (old folder, new folder) the
        crowned kernel's folder, where the search ran elsewhere. Raises UnknownRun when `src`
        has no such run.
        """
        from kernelwright.store import merge

        try:
            rows = merge.read_run(Path(src), run_id)
        except KeyError:
            raise UnknownRun(f"no run {run_id!r} in {src}") from None
        merge.relocate(rows, task_path, moved)
        with self._write() as conn:
            return merge.insert_run(conn, rows)

    # -- writing candidates, verdicts, usage --------------------------------

    def add_candidate(self, run_id: str, *, source: str | None, proposer: str, stage: str,
                      prompt: str | None = None, reply: str | None = None, note: str = "",
                      failure: str | None = None, parent_ids: Sequence[str] = (),
                      generation: int = 0, island: int = 0) -> str:
        """Record one proposal (source, or the failure that left it without one); return its id."""
        if (source is None) == (failure is None):
            raise ValueError("a candidate has either source or a failure, not both or neither")
        candidate_id, now = f"c-{secrets.token_hex(6)}", _now()
        with self._write() as conn:
            self._require_run(conn, run_id)
            for parent_id in parent_ids:
                self._require_candidate(conn, parent_id)
            conn.execute(
                "INSERT INTO candidates (id, run_id, source_hash, source, failure, proposer, stage,"
                " prompt, reply, note, created, generation, island)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (candidate_id, run_id, None if source is None else content_hash(source), source,
                 failure, proposer, stage, prompt, reply, note, now, generation, island))
            conn.executemany(
                "INSERT INTO candidate_parents (candidate_id, parent_id, position) VALUES (?, ?, ?)",
                [(candidate_id, parent_id, i) for i, parent_id in enumerate(parent_ids)])
            conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (now, run_id))
        return candidate_id

    def record_verdict(self, candidate_id: str, *, verdict: str, reasons: Sequence[Mapping[str, Any]],
                       speedup_vs_eager: float | None, speedup_vs_compile: float | None,
                       candidate_ms: float | None, eager_ms: float | None, compile_ms: float | None,
                       result_json: str, judge_seconds: float | None) -> None:
        """Record the judge's verdict on a candidate with source; a candidate is judged once."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        plain = [dict(r) for r in reasons]  # a VerdictRecord's tuple of reasons is welcome too
        first_check = str(plain[0]["check"]) if plain else None
        now = _now()
        with self._write() as conn:
            row = self._require_candidate(conn, candidate_id)
            if row["source"] is None:
                raise StoreError(f"candidate {candidate_id} has no source to judge")
            if conn.execute("SELECT 1 FROM verdicts WHERE candidate_id = ?", (candidate_id,)).fetchone():
                raise StoreError(f"candidate {candidate_id} already has a verdict")
            conn.execute(
                "INSERT INTO verdicts (candidate_id, verdict, reasons, first_reason_check,"
                " speedup_vs_eager, speedup_vs_compile, candidate_ms, eager_ms, compile_ms,"
                " result_json, judged_at, judge_seconds) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (candidate_id, verdict, json.dumps(plain), first_check, speedup_vs_eager,
                 speedup_vs_compile, candidate_ms, eager_ms, compile_ms, result_json, now,
                 judge_seconds))
            conn.execute("UPDATE runs SET updated = ? WHERE id = ?", (now, row["run_id"]))

    def record_usage(self, run_id: str, candidate_id: str | None, proposer: str, usage: Usage) -> None:
        """Record what one proposal's LLM calls cost (candidate_id None: not tied to a candidate)."""
        with self._write() as conn:
            self._require_run(conn, run_id)
            if candidate_id is not None:
                self._require_candidate(conn, candidate_id, run_id)
            conn.execute(
                "INSERT INTO llm_usage (run_id, candidate_id, proposer, calls, input_tokens,"
                " output_tokens, cost_usd, seconds, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, candidate_id, proposer, usage.calls, usage.input_tokens,
                 usage.output_tokens, usage.cost_usd, usage.seconds, _now()))

    # -- reading candidates -------------------------------------------------

    def candidates(self, run_id: str) -> list[CandidateRecord]:
        """Every candidate of a run, oldest first, with verdict fields (None when unjudged)."""
        return self._run_candidates(run_id, "TRUE")

    def unjudged(self, run_id: str) -> list[CandidateRecord]:
        """Candidates with source but no verdict yet, oldest first: what a resumed run judges."""
        return self._run_candidates(run_id, "c.source IS NOT NULL AND v.candidate_id IS NULL")

    def best(self, run_id: str) -> CandidateRecord | None:
        """The accepted candidate with the highest speedup over eager; the earlier one on a tie."""
        found = self._run_candidates(
            run_id, "v.verdict = 'accepted'",
            order="v.speedup_vs_eager DESC, c.created, c.rowid", limit=1)
        return found[0] if found else None

    def record_crowning(self, run_id: str, *, candidate_id: str | None, path: str | None,
                        speedup_vs_eager: float | None = None,
                        speedup_vs_eager_interval: Sequence[float] | None = None,
                        speedup_vs_compile: float | None = None,
                        speedup_vs_compile_interval: Sequence[float] | None = None,
                        candidate_ms: float | None = None, note: str,
                        rejudged: Sequence[Mapping[str, Any]] = (),
                        result: Mapping[str, Any] | None = None) -> None:
        """Record how a run ended (replacing an earlier crowning of the same run, as a resume makes).

        `candidate_id` and `path` are both given (a kernel was crowned) or both None.
        """
        if (candidate_id is None) != (path is None):
            raise ValueError("a crowning names both a candidate and its path, or neither")
        eager_lo, eager_hi = _interval(speedup_vs_eager_interval)
        comp_lo, comp_hi = _interval(speedup_vs_compile_interval)
        with self._write() as conn:
            self._require_run(conn, run_id)
            if candidate_id is not None:
                self._require_candidate(conn, candidate_id, run_id)
            conn.execute(
                "INSERT OR REPLACE INTO crownings (run_id, candidate_id, path, speedup_vs_eager,"
                " speedup_vs_eager_low, speedup_vs_eager_high, speedup_vs_compile, speedup_vs_compile_low,"
                " speedup_vs_compile_high, candidate_ms, note, rejudged, result_json, crowned_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, candidate_id, path, speedup_vs_eager, eager_lo, eager_hi, speedup_vs_compile,
                 comp_lo, comp_hi, candidate_ms, note, json.dumps(list(rejudged), allow_nan=False),
                 None if result is None else json.dumps(result, allow_nan=False), _now()))

    def crowning(self, run_id: str) -> CrowningRecord | None:
        """How the run ended, or None while it has not been crowned (running, interrupted, or older)."""
        with self._read() as conn:
            self._require_run(conn, run_id)
            row = conn.execute("SELECT * FROM crownings WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _crowning(row)

    def candidate(self, candidate_id: str) -> CandidateRecord:
        """One candidate with its verdict fields; raises UnknownCandidate."""
        with self._read() as conn:
            self._require_candidate(conn, candidate_id)
            return _fetch_candidates(conn, "c.id = ?", (candidate_id,))[0]

    def lineage(self, candidate_id: str) -> list[CandidateRecord]:
        """The ancestors of a candidate, breadth-first, parents in the order they were given."""
        with self._read() as conn:
            self._require_candidate(conn, candidate_id)
            seen, frontier, order = {candidate_id}, [candidate_id], []
            while frontier:
                level = []
                for child in frontier:
                    for (parent,) in conn.execute("SELECT parent_id FROM candidate_parents WHERE"
                                                  " candidate_id = ? ORDER BY position", (child,)):
                        if parent not in seen:  # a cycle or a shared ancestor: visit once
                            seen.add(parent)
                            level.append(parent)
                order += level
                frontier = level
            return [_fetch_candidates(conn, "c.id = ?", (pid,))[0] for pid in order]

    def verdict_for_source(self, task_hash: str, device: str, source_hash: str) -> VerdictRecord | None:
        """The latest verdict on this exact source for this task on this device, from any run.

        "error" verdicts are skipped: they say the judge failed, not what the source is worth.
        """
        with self._read() as conn:
            row = conn.execute(
                "SELECT v.* FROM verdicts v JOIN candidates c ON c.id = v.candidate_id"
                " JOIN runs r ON r.id = c.run_id WHERE r.task_hash = ? AND r.device = ?"
                " AND c.source_hash = ? AND v.verdict != 'error'"
                " ORDER BY v.judged_at DESC, v.rowid DESC LIMIT 1",
                (task_hash, device, source_hash)).fetchone()
        return None if row is None else _verdict(row)

    # -- summaries ----------------------------------------------------------

    def counts(self, run_id: str) -> dict[str, dict[str, int]]:
        """`by_verdict`: accepted, rejected, error, no_source, unjudged; `by_reason`: first
        failing check of each judged candidate -> count, most frequent first."""
        with self._read() as conn:
            self._require_run(conn, run_id)
            by_verdict = dict.fromkeys(("accepted", "rejected", "error", "no_source", "unjudged"), 0)
            for key, n in conn.execute(
                    "SELECT CASE WHEN c.source IS NULL THEN 'no_source'"
                    " WHEN v.verdict IS NULL THEN 'unjudged' ELSE v.verdict END, COUNT(*)"
                    " FROM candidates c LEFT JOIN verdicts v ON v.candidate_id = c.id"
                    " WHERE c.run_id = ? GROUP BY 1", (run_id,)):
                by_verdict[key] = n
            by_reason = dict(conn.execute(
                "SELECT v.first_reason_check, COUNT(*) FROM verdicts v JOIN candidates c"
                " ON c.id = v.candidate_id WHERE c.run_id = ? AND v.first_reason_check IS NOT NULL"
                " GROUP BY 1 ORDER BY 2 DESC, 1", (run_id,)).fetchall())
        return {"by_verdict": by_verdict, "by_reason": by_reason}

    def usage_totals(self, run_id: str) -> Usage:
        """All LLM usage recorded for a run, summed."""
        with self._read() as conn:
            self._require_run(conn, run_id)
            row = conn.execute(
                "SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(input_tokens), 0),"
                " COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost_usd), 0.0),"
                " COALESCE(SUM(seconds), 0.0) FROM llm_usage WHERE run_id = ?", (run_id,)).fetchone()
        return Usage(int(row[0]), int(row[1]), int(row[2]), float(row[3]), float(row[4]))

    def archive(self, device: str, exclude_task_hash: str | None = None,
                limit: int = 20) -> list[ArchiveEntry]:
        """The best accepted kernel of each task on `device` (but the excluded one), fastest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT * FROM (SELECT r.task_hash, t.name AS task_name, t.source AS task_source,"
                " c.id AS candidate_id, c.source, v.speedup_vs_eager, ROW_NUMBER() OVER ("
                "  PARTITION BY r.task_hash ORDER BY v.speedup_vs_eager DESC, c.created, c.rowid) AS rank"
                " FROM verdicts v JOIN candidates c ON c.id = v.candidate_id"
                " JOIN runs r ON r.id = c.run_id JOIN tasks t ON t.hash = r.task_hash"
                " WHERE v.verdict = 'accepted' AND r.device = ? AND r.task_hash IS NOT ?)"
                " WHERE rank = 1 ORDER BY speedup_vs_eager DESC, task_hash LIMIT ?",
                (device, exclude_task_hash, limit)).fetchall()
        return [ArchiveEntry(**{k: v for k, v in dict(row).items() if k != "rank"}) for row in rows]

    # -- lifetime -----------------------------------------------------------

    def close(self) -> None:
        """Close the connection; closing twice is harmless."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- internals ----------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, waiting out other writers through
        # busy_timeout; a deferred transaction that upgrades later can fail at once with
        # SQLITE_BUSY in WAL mode instead of waiting.
        with self._lock, _transaction(self._conn, "BEGIN IMMEDIATE"):
            yield self._conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        # One snapshot across the statements of one query method.
        with self._lock, _transaction(self._conn, "BEGIN"):
            yield self._conn

    def _run_candidates(self, run_id: str, where: str, order: str = "c.created, c.rowid",
                        limit: int = -1) -> list[CandidateRecord]:
        with self._read() as conn:
            self._require_run(conn, run_id)
            return _fetch_candidates(conn, f"c.run_id = ? AND ({where})", (run_id,), order, limit)

    def _require_run(self, conn: sqlite3.Connection, run_id: str) -> None:
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
            raise UnknownRun(f"no run {run_id!r} in {self.path}")

    def _require_candidate(self, conn: sqlite3.Connection, candidate_id: str,
                           run_id: str | None = None) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute("SELECT id, run_id, source FROM candidates WHERE id = ?",
                                               (candidate_id,)).fetchone()
        if row is None or (run_id is not None and row["run_id"] != run_id):
            where = "" if run_id is None else f" of run {run_id!r}"
            raise UnknownCandidate(f"no candidate {candidate_id!r}{where} in {self.path}")
        return row


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    # isolation_level=None: the store issues BEGIN/COMMIT itself, never Python's implicit ones.
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000):d}")
    conn.execute("PRAGMA foreign_keys = ON")
    _use_wal(conn, busy_timeout)
    # NORMAL in WAL mode skips the fsync at each commit (the WAL is synced at checkpoints).
    # A killed process loses nothing committed; a power loss or OS crash may lose the
    # last few commits, never consistency. A search re-judging a handful of candidates
    # after a power cut is cheaper than an fsync per candidate.
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _use_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    # WAL: readers never block the writer nor the writer readers, and a killed process
    # leaves at most its uncommitted transaction behind (the next open rolls it back).
    # The switch needs an exclusive lock that SQLite does not wait for through the busy
    # handler, so processes opening a new file together would fail; wait here instead.
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def _transaction(conn: sqlite3.Connection, begin: str) -> Iterator[None]:
    conn.execute(begin)
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _fetch_candidates(conn: sqlite3.Connection, where: str, params: tuple[Any, ...],
                      order: str = "c.created, c.rowid", limit: int = -1) -> list[CandidateRecord]:
    query = f"FROM candidates c LEFT JOIN verdicts v ON v.candidate_id = c.id WHERE {where}" \
            f" ORDER BY {order} LIMIT ?"
    rows = conn.execute(f"{_CANDIDATE_COLUMNS} {query}", (*params, limit)).fetchall()
    parents: dict[str, list[str]] = {row["id"]: [] for row in rows}
    for child, parent in conn.execute(
            "SELECT candidate_id, parent_id FROM candidate_parents WHERE candidate_id IN"
            f" (SELECT c.id {query}) ORDER BY candidate_id, position", (*params, limit)):
        parents[child].append(parent)
    return [_candidate(row, parents[row["id"]]) for row in rows]


def _run(row: sqlite3.Row) -> RunRecord:
    fields = dict(row)
    fields["config"] = json.loads(fields["config"])
    return RunRecord(**fields)


def _candidate(row: sqlite3.Row, parent_ids: list[str]) -> CandidateRecord:
    fields = dict(row)
    if fields["reasons"] is not None:
        fields["reasons"] = tuple(json.loads(fields["reasons"]))
    return CandidateRecord(**fields, parent_ids=tuple(parent_ids))


def _interval(pair: Sequence[float] | None) -> tuple[float | None, float | None]:
    if pair is None:
        return None, None
    low, high = (float(v) for v in pair)
    return low, high


def _crowning(row: sqlite3.Row) -> CrowningRecord:
    f = dict(row)

    def pair(name: str) -> tuple[float, float] | None:
        low, high = f.pop(f"{name}_low"), f.pop(f"{name}_high")
        return None if low is None or high is None else (low, high)

    f["speedup_vs_eager_interval"] = pair("speedup_vs_eager")
    f["speedup_vs_compile_interval"] = pair("speedup_vs_compile")
    f["rejudged"] = tuple(json.loads(f["rejudged"]))
    return CrowningRecord(**f)


def _verdict(row: sqlite3.Row) -> VerdictRecord:
    fields = dict(row)
    fields["reasons"] = tuple(json.loads(fields["reasons"]))
    return VerdictRecord(**fields)
