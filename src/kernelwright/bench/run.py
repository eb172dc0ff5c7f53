"""Drive the judge over a suite: every task's candidates, one verdict each, resumable.

Each verdict is a full `verify` (its own workers, inputs and baselines). A record goes to
`OUT/results.jsonl` the moment it exists and then to the store (one run per task, its
candidates recorded with proposer "bench"); a task that is wrong or does not fit the
machine is an `error` record, and the bench carries on. One bench at a time may write to
an OUT folder (an flock, which the system drops with the process: never a stale lock).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelwright import provenance
from kernelwright.bench import records as R
from kernelwright.bench.records import BenchRow, ErrorCheck, Verdict
from kernelwright.bench.suite import SuiteTask, find_candidates, find_tasks, sample_tasks
from kernelwright.judge.pairs import PairPool
from kernelwright.judge.result import JudgeResult
from kernelwright.judge.verify import VerifyOptions, resolve_device
from kernelwright.store import Store
from kernelwright.task.loader import InputError
from kernelwright.task.metadata import TaskError

if TYPE_CHECKING:  # the executors import the bench's records: imported where used, not at load
    from kernelwright.executor import Executor, JudgeOutcome


@dataclass(frozen=True)
class OptimizePlan:
    """`bench --optimize`: the engineer runs on each task, within this budget per task."""

    models: tuple[str, ...] = ()  # proposer specs as `optimize --model` takes them; (): its defaults
    budget: int = 12  # proposals per task, failed ones included
    time_limit_s: float | None = None  # per task
    seed: int | None = None  # the search's choices (not the judge's inputs)
    parallel: int = 2
    target: str | None = None  # the form LLMs are asked for; None: the device's default

    def settings(self) -> dict[str, Any]:
        """What a task's record depends on, beside the task and the judge's settings."""
        d = asdict(self)
        d["models"] = list(self.models)
        return d


@dataclass(frozen=True)
class BenchOptions:
    """What to judge and how."""

    out: Path  # results.jsonl (and the lock) go here
    verify: VerifyOptions = field(default_factory=VerifyOptions)
    levels: frozenset[int] | None = None  # None: every level
    pattern: str | None = None  # glob on a task's name or file name
    store_path: Path | None = None  # None: no store records (results.jsonl only; --optimize: OUT/kernelwright.db)
    optimize: OptimizePlan | None = None  # run the engineer on each task instead of judging given candidates
    sample: int | None = None  # judge a seeded random sample of this many of the selected tasks
    sample_seed: int | None = None  # its seed (None: 0)
    executor: str = "local"  # where verdicts of given candidates run (kernelwright.executor)
    ray_address: str | None = None  # the Ray cluster's, with executor "ray" (None: RAY_ADDRESS or a local one)
    slots: int | None = None  # local judging slots (None: one per visible GPU on CUDA, one on the CPU)


@dataclass(frozen=True)
class BenchProgress:
    """What a caller's progress display is told after each record."""

    task_index: int  # 0-based, of `tasks`
    tasks: int
    row: BenchRow
    resumed: bool  # read back from results.jsonl, not judged now


def settings_of(opts: VerifyOptions) -> dict[str, object]:
    """The judge settings a verdict depends on (part of each record's resume key).

    With the judge's own code and torch's version: a record another judge made is judged again.
    """
    d = asdict(opts)
    return {**{k: d[k] for k in ("trials", "compile_baseline", "timing", "threads", "confine")},
            **provenance.judge_identity()}


def row_from_result(task: SuiteTask, candidate: str, key: str, device: str, result: JudgeResult,
                    seconds: float) -> BenchRow:
    """A bench record of one verdict."""
    return row_from_verdict(task, candidate, key, device, result.to_dict(), seconds)


