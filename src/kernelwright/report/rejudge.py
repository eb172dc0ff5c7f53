"""Re-judge an export on this machine: `kernelwright verify --from-export FILE`.

An export row is a claim made elsewhere (another machine, another judge, someone's archive).
Each row's kernel is judged again against the row's own reference code, and the row holds
when the verdict is the same and, where the row claimed a speedup (its 95% interval's low
end at least SPEEDUP_REPORT_MIN), the new interval's low end still clears that bar. Nothing
in the row is believed: it only says what to check.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kernelwright import constants as C
from kernelwright.judge.pairs import PairPool
from kernelwright.judge.verify import VerifyOptions, resolve_device, verify_files
from kernelwright.task.loader import InputError
from kernelwright.task.metadata import TaskError

_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class RowCheck:
    """One export row judged again."""

    index: int  # 0-based, in the file
    task_id: str
    candidate_id: str  # as the row gave it ("" when it had none)
    was_verdict: str  # what the row says
    now_verdict: str  # what this machine's judge said (error: the task or the row could not be judged)
    was_speedup: float | None  # vs eager, as the row says
    was_interval: list[float] | None
    now_speedup: float | None
    now_interval: list[float] | None
    holds: bool
    why: str  # one sentence when it does not hold (or could not be judged), else ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


def read_export(path: Path) -> list[dict[str, Any]]:
    """The rows of a jsonl or parquet export (told apart by parquet's magic bytes).

    Raises InputError for a missing or unreadable file, or rows without the code to judge."""
    if not path.is_file():
        raise InputError(f"export file not found: {path}")
    with path.open("rb") as f:
        parquet = f.read(4) == _PARQUET_MAGIC
    if parquet:
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError("reading parquet needs pyarrow: pip install 'kernelwright[parquet]'") from None
        rows = pq.read_table(path).to_pylist()
        for r in rows:
            for k in ("reasons", "environment"):
                if isinstance(r.get(k), str):
                    r[k] = json.loads(r[k])
    else:
        rows = []
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise InputError(f"{path}, line {n}: not a JSON object") from None
    for n, r in enumerate(rows):
        if not isinstance(r, dict) or not r.get("kernel_code") or not r.get("reference_code"):
            raise InputError(f"{path}: row {n} has no kernel_code and reference_code to judge")
    return rows


def check_rows(rows: list[dict[str, Any]], opts: VerifyOptions,
               progress: Callable[[RowCheck], None] | None = None, executor: Any = None) -> list[RowCheck]:
    """Judge every row's kernel again against its reference code; what each row's claim became.

    `executor` (executor.get_executor's): the rows judged on its slots, as `bench` judges a suite;
    None: one after another in this process, a pair of workers started ahead for the next row."""
    device = resolve_device(opts.device)
    if executor is not None:
        return _check_on(executor, rows, replace(opts, device=device), progress)
    checks = []
    with tempfile.TemporaryDirectory(prefix="kw-rejudge-") as tmp, PairPool() as pool:
        for i, row in enumerate(rows):
            task = _written(Path(tmp), "task", str(row["reference_code"]))
            cand = _written(Path(tmp), "kernel", str(row["kernel_code"]))
            try:
                result: dict[str, Any] = verify_files(task, cand, VerifyOptions(**{**asdict(opts), "device": device}),
                                                      pool=pool).to_dict()
            except (TaskError, InputError) as exc:
                result = {"verdict": "error", "reasons": [{"check": "task", "detail": str(exc)}]}
            checks.append(_check(i, row, result))
            if progress:
                progress(checks[-1])
    return checks


def _check_on(executor: Any, rows: list[dict[str, Any]], opts: VerifyOptions,
              progress: Callable[[RowCheck], None] | None) -> list[RowCheck]:
    """check_rows on an executor's slots: every row a job, the checks in the rows' order."""
    from kernelwright.bench.suite import SuiteTask
    from kernelwright.executor import JudgeJob

    with tempfile.TemporaryDirectory(prefix="kw-rejudge-") as tmp:
        jobs = []
        for i, row in enumerate(rows):
            reference, kernel = str(row["reference_code"]), str(row["kernel_code"])
            task, cand = _written(Path(tmp), "task", reference), _written(Path(tmp), "kernel", kernel)
            # The key only tells the jobs apart: nothing is resumed.
            jobs.append(JudgeJob(i, SuiteTask(task.name, task, 0, 0), reference, cand, cand.name, kernel, str(i)))
        checks: dict[int, RowCheck] = {}
        for job, out in executor.judge(jobs, str(opts.device), opts):
            checks[job.index] = _check(job.index, rows[job.index], out.verdict_or_error())
            if progress:
                progress(checks[job.index])
    return [checks[i] for i in sorted(checks)]


def _written(folder: Path, kind: str, source: str) -> Path:
    path = folder / f"{kind}_{hashlib.sha256(source.encode()).hexdigest()[:16]}.py"
    if not path.exists():
        path.write_text(source)
    return path


def _interval(v: Any) -> list[float] | None:
    return [float(v[0]), float(v[1])] if isinstance(v, (list, tuple)) and len(v) == 2 else None


def _check(index: int, row: dict[str, Any], result: dict[str, Any]) -> RowCheck:
    """Whether a row's verdict, and its claimed speedup if any, hold in `result` (a fresh verdict)."""
    timing = result.get("timing") or {}
    was, now = str(row.get("verdict")), str(result.get("verdict"))
    was_iv, now_iv = _interval(row.get("speedup_vs_eager_interval")), _interval(timing.get("speedup_vs_eager_interval"))
    now_speed = timing.get("speedup_vs_eager")
    reasons = result.get("reasons") or []
    first = f"{reasons[0]['check']}: {str(reasons[0]['detail'])[:300]}" if reasons else ""
    why = ""
    if now == "error":
        why = f"could not be judged here ({first})"
    elif was != now:
        why = f"was {was}, now {now}" + (f" ({first})" if first else "")
    elif now == "accepted" and was_iv is not None and was_iv[0] >= C.SPEEDUP_REPORT_MIN:
        if now_iv is None or now_iv[0] < C.SPEEDUP_REPORT_MIN:
            shown = (f"{now_speed:.2f}x ({now_iv[0]:.2f}-{now_iv[1]:.2f}x)" if now_iv and now_speed
                     else "not timed" if now_speed is None else f"{now_speed:.2f}x")
            why = (f"claimed {row.get('speedup_vs_eager') or 0:.2f}x ({was_iv[0]:.2f}-{was_iv[1]:.2f}x) vs eager, "
                   f"now {shown}: no longer at least {C.SPEEDUP_REPORT_MIN:g}x")
    return RowCheck(index, str(row.get("task_id", "")), str(row.get("candidate_id") or ""), was, now,
                    row.get("speedup_vs_eager"), was_iv, now_speed, now_iv, holds=not why, why=why)
