"""The executor interface and the job and outcome shapes both implementations share."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Protocol

from kernelwright.bench.records import BenchRow, ErrorCheck
from kernelwright.bench.suite import SuiteTask
from kernelwright.judge.verify import VerifyOptions

if TYPE_CHECKING:  # bench.run imports the executors where it uses them, never at load
    from kernelwright.bench.run import OptimizePlan

STORE_FILE = "kernelwright.db"  # a remote search's private store, in its scratch folder


@dataclass(frozen=True)
class JudgeJob:
    """One candidate of one task to judge, with everything a remote slot needs to do it."""

    index: int  # the task's place in the bench's selection
    task: SuiteTask
    task_source: str
    candidate: Path  # where the driver read it
    rel: str  # its name relative to the candidates folder (the record's `candidate`)
    source: str
    key: str  # the resume key (bench.records.verdict_key)

    def sidecars(self) -> dict[str, str]:
        """The task's metadata files beside it (task/metadata.py reads them), by file name."""
        return task_sidecars(self.task.path)


def task_sidecars(task_path: Path) -> dict[str, str]:
    """The metadata files beside a task (task/metadata.py reads them), by file name."""
    from kernelwright.task.metadata import sidecar_paths

    return {p.name: p.read_text(errors="replace") for p in sidecar_paths(task_path) if p.is_file()}


@dataclass(frozen=True)
class JudgeOutcome:
    """What came back for a job: the verdict as `verify --json` prints it, or why there is none."""

    verdict: dict[str, Any] | None  # JudgeResult.to_dict(); None when `error` is set
    seconds: float  # wall time of the job where it ran
    # No verdict: why (a sentence), recorded as an `error` row, and the bench goes on.
    error: str | None = None
    # Whose fault: the task's (TASK), ours (INTERNAL), or a lost slot's, twice (INFRASTRUCTURE).
    error_check: ErrorCheck | None = None

    def verdict_json(self) -> str:
        """The verdict as JSON for the store (an empty object when there is none)."""
        return json.dumps(self.verdict or {}, allow_nan=False)

    def verdict_or_error(self) -> dict[str, Any]:
        """The verdict, or an `error` verdict whose one reason says why there is none."""
        if self.verdict is not None:
            return self.verdict
        check = (self.error_check or ErrorCheck.INTERNAL).value
        return {"verdict": "error", "reasons": [{"check": check, "detail": self.error or "?"}]}


@dataclass(frozen=True)
class SearchJob:
    """One task's whole search (`bench --optimize`), run in a slot into a private store."""

    index: int  # the task's place in the bench's selection
    task: SuiteTask
    task_source: str
    key: str  # the task's resume key
    # The driver's folder for this search: local slots search in it (so a bench run again
    # resumes the search there); a Ray task's private store and files are landed in it.
    scratch: Path


@dataclass(frozen=True)
class SearchOutcome:
    """What came back for a search: the task's record and where its private store is, or why none."""

    row: BenchRow | None  # the task's record, ids those of the private store (a merge keeps them)
    run_id: str | None  # the search's run in the private store (None: it never started one)
    scratch: str  # the folder the search ran in, where it ran: paths in its store point under it
    seconds: float
    db: bytes | None = None  # the private store itself when it ran on another machine (Ray)
    files: dict[str, bytes] | None = None  # the run's files under `scratch` (best.py, best.json), likewise
    error: str | None = None  # no record: why (a lost slot, twice; a bug of ours)
    error_check: ErrorCheck | None = None


class Executor(Protocol):
    """Runs verdicts somewhere; yields each job's outcome as it finishes, in any order.

    Raises InputError (task.loader) when it cannot start (Ray not installed, no cluster at
    the address given). A job's own failure is an outcome, never an exception.
    """

    name: str

    def judge(self, jobs: list[JudgeJob], device: str, opts: VerifyOptions) -> Iterator[tuple[JudgeJob, JudgeOutcome]]:
        """Judge `jobs`; yield (job, outcome) as each finishes."""
        ...

    def search(self, jobs: list[SearchJob], device: str, plan: OptimizePlan,
               opts: VerifyOptions) -> Iterator[tuple[SearchJob, SearchOutcome]]:
        """Run each job's search in a slot; yield (job, outcome) as each finishes."""
        ...


def judge_here(task_path: Path, candidate: Path, opts: VerifyOptions, pool: Any = None) -> JudgeOutcome:
    """One verdict in this process's judge: the outcome, a bad task or a bug of ours as its error."""
    from kernelwright.judge.verify import verify_files
    from kernelwright.task.loader import InputError
    from kernelwright.task.metadata import TaskError

    t0 = time.perf_counter()
    try:
        result = verify_files(task_path, candidate, opts, pool=pool)
    except (TaskError, InputError) as exc:
        return JudgeOutcome(None, time.perf_counter() - t0, error=str(exc), error_check=ErrorCheck.TASK)
    except Exception as exc:  # noqa: BLE001 - a bug of ours: a record, never the end of a bench
        return JudgeOutcome(None, time.perf_counter() - t0, error=f"kernelwright failed ({type(exc).__name__}: "
                            f"{exc}); please report it", error_check=ErrorCheck.INTERNAL)
    return JudgeOutcome(result.to_dict(), time.perf_counter() - t0)


def search_here(job: SearchJob, device: str, plan: OptimizePlan, opts: VerifyOptions, scratch: Path,
                task_path: Path) -> SearchOutcome:
    """One task's search in this process, into the private store in `scratch` (resumed when a search
    of the same key started there already): its record and run, or a bug of ours as its error."""
    from dataclasses import replace

    from kernelwright.bench.run import optimize_one, started_run
    from kernelwright.store import Store

    t0 = time.perf_counter()
    try:
        scratch.mkdir(parents=True, exist_ok=True)
        with Store(scratch / STORE_FILE) as store:
            row = optimize_one(replace(job.task, path=task_path), job.key, device, plan, opts, store, scratch)
    except Exception as exc:  # noqa: BLE001 - a bug of ours: a record, never the end of a bench
        return SearchOutcome(None, None, str(scratch), time.perf_counter() - t0,
                             error=f"kernelwright failed ({type(exc).__name__}: {exc}); please report it",
                             error_check=ErrorCheck.INTERNAL)
    return SearchOutcome(row, started_run(scratch, job.key), str(scratch), time.perf_counter() - t0)