def row_from_verdict(task: SuiteTask, candidate: str, key: str, device: str, verdict: dict[str, Any],
                     seconds: float) -> BenchRow:
    """A bench record of one verdict in the form `verify --json` prints (JudgeResult.to_dict)."""
    t = verdict.get("timing") or {}
    pending = [p for p in (c.get("pending_ms") for c in verdict.get("correctness") or []) if p is not None]
    probe = [p for p in (c.get("probe_ms") for c in verdict.get("correctness") or []) if p is not None]

    def interval(name: str) -> tuple[float, float] | None:
        iv = t.get(name)
        return (float(iv[0]), float(iv[1])) if iv else None

    return BenchRow(
        task=task.name, candidate=candidate, verdict=Verdict(verdict["verdict"]), key=key, device=device,
        speedup_vs_eager=t.get("speedup_vs_eager"), speedup_vs_compile=t.get("speedup_vs_compile"),
        eager_interval=interval("speedup_vs_eager_interval"),
        compile_interval=interval("speedup_vs_compile_interval"),
        candidate_ms=(t.get("candidate_ms") or {}).get("median"), eager_ms=(t.get("eager_ms") or {}).get("median"),
        compile_ms=(t.get("compile_ms") or {}).get("median"),
        reasons=[{"check": str(r["check"]), "detail": r["detail"]} for r in verdict.get("reasons") or []],
        seconds=seconds, phases_s=dict(verdict.get("phases_s") or {}),
        findings=[str(f) for f in verdict.get("findings") or []],
        max_pending_ms=max(pending) if pending else None, max_probe_ms=max(probe) if probe else None,
        host_factor=float(t.get("host_factor") or 1.0))


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
               opts: VerifyOptions, pool: PairPool | None = None) -> tuple[BenchRow, str]:
    """The record of one verdict in this process, and the whole verdict as JSON (for the store)."""
    from kernelwright.executor import judge_here

    return _row_of(task, rel, key, device, judge_here(task.path, cand, opts, pool))


def _row_of(task: SuiteTask, rel: str, key: str, device: str, out: JudgeOutcome) -> tuple[BenchRow, str]:
    """The record of an executor's outcome, and what the store keeps of it (JSON)."""
    if out.verdict is None:
        row = BenchRow(task.name, rel, Verdict.ERROR, key, device, seconds=out.seconds,
                       reasons=[{"check": (out.error_check or ErrorCheck.INTERNAL).value, "detail": out.error or "?"}])
        return row, json.dumps(row.to_dict(), allow_nan=False)
    return row_from_verdict(task, rel, key, device, out.verdict, out.seconds), out.verdict_json()


def run_bench(suite: Path, candidates: Path | None, options: BenchOptions,
              progress: Callable[[BenchProgress], None] | None = None) -> tuple[list[SuiteTask], list[BenchRow]]:
    """Judge every candidate of every selected task once; the tasks and all their records.

    With `options.optimize` (and `candidates` None) the engineer runs on each task instead and
    the task's record is the fresh verdict of what it found. Records already in
    OUT/results.jsonl under the same key are reused, not judged again; an optimization cut
    short is resumed from the store. Raises InputError for a suite, candidates folder, OUT or
    proposer spec that cannot be used.
    """
    tasks = sample_tasks(find_tasks(suite, set(options.levels) if options.levels else None, options.pattern),
                         options.sample, options.sample_seed)
    if not tasks:
        raise InputError(f"no task in {suite} matches the selection (levels {sorted(options.levels or [])}, "
                         f"pattern {options.pattern!r})")
    if (candidates is None) == (options.optimize is None):
        raise InputError("give either --candidates DIR or --optimize, not both or neither")
    if options.optimize is not None and options.executor != "local":
        raise InputError(f"--executor {options.executor} judges given --candidates; --optimize runs on this "
                         "machine (the local executor) for now")
    if candidates is not None and not candidates.is_dir():
        raise InputError(f"--candidates {candidates} is not a folder")
    device = resolve_device(options.verify.device)
    opts = VerifyOptions(**{**asdict(options.verify), "device": device})
    settings = settings_of(opts)
    plan = _resolved(options.optimize) if options.optimize else None
    store_path = options.store_path or (options.out / "kernelwright.db" if plan else None)
    store = None
    with _exclusive(options.out):
        # A record of a lost judging slot is no verdict: that candidate is judged again.
        done = {r.key: r for r in R.load(options.out)
                if not any(x.get("check") == ErrorCheck.INFRASTRUCTURE.value for x in r.reasons)}
        rows: list[BenchRow] = []
        current_run: list[str] = []  # the store run of the task being judged, while one is open
        try:
            if store_path is not None:
                store = Store(store_path)
            if plan is not None:
                assert store is not None
                _optimize_tasks(tasks, device, plan, opts, settings, done, rows, store, options.out, progress)
            else:
                assert candidates is not None
                _judge_candidates(suite, candidates, tasks, device, opts, settings, done, rows, store, options.out,
                                  progress, current_run, _executor(options))
        except KeyboardInterrupt:
            if store is not None:
                _close_run(store, current_run, "interrupted")
            raise
        finally:
            if store is not None:
                store.close()
    return tasks, rows


