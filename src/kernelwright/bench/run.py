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

from kernelwright import constants as C
from kernelwright import provenance
from kernelwright.bench import records as R
from kernelwright.bench.records import BenchRow, ErrorCheck, Verdict
from kernelwright.bench.suite import SuiteTask, find_candidates, find_tasks, sample_tasks
from kernelwright.judge.pairs import PairPool
from kernelwright.judge.result import JudgeResult
from kernelwright.judge.verify import VerifyOptions, resolve_device
from kernelwright.store import Store, UnknownRun
from kernelwright.task.loader import InputError
from kernelwright.task.metadata import TaskError

if TYPE_CHECKING:  # the executors import the bench's records: imported where used, not at load
    from kernelwright.executor import Executor, JudgeOutcome, SearchJob, SearchOutcome


@dataclass(frozen=True)
class OptimizePlan:
    """`bench --optimize`: the engineer runs on each task, within this budget per task."""

    models: tuple[str, ...] = ()  # proposer specs as `optimize --model` takes them; (): its defaults
    budget: int = C.DEFAULT_BUDGET  # proposals per task, failed ones included
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
        host_factor=float(t.get("host_factor") or 1.0), process_factor=t.get("process_factor"))


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
                       reasons=out.verdict_or_error()["reasons"])
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
                searches = _search_executor(options, device)
                if searches is None:
                    _optimize_tasks(tasks, device, plan, opts, settings, done, rows, store, options.out, progress)
                else:
                    _optimize_elsewhere(tasks, device, plan, opts, settings, done, rows, store, options.out,
                                        progress, searches)
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
        key = _search_key(task, plan, device, settings)
        resumed = key in done
        if not resumed:
            done[key] = optimize_one(task, key, device, plan, opts, store, out)
            R.append(out, done[key])
        rows.append(done[key])
        if progress:
            progress(BenchProgress(i, len(tasks), done[key], resumed))


def _search_key(task: SuiteTask, plan: OptimizePlan, device: str, settings: dict[str, object]) -> str:
    """A task's resume key under `bench --optimize`: the search's settings stand for the candidate."""
    return R.verdict_key(task.name, task.path.read_text(errors="replace"),
                         "optimize " + json.dumps(plan.settings(), sort_keys=True), device, settings)


def _search_executor(options: BenchOptions, device: str) -> Executor | None:
    """Where `--optimize` runs each task's search: None for this process (the local executor's one
    slot), else an executor whose slots run whole searches into private stores."""
    if options.executor == "local":
        from kernelwright.executor._slots import default_slots

        if (options.slots or default_slots(device)) == 1:
            return None
    return _executor(options)


def _optimize_elsewhere(tasks: list[SuiteTask], device: str, plan: OptimizePlan, opts: VerifyOptions,
                        settings: dict[str, object], done: dict[str, BenchRow], rows: list[BenchRow],
                        store: Store, out: Path, progress: Callable[[BenchProgress], None] | None,
                        executor: Executor) -> None:
    """Run the searches of tasks without a record on `executor`'s slots, each into a private store;
    merge each finished run into `store` (this process alone writes it) and record the task.

    A task whose run is in `store` already (merged, or a search this process started, before a
    kill) is finished here as the one-slot path does: never searched a second time.
    """
    from kernelwright.executor import SearchJob

    jobs: list[SearchJob] = []
    for i, task in enumerate(tasks):
        key = _search_key(task, plan, device, settings)
        if key not in done and _run_in(store, started_run(out, key)):
            done[key] = optimize_one(task, key, device, plan, opts, store, out)
            R.append(out, done[key])
        if key in done:
            rows.append(done[key])
            if progress:
                progress(BenchProgress(i, len(tasks), done[key], True))
            continue
        jobs.append(SearchJob(i, task, task.path.read_text(errors="replace"), key, out / SCRATCH / key))
    for job, outcome in executor.search(jobs, device, plan, opts):
        _recorded(out, done, rows, _merged(store, out, job, outcome, device), job.index, len(tasks), progress)
    order = {t.name: n for n, t in enumerate(tasks)}
    rows.sort(key=lambda r: order.get(r.task, len(order)))


def _run_in(store: Store, run_id: str | None) -> bool:
    if run_id is None:
        return False
    try:
        store.get_run(run_id)
    except UnknownRun:
        return False
    return True


def _merged(store: Store, out: Path, job: SearchJob, outcome: SearchOutcome, device: str) -> BenchRow:
    """The task's record of a search that ran in a slot, its run merged into `store` first.

    The run is noted in OUT/optimize_runs.jsonl before the merge: a bench killed in between finds
    the note without the run and searches again; killed after the merge, it finds both and
    records the task from the store (`_optimize_elsewhere`).
    """
    if outcome.row is None:
        return BenchRow(job.task.name, "", Verdict.ERROR, job.key, device, seconds=outcome.seconds,
                        reasons=[{"check": (outcome.error_check or ErrorCheck.INTERNAL).value,
                                  "detail": outcome.error or "?"}])
    if outcome.run_id is not None:
        private = landed_store(job.scratch, outcome)
        _note_run(out, job.key, outcome.run_id)
        # A search that failed midway (its record an error) keeps its run too, as the one-slot path does.
        store.merge_run(private, outcome.run_id, task_path=str(job.task.path),
                        moved=(outcome.scratch, str(job.scratch)))
    return outcome.row


