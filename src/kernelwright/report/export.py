"""One row per judged kernel, for others to read and re-judge: `kernelwright export`.

The rows carry at least the fields of Sakana AI's released kernel archive (task id, name and
level, the kernel's and the reference's code, correct, max difference, error, kernel, eager
and compile times, speedups, proposer, a profile summary) and what only kernelwright knows
(the verdict and its reasons, the 95% intervals, the environment, the lineage parent). Every
figure is the judge's, read from the store as the verdict recorded it; nothing is re-measured.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from kernelwright.bench import records as R
from kernelwright.store import Store
from kernelwright.store.records import CandidateRecord, RunRecord
from kernelwright.task.loader import InputError


class ExportFormat(str, enum.Enum):
    """What `export` writes."""

    __str__ = str.__str__

    JSONL = "jsonl"  # one JSON object per line
    PARQUET = "parquet"  # one table (pyarrow); nested fields as JSON text


@dataclass(frozen=True)
class ExportRow:
    """One judged kernel."""

    task_id: str  # the task's name as judged: its suite-relative path for a bench (level1/19_ReLU.py)
    task_name: str  # the file name without its number or suffix (ReLU)
    level: int | None  # KernelBench's level, from the task's path (None elsewhere)
    problem_id: int | None  # the number the task's file name starts with (None if it does not)
    kernel_code: str | None  # the candidate's source as judged
    reference_code: str  # the task's source as judged
    correct: bool  # the judge accepted it
    verdict: str  # accepted, rejected or error
    reasons: list[dict[str, str]]  # why not accepted: [{"check", "detail"}], the first decides
    error: str | None  # the first reason as one line ("check: detail"); None when accepted
    max_difference: float | None  # the largest absolute error over the correctness trials
    kernel_ms: float | None  # median time per call of the candidate
    eager_ms: float | None  # ... of the task's own Model, timed beside it
    compile_ms: float | None  # ... of torch.compile(Model), when the judge timed it
    floor_ms: float | None  # the bytes floor: the data one call must move over the device's measured bandwidth
    flop_floor_ms: float | None  # the FLOP floor: the reference's FLOPs over the device's measured matmul rate
    speedup_vs_eager: float | None
    speedup_vs_eager_interval: list[float] | None  # its 95% interval, when the judge gave one
    speedup_vs_compile: float | None
    speedup_vs_compile_interval: list[float] | None
    proposer: str  # who wrote it: inductor, mutate, an LLM spec, or "bench" for a given file
    stage: str  # the search's stage (draft, repair, optimize, crossover) or "file"
    profile_summary: str  # what the judge's own profile saw run ("custom kernels ran: ...")
    findings: list[str]  # every finding of the verdict
    environment: dict[str, Any]  # device, torch, driver, compiler, confinement
    device: str
    run_id: str
    candidate_id: str
    parent_id: str | None  # the kernel it was derived from (the first parent), if any
    note: str  # the proposal's note; for a bench, the candidate's path in its folder
    judged_at: str | None  # ISO 8601, UTC
    judge_seconds: float | None


_PROFILE_PREFIXES = ("custom kernels ran", "no custom kernel ran", "PyTorch/library kernels also ran",
                     "PyTorch compute ops ran")


def stored_verdict(result_json: str | None) -> dict[str, Any]:
    """The verdict (`verify --json`'s object) a store row holds: a bench stores it as it is, a
    search wrapped with the feedback it gave the proposers ({"result": ..., "feedback": ...})."""
    try:
        d = json.loads(result_json or "{}")
    except ValueError:
        return {}
    if isinstance(d, dict) and isinstance(d.get("result"), dict) and "verdict" not in d:
        return d["result"]
    return d if isinstance(d, dict) else {}


def row_of(run: RunRecord, c: CandidateRecord) -> ExportRow:
    """The export row of one judged candidate of a run."""
    verdict = stored_verdict(c.result_json)
    timing = verdict.get("timing") or {}
    trials = [t.get("max_abs_error") for t in verdict.get("correctness") or []]
    trials = [float(t) for t in trials if isinstance(t, (int, float))]
    reasons = [{"check": str(r.get("check")), "detail": str(r.get("detail"))} for r in c.reasons or ()]
    findings = [str(f) for f in verdict.get("findings") or []]
    level, problem, name = _task_parts(run.task_name)

    def interval(key: str) -> list[float] | None:
        iv = timing.get(key)
        return [float(iv[0]), float(iv[1])] if iv else None

    return ExportRow(
        task_id=run.task_name, task_name=name, level=level, problem_id=problem, kernel_code=c.source,
        reference_code=run.task_source, correct=c.verdict == "accepted", verdict=str(c.verdict),
        reasons=reasons, error=f"{reasons[0]['check']}: {reasons[0]['detail']}" if reasons else None,
        max_difference=max(trials) if trials else None, kernel_ms=c.candidate_ms, eager_ms=c.eager_ms,
        compile_ms=c.compile_ms, floor_ms=timing.get("floor_ms"), flop_floor_ms=timing.get("flop_floor_ms"),
        speedup_vs_eager=c.speedup_vs_eager,
        speedup_vs_eager_interval=interval("speedup_vs_eager_interval"),
        speedup_vs_compile=c.speedup_vs_compile, speedup_vs_compile_interval=interval("speedup_vs_compile_interval"),
        proposer=c.proposer, stage=c.stage,
        profile_summary="; ".join(f for f in findings if f.startswith(_PROFILE_PREFIXES)),
        findings=findings, environment=dict(verdict.get("environment") or {}), device=run.device, run_id=run.id,
        candidate_id=c.id, parent_id=c.parent_ids[0] if c.parent_ids else None, note=c.note,
        judged_at=c.judged_at, judge_seconds=c.judge_seconds)


def _task_parts(task_id: str) -> tuple[int | None, int | None, str]:
    """(level, problem number, name) of `level1/19_ReLU.py`-style ids; Nones where absent."""
    m = re.search(r"(?:^|/)level(\d+)/", task_id)
    stem = Path(task_id).name.removesuffix(".py")
    n = re.match(r"(\d+)_(.*)", stem)
    return (int(m.group(1)) if m else None, int(n.group(1)) if n else None, n.group(2) if n else stem)


def rows_for_run(store: Store, run_id: str) -> list[ExportRow]:
    """Every judged candidate of one run (proposals without source or verdict are left out).

    Raises InputError for a run the store does not have."""
    try:
        run = store.get_run(run_id)
    except KeyError as exc:
        raise InputError(str(exc)) from None
    return [row_of(run, c) for c in store.candidates(run.id) if c.verdict is not None and c.source is not None]


def run_ids_of(store: Store, source: str) -> list[str]:
    """The store runs of SOURCE: a run id, or a bench's OUT folder (each record's run, once).

    Raises InputError for a run the store does not have, an OUT without records, or records
    none of which was written to this store."""
    p = Path(source)
    if p.name == R.RESULTS and p.is_file():
        p = p.parent
    if not p.is_dir():
        if not _has_run(store, source):
            raise InputError(f"no run {source!r} in {store.path}, and no bench folder of that name")
        return [source]
    records = R.load(p)
    if not records:
        raise InputError(f"{p} holds no bench records ({R.RESULTS})")
    run_ids = list(dict.fromkeys(r.run_id for r in records if r.run_id))
    if not run_ids:
        raise InputError(f"the records in {p} were not written to a store (a bench without --store keeps "
                         "no kernel code): nothing to export")
    present = [rid for rid in run_ids if _has_run(store, rid)]
    if not present:
        raise InputError(f"none of the {len(run_ids)} runs of {p} is in the store {store.path}; "
                         "give the bench's --store")
    return present


def _has_run(store: Store, run_id: str) -> bool:
    try:
        store.get_run(run_id)
    except KeyError:
        return False
    return True


def rows_for(store: Store, source: str) -> list[ExportRow]:
    """Every judged kernel of a run id, or of a bench's OUT folder (a path holding results.jsonl):
    each record's store run (a task's given candidates, or its search with --optimize), once."""
    return [row for rid in run_ids_of(store, source) for row in rows_for_run(store, rid)]


def write(rows: list[ExportRow], path: Path, fmt: ExportFormat) -> None:
    """Write the rows; the file appears whole or not at all (written beside it, then renamed).

    Raises InputError when parquet is asked for without pyarrow installed."""
    if fmt is ExportFormat.JSONL:
        write_whole(path, "".join(json.dumps(asdict(row), allow_nan=False) + "\n" for row in rows))
        return
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError("parquet needs pyarrow: pip install 'kernelwright[parquet]' (or --format jsonl)") from None
    tmp = _partial(path)
    pq.write_table(pa.Table.from_pylist([_flat(row) for row in rows], schema=_schema(pa)), tmp)
    tmp.replace(path)


def write_whole(path: Path, text: str) -> None:
    """Write a text file that appears whole or not at all (written beside it, then renamed)."""
    tmp = _partial(path)
    tmp.write_text(text)
    tmp.replace(path)


def _partial(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.partial")


# Nested fields go to parquet as JSON text: one schema whatever a verdict's environment holds.
_JSON_FIELDS = ("reasons", "environment")


def _flat(row: ExportRow) -> dict[str, Any]:
    d = asdict(row)
    for k in _JSON_FIELDS:
        d[k] = json.dumps(d[k], allow_nan=False)
    return d


def _schema(pa: Any) -> Any:
    types = {"int | None": pa.int64(), "float | None": pa.float64(), "bool": pa.bool_(), "str": pa.string(),
             "str | None": pa.string(), "list[float] | None": pa.list_(pa.float64()),
             "list[str]": pa.list_(pa.string())}
    return pa.schema([(f.name, pa.string() if f.name in _JSON_FIELDS else types[str(f.type)])
                      for f in fields(ExportRow)])
