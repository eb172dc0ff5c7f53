"""The executor interface and the job and outcome shapes both implementations share."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol

from kernelwright.bench.records import ErrorCheck
from kernelwright.bench.suite import SuiteTask
from kernelwright.judge.verify import VerifyOptions


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
        from kernelwright.task.metadata import sidecar_paths

        return {p.name: p.read_text(errors="replace") for p in sidecar_paths(self.task.path) if p.is_file()}


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


class Executor(Protocol):
    """Runs verdicts somewhere; yields each job's outcome as it finishes, in any order.

    Raises InputError (task.loader) when it cannot start (Ray not installed, no cluster at
    the address given). A job's own failure is an outcome, never an exception.
    """

    name: str

    def judge(self, jobs: list[JudgeJob], device: str, opts: VerifyOptions) -> Iterator[tuple[JudgeJob, JudgeOutcome]]:
        """Judge `jobs`; yield (job, outcome) as each finishes."""
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