def _optimize_tasks(tasks: list[SuiteTask], device: str, plan: OptimizePlan, opts: VerifyOptions,
                    settings: dict[str, object], done: dict[str, BenchRow], rows: list[BenchRow], store: Store,
                    out: Path, progress: Callable[[BenchProgress], None] | None) -> None:
    """Run the engineer on every task that has no record yet, appending each task's record to `rows`."""
    for i, task in enumerate(tasks):
        key = R.verdict_key(task.name, task.path.read_text(errors="replace"),
                            "optimize " + json.dumps(plan.settings(), sort_keys=True), device, settings)
        resumed = key in done
        if not resumed:
            done[key] = _optimize_one(task, key, device, plan, opts, store, out)
            R.append(out, done[key])
        rows.append(done[key])
        if progress:
            progress(BenchProgress(i, len(tasks), done[key], resumed))


def _judge_candidates(suite: Path, candidates: Path, tasks: list[SuiteTask], device: str, opts: VerifyOptions,
                      settings: dict[str, object], done: dict[str, BenchRow], rows: list[BenchRow],
                      store: Store | None, out: Path, progress: Callable[[BenchProgress], None] | None,
                      current_run: list[str], executor: Executor) -> None:
    """Judge every candidate that has no record yet on `executor`, appending to `rows`.

    Only this process writes results.jsonl and the store, as each outcome comes back (in any
    order with several slots): one store run per task, opened with its first record.
    """
    from kernelwright.executor import JudgeJob
    jobs: list[JudgeJob] = []
    for i, task in enumerate(tasks):
        task_source = task.path.read_text(errors="replace")
        for cand in find_candidates(task, candidates):
            source = cand.read_text(errors="replace")
            key = R.verdict_key(task.name, task_source, source, device, settings)
            jobs.append(JudgeJob(i, task, task_source, cand, str(cand.relative_to(candidates)), source, key))
    for job in jobs:
        if job.key in done:
            rows.append(done[job.key])
            if progress:
                progress(BenchProgress(job.index, len(tasks), done[job.key], True))
    todo = [j for j in jobs if j.key not in done]
    runs: dict[str, str] = {}  # task name -> its store run
    left = Counter(j.task.name for j in todo)  # verdicts still to come, per task
    for job, outcome in executor.judge(todo, device, opts):
        row, result_json = _row_of(job.task, job.rel, job.key, device, outcome)
        if store is not None:
            if job.task.name not in runs:
                runs[job.task.name] = store.create_run(job.task.path, job.task_source, job.task.name, device,
                                                       {"bench": str(suite), "candidates": str(candidates),
                                                        **settings})
                current_run.append(runs[job.task.name])
            row = _record(store, runs[job.task.name], row, job.source, result_json)
            left[job.task.name] -= 1
            if not left[job.task.name]:
                current_run.remove(runs[job.task.name])
                store.set_run_status(runs[job.task.name], "finished")
        R.append(out, row)
        done[job.key] = row
        rows.append(row)
        if progress:
            progress(BenchProgress(job.index, len(tasks), row, False))
    order = {j.key: n for n, j in enumerate(jobs)}
    rows.sort(key=lambda r: order.get(r.key, len(order)))


def _executor(options: BenchOptions) -> Executor:
    from kernelwright.executor import get_executor

    return get_executor(options.executor, options.ray_address, options.slots)


def _close_run(store: Store, current_run: list[str], status: str) -> None:
    while current_run:
        store.set_run_status(current_run.pop(), status)


def _record(store: Store, run_id: str, row: BenchRow, source: str, result_json: str) -> BenchRow:
    """The record, now also in the store (one candidate with its verdict), with the store's ids."""
    cid = store.add_candidate(run_id, source=source, proposer="bench", stage="file", note=row.candidate)
    store.record_verdict(cid, verdict=row.verdict.value, reasons=row.reasons,
                         speedup_vs_eager=row.speedup_vs_eager, speedup_vs_compile=row.speedup_vs_compile,
                         candidate_ms=row.candidate_ms, eager_ms=row.eager_ms, compile_ms=row.compile_ms,
                         result_json=result_json, judge_seconds=row.seconds)
    return replace(row, run_id=run_id, candidate_id=cid)


# -- --optimize -----------------------------------------------------------------

RUNS = "optimize_runs.jsonl"  # key -> store run id, written when a task's search starts


def _resolved(plan: OptimizePlan) -> OptimizePlan:
    """The plan with its default proposers spelled out (they depend on which API keys are set).

    Raises InputError for a proposer spec that cannot be used, before any task starts.
    """
    from kernelwright.propose.registry import build_proposers, default_specs

    models = plan.models or tuple(default_specs())
    try:
        build_proposers(list(models))
    except ValueError as exc:
        raise InputError(str(exc)) from None
    return replace(plan, models=tuple(models))


