"""Drive the judge over a suite: every task's candidates, one verdict each, resumable.

Each verdict is a full `verify` (its own workers, inputs and baselines). A record goes to
`OUT/results.jsonl` the moment it exists and then to the store (one run per task, its
candidates recorded with proposer "bench"); a task that is wrong or does not fit the
machine is an `error` record, and the bench carries on. One bench at a time may write to
an OUT folder (an flock, which the system drops with the process: never a stale lock).
"""

from __future__ import annotations

import enum
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from kernelwright.bench import records as R
from kernelwright.bench.records import BenchRow, Verdict
from kernelwright.bench.suite import SuiteTask, find_candidates, find_tasks
from kernelwright.judge.result import JudgeResult
from kernelwright.judge.verify import VerifyOptions, resolve_device, verify_files
from kernelwright.store import Store
from kernelwright.task.loader import InputError
from kernelwright.task.metadata import TaskError


class ErrorCheck(str, enum.Enum):
    """Why a record is an error rather than the judge's verdict on the candidate."""

    __str__ = str.__str__
    __format__ = str.__format__

    TASK = "task"  # the task or a file is wrong, or the task does not fit the machine
    INTERNAL = "internal"  # kernelwright itself failed: a bug to report, never the candidate's fault


@dataclass(frozen=True)
class BenchOptions:
    """What to judge and how."""

    out: Path  # results.jsonl (and the lock) go here
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    levels: frozenset[int] | None = None  # None: every level
    pattern: str | None = None  # glob on a task's name or file name
    store_path: Path | None = None  # None: no store records (results.jsonl only)


@dataclass(frozen=True)
class BenchProgress:
    """What a caller's progress display is told after each record."""

    task_index: int  # 0-based, of `tasks`
    tasks: int
    row: BenchRow
    resumed: bool  # read back from results.jsonl, not judged now


def settings_of(opts: VerifyOptions) -> dict[str, object]:
    """The judge settings a verdict depends on (part of each record's resume key)."""
    d = asdict(opts)
    return {k: d[k] for k in ("trials", "compile_baseline", "timing", "threads", "confine")}


def row_from_result(task: SuiteTask, candidate: str, key: str, device: str, result: JudgeResult,
                    seconds: float) -> BenchRow:
    """A bench record of one verdict."""
    t = result.timing
    return BenchRow(
        task=task.name, candidate=candidate, verdict=Verdict(result.verdict), key=key, device=device,
        speedup_vs_eager=t.speedup_vs_eager if t else None, speedup_vs_compile=t.speedup_vs_compile if t else None,
        eager_interval=t.speedup_vs_eager_interval if t else None,
        compile_interval=t.speedup_vs_compile_interval if t else None,
        candidate_ms=t.candidate_ms.median if t and t.candidate_ms else None,
        eager_ms=t.eager_ms.median if t and t.eager_ms else None,
        compile_ms=t.compile_ms.median if t and t.compile_ms else None,
        reasons=[{"check": str(r.check), "detail": r.detail} for r in result.reasons], seconds=seconds)


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"another kernelwright bench is writing to {out}; wait for it or use another --out")
        yield
    finally:
        os.close(fd)


def _judge_one(task: SuiteTask, cand: Path, rel: str, key: str, device: str,
               opts: VerifyOptions) -> tuple[BenchRow, str]:
    """The record of one verdict, and the whole verdict as JSON (for the store)."""
    t0 = time.perf_counter()
    try:
        result = verify_files(task.path, cand, opts)
    except (TaskError, InputError) as exc:
        reason = {"check": ErrorCheck.TASK.value, "detail": str(exc)}
    except Exception as exc:  # a bug of ours must not end a 250-task bench
        reason = {"check": ErrorCheck.INTERNAL.value,
                  "detail": f"kernelwright failed ({type(exc).__name__}: {exc}); please report it"}
    else:
        row = row_from_result(task, rel, key, device, result, time.perf_counter() - t0)
        return row, json.dumps(result.to_dict(), allow_nan=False)
    row = BenchRow(task.name, rel, Verdict.ERROR, key, device, seconds=time.perf_counter() - t0, reasons=[reason])
    return row, json.dumps(row.to_dict(), allow_nan=False)


def run_bench(suite: Path, candidates: Path, options: BenchOptions,
              progress: Callable[[BenchProgress], None] | None = None) -> tuple[list[SuiteTask], list[BenchRow]]:
    """Judge every candidate of every selected task once; the tasks and all their records.

    Records already in OUT/results.jsonl under the same key are reused, not judged again.
    Raises InputError for a suite, candidates folder or OUT that cannot be used.
    """
    tasks = find_tasks(suite, set(options.levels) if options.levels else None, options.pattern)
    if not tasks:
        raise InputError(f"no task in {suite} matches the selection (levels {sorted(options.levels or [])}, "
                         f"pattern {options.pattern!r})")
    if not candidates.is_dir():
        raise InputError(f"--candidates {candidates} is not a folder")
    device = resolve_device(options.verify.device)
    opts = VerifyOptions(**{**asdict(options.verify), "device": device})
    settings = settings_of(opts)
    store = None
    with _exclusive(options.out):
        done = {r.key: r for r in R.load(options.out)}
        rows: list[BenchRow] = []
        try:
            if options.store_path is not None:
                store = Store(options.store_path)
            for i, task in enumerate(tasks):
                task_source = task.path.read_text(errors="replace")
                run_id = None
                for cand in find_candidates(task, candidates):
                    rel = str(cand.relative_to(candidates))
                    source = cand.read_text(errors="replace")
                    key = R.verdict_key(task_source, source, device, settings)
                    if key in done:
                        rows.append(done[key])
                        if progress:
                            progress(BenchProgress(i, len(tasks), done[key], True))
                        continue
                    row, result_json = _judge_one(task, cand, rel, key, device, opts)
                    if store is not None:
                        if run_id is None:
                            run_id = store.create_run(task.path, task_source, task.name, device,
                                                      {"bench": str(suite), "candidates": str(candidates),
                                                       **settings})
                        row = _record(store, run_id, row, source, result_json)
                    R.append(options.out, row)
                    done[key] = row
                    rows.append(row)
                    if progress:
                        progress(BenchProgress(i, len(tasks), row, False))
                if store is not None and run_id is not None:
                    store.set_run_status(run_id, "finished")
                    run_id = None
        except KeyboardInterrupt:
            if store is not None and run_id is not None:
                store.set_run_status(run_id, "interrupted")
            raise
        finally:
            if store is not None:
                store.close()
    return tasks, rows


def _record(store: Store, run_id: str, row: BenchRow, source: str, result_json: str) -> BenchRow:
    """The record, now also in the store (one candidate with its verdict), with the store's ids."""
    cid = store.add_candidate(run_id, source=source, proposer="bench", stage="file", note=row.candidate)
    store.record_verdict(cid, verdict=row.verdict.value, reasons=row.reasons,
                         speedup_vs_eager=row.speedup_vs_eager, speedup_vs_compile=row.speedup_vs_compile,
                         candidate_ms=row.candidate_ms, eager_ms=row.eager_ms, compile_ms=row.compile_ms,
                         result_json=result_json, judge_seconds=row.seconds)
    return replace(row, run_id=run_id, candidate_id=cid)
