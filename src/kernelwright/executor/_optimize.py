"""`kernelwright optimize TASK --executor ray`: one task's whole search on an executor's slot.

The search and its fresh re-judgement run where the executor puts them (on Ray, a task holding
one GPU, or a whole node on the CPU), into a private store there, exactly as one task of
`bench --optimize`. The driver, this process, alone writes the user's store: it merges the run
in (ids kept) and lands the run's files (best.py, best.json, summary.json) in the run's usual
output folder, so `runs`, `show` and `export` see it as they see a local run.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelwright.task.loader import InputError, load_task

if TYPE_CHECKING:
    from kernelwright.executor._base import Executor
    from kernelwright.search.run import OptimizeRequest
    from kernelwright.store import Store


def optimize_elsewhere(req: OptimizeRequest, store: Store, executor: Executor) -> dict[str, Any]:
    """Run `req`'s search on `executor`; the summary `optimize --json` prints, its paths this machine's.

    Raises InputError for an option the executor cannot honour (resuming a run), TaskError or
    InputError for a bad task, and RuntimeError when the slot gave back no run (the executor's
    own sentence: a lost slot, twice, or a bug of ours).
    """
    from kernelwright import forms
    from kernelwright.bench.run import SUMMARY_FILE, OptimizePlan, search_files
    from kernelwright.bench.suite import SuiteTask
    from kernelwright.executor._base import SearchJob
    from kernelwright.judge.verify import VerifyOptions, resolve_device
    from kernelwright.paths import run_output_dir
    from kernelwright.store import content_hash

    if req.resume is not None:
        raise InputError("--resume continues a run in this process: leave out --executor (or use local)")
    task = load_task(req.task)
    device = resolve_device(req.device)
    target = req.target or forms.DEFAULT_TARGET[device]
    plan = OptimizePlan(models=tuple(req.models), budget=req.budget, time_limit_s=req.time_limit_s,
                        seed=req.seed, parallel=req.parallel, target=target)
    opts = VerifyOptions(device=device, compile_baseline=req.compile_baseline)
    with tempfile.TemporaryDirectory(prefix="kw-optimize-") as tmp:
        job = SearchJob(0, SuiteTask(task.path.name, task.path.resolve(), 0, 0), task.source,
                        f"optimize-{content_hash(task.source)[:16]}", Path(tmp) / "scratch")
        files = search_files(job.task.name)
        outcomes = list(executor.search([job], device, plan, opts))
        if not outcomes or outcomes[0][1].run_id is None:
            why = outcomes[0][1].error if outcomes else None
            raise RuntimeError(why or "the executor returned no run")
        outcome = outcomes[0][1]
        run_id = outcome.run_id
        assert run_id is not None
        out_dir = req.out_dir or run_output_dir(store.path, run_id)
        private = _land(job.scratch, outcome, files, out_dir)
        store.merge_run(private, run_id, task_path=str(task.path.resolve()),
                        moved=(str(Path(outcome.scratch) / files), str(out_dir)))
    if not (out_dir / SUMMARY_FILE).is_file():  # the search itself failed: its record says why
        reasons = (outcome.row.reasons if outcome.row is not None else []) or [{"detail": "no summary came back"}]
        raise RuntimeError(f"the search of run {run_id} did not finish: {reasons[0].get('detail')}")
    summary = json.loads((out_dir / SUMMARY_FILE).read_text())
    summary["out_dir"] = str(out_dir)
    if summary.get("best"):
        summary["best"]["path"] = str(out_dir / Path(summary["best"]["path"]).name)
    summary["executor"] = executor.name
    return summary


def _land(scratch: Path, outcome: Any, files: Path, out_dir: Path) -> Path:
    """The private store's path here (`bench.run.landed_store`), with the run's own files copied into `out_dir`."""
    from kernelwright.bench.run import landed_store

    private = landed_store(scratch, outcome)
    src = (Path(outcome.scratch) if outcome.db is None else scratch) / files
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.glob("*")) if src.is_dir() else []:
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)
    return private