def _started_run(out: Path, key: str) -> str | None:
    """The store run a previous bench started for this key (it was cut short), if any."""
    path = out / RUNS
    if not path.exists():
        return None
    found = None
    for line in path.read_text(errors="replace").splitlines():
        try:
            d = json.loads(line)
        except ValueError:
            continue  # a line cut by a kill
        if isinstance(d, dict) and d.get("key") == key:
            found = d.get("run_id")
    return found if isinstance(found, str) else None


def _note_run(out: Path, key: str, run_id: str) -> None:
    fd = os.open(out / RUNS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps({"key": key, "run_id": run_id}) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _optimize_one(task: SuiteTask, key: str, device: str, plan: OptimizePlan, opts: VerifyOptions,
                  store: Store, out: Path) -> BenchRow:
    """Run the engineer on one task (resuming a search a kill cut short); the task's record.

    The record is a fresh verdict: the crowned kernel's re-judgement when a kernel held up as
    faster, else a new verdict of the search's best accepted kernel (what decides fast_0),
    else `rejected` with the search's own account of why nothing was found.
    """
    from kernelwright.search.run import OptimizeRequest, optimize_task

    t0 = time.perf_counter()
    run_dir = out / "runs" / task.name.replace("/", "__").removesuffix(".py")
    run_id = _started_run(out, key)
    status = None
    if run_id is not None:
        try:
            status = store.get_run(run_id).status
        except Exception:  # noqa: BLE001 - a run the store no longer has: start afresh
            run_id = None
    if status != "finished":  # finished but not recorded (killed in between): nothing to run again
        req = OptimizeRequest(task=task.path, models=list(plan.models), budget=plan.budget,
                              time_limit_s=plan.time_limit_s, device=device, target=plan.target, out_dir=run_dir,
                              resume=run_id, parallel=plan.parallel, seed=plan.seed,
                              compile_baseline=opts.compile_baseline)
        try:
            run_id = optimize_task(req, store, on_start=lambda rid: _note_run(out, key, rid))["run_id"]
        except Exception as exc:  # noqa: BLE001 - a bad task, or a bug of ours: a record, never the end of a bench
            return _error_row(task, "", key, device, t0, exc)
    assert run_id is not None
    return replace(_row_of_run(task, key, device, opts, store, run_id, run_dir),
                   seconds=time.perf_counter() - t0)


def _row_of_run(task: SuiteTask, key: str, device: str, opts: VerifyOptions, store: Store, run_id: str,
                run_dir: Path) -> BenchRow:
    """A finished search's record for its task (see `_optimize_one`)."""
    label = f"optimize:{run_id}"
    crowned = store.crowning(run_id)
    if crowned is not None and crowned.candidate_id is not None:
        best_json = Path(crowned.path).parent / "best.json" if crowned.path else run_dir / "best.json"
        verdict = json.loads(best_json.read_text())["verdict"]
        row = row_from_verdict(task, label, key, device, verdict, 0.0)
        return replace(row, run_id=run_id, candidate_id=crowned.candidate_id)
    fallback = store.best(run_id)
    if fallback is not None and fallback.source:
        path = run_dir / "best_accepted.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fallback.source)
        row, _ = _judge_one(task, path, label, key, device, opts)
        return replace(row, run_id=run_id, candidate_id=fallback.id)
    counts = ", ".join(f"{k} {v}" for k, v in store.counts(run_id)["by_verdict"].items() if v) or "no proposals"
    note = crowned.note if crowned is not None else "the search ended without a crowning"
    return BenchRow(task.name, label, Verdict.REJECTED, key, device, run_id=run_id,
                    reasons=[{"check": ErrorCheck.NO_KERNEL.value, "detail": f"{note} ({counts})"}])


def _error_row(task: SuiteTask, candidate: str, key: str, device: str, t0: float, exc: Exception) -> BenchRow:
    """The `error` record of a verdict that raised: the task's fault, or kernelwright's."""
    if isinstance(exc, (TaskError, InputError)):
        reason = {"check": ErrorCheck.TASK.value, "detail": str(exc)}
    else:
        reason = {"check": ErrorCheck.INTERNAL.value,
                  "detail": f"kernelwright failed ({type(exc).__name__}: {exc}); please report it"}
    return BenchRow(task.name, candidate, Verdict.ERROR, key, device, seconds=time.perf_counter() - t0,
                    reasons=[reason])