def landed_store(scratch: Path, outcome: SearchOutcome) -> Path:
    """The private store's path here: where a local slot wrote it, or where a Ray task's bytes now are
    (with the run's files beside it, so the crowned kernel's path in the store is one that exists)."""
    from kernelwright.executor import STORE_FILE

    if outcome.db is None:
        return Path(outcome.scratch) / STORE_FILE
    scratch.mkdir(parents=True, exist_ok=True)
    for rel, data in (outcome.files or {}).items():
        (scratch / rel).parent.mkdir(parents=True, exist_ok=True)
        (scratch / rel).write_bytes(data)
    # A file of its own: a local slot's store of an earlier bench may lie in this folder with its
    # WAL beside it, which SQLite would replay onto any file written under the same name.
    assert outcome.run_id is not None
    landed = scratch / f"{outcome.run_id}.db"
    landed.write_bytes(outcome.db)
    return landed


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
        _recorded(out, done, rows, row, job.index, len(tasks), progress)
    order = {j.key: n for n, j in enumerate(jobs)}
    rows.sort(key=lambda r: order.get(r.key, len(order)))


def _recorded(out: Path, done: dict[str, BenchRow], rows: list[BenchRow], row: BenchRow, index: int, tasks: int,
              progress: Callable[[BenchProgress], None] | None) -> None:
    """A new record, in results.jsonl first (the bench's memory), then among this bench's rows."""
    R.append(out, row)
    done[row.key] = row
    rows.append(row)
    if progress:
        progress(BenchProgress(index, tasks, row, False))


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
SCRATCH = "searches"  # OUT/searches/KEY: a search's private store where it ran in a slot (executor)


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


def started_run(out: Path, key: str) -> str | None:
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


def optimize_one(task: SuiteTask, key: str, device: str, plan: OptimizePlan, opts: VerifyOptions,
                  store: Store, out: Path) -> BenchRow:
    """Run the engineer on one task (resuming a search a kill cut short); the task's record.

    The record is a fresh verdict: the crowned kernel's re-judgement when a kernel held up as
    faster, else a new verdict of the search's best accepted kernel (what decides fast_0),
    else `rejected` with the search's own account of why nothing was found.
    """
    from kernelwright.search.run import OptimizeRequest, optimize_task

    t0 = time.perf_counter()
    run_dir = out / search_files(task.name)
    run_id = started_run(out, key)
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
            summary = optimize_task(req, store, on_start=lambda rid: _note_run(out, key, rid))
            run_id = summary["run_id"]
            # For `optimize --executor`, which prints it where the driver is (executor._optimize).
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / SUMMARY_FILE).write_text(json.dumps(summary, allow_nan=False))
        except Exception as exc:  # noqa: BLE001 - a bad task, or a bug of ours: a record, never the end of a bench
            return _error_row(task, "", key, device, t0, exc)
    assert run_id is not None
    return replace(_row_of_run(task, key, device, opts, store, run_id, run_dir),
                   seconds=time.perf_counter() - t0)


SUMMARY_FILE = "summary.json"  # a search's `optimize --json` summary, beside its best.py


def search_files(task_name: str) -> Path:
    """Where a task's search keeps its files (best.py, best.json, summary.json), under the bench's
    output folder (or a slot's scratch)."""
    return Path("runs") / task_name.replace("/", "__").removesuffix(".py")


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
                    reasons=[{"check": ErrorCheck.NO_KERNEL.value,
                              "detail": f"{note} ({counts}){_failures(store, run_id)}"}])


def _failures(store: Store, run_id: str, limit: int = 2) -> str:
    """The first distinct reasons the run's proposals came without source, for a no_kernel record.

    On KernelBench's level1/19 the only record was "no_source 1": Inductor's capture had run out of
    GPU memory, which the record has to say for a reader to tell the task from the engineer.
    """
    seen: list[str] = []
    for cand in store.candidates(run_id):
        if cand.failure and cand.failure not in seen:
            seen.append(cand.failure)
    if not seen:
        return ""
    shown = "; ".join(f"{c[:300]}" for c in seen[:limit])
    return f"; the proposals' failures: {shown}" + (f" (and {len(seen) - limit} more)" if len(seen) > limit else "")


def _error_row(task: SuiteTask, candidate: str, key: str, device: str, t0: float, exc: Exception) -> BenchRow:
    """The `error` record of a verdict that raised: the task's fault, or kernelwright's."""
    if isinstance(exc, (TaskError, InputError)):
        reason = {"check": ErrorCheck.TASK.value, "detail": str(exc)}
    else:
        reason = {"check": ErrorCheck.INTERNAL.value,
                  "detail": f"kernelwright failed ({type(exc).__name__}: {exc}); please report it"}
    return BenchRow(task.name, candidate, Verdict.ERROR, key, device, seconds=time.perf_counter() - t0,
                    reasons=[reason])
