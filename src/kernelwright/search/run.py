"""One optimize job end to end: proposers, the search, the fresh re-judgement, a summary.

`optimize_task` is what `kernelwright optimize` runs, and the entry point for scripts
that want the same job without the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelwright import forms
from kernelwright.judge.verify import VerifyOptions, resolve_device
from kernelwright.propose.registry import build_proposers, default_specs
from kernelwright.search import device_facts
from kernelwright.search.finalize import crown
from kernelwright.search.loop import Search, SearchConfig, WeightedProposer
from kernelwright.store import content_hash
from kernelwright.task.loader import InputError, load_task

@dataclass(frozen=True)
class OptimizeRequest:
    """What to optimize and with what budget."""

    task: Path
    models: list[str]
    budget: int = 12
    time_limit_s: float | None = None
    max_cost_usd: float | None = None
    max_tokens: int | None = None
    device: str | None = None
    target: str | None = None
    out_dir: Path | None = None
    resume: str | None = None
    parallel: int = 2
    seed: int | None = None
    compile_baseline: bool = True


def optimize_task(req: OptimizeRequest, store: Any, console: Any = None) -> dict[str, Any]:
    """Run (or resume) a search and crown its best kernel; the `--json` summary as a dict.

    Raises TaskError, InputError or ValueError for a bad task, option or model spec.
    """
    task = load_task(req.task)
    device = resolve_device(req.device)
    form = forms.get(req.target or forms.DEFAULT_TARGET[device])
    if form.device != device:
        usable = ", ".join(f.name for f in forms.for_device(device))
        raise InputError(f"target {form.name} runs on {form.device}, not {device}; on {device} use one of: {usable}")
    target = form.name
    run_id = req.resume
    if run_id is not None:
        run = store.get_run(run_id)
        if run.task_hash != content_hash(task.source):
            raise InputError(f"run {run_id} optimized a different task ({run.task_path}); give that task")
        if run.device != device:
            raise InputError(f"run {run_id} ran on {run.device}; resume it with --device {run.device}")
    proposers = [WeightedProposer(p, w) for p, w in build_proposers(req.models or default_specs())]
    work = _work_root()
    cfg = SearchConfig(device=device, target=target, work_dir=work, budget=req.budget,
                       time_limit_s=req.time_limit_s, max_tokens=req.max_tokens, max_cost_usd=req.max_cost_usd,
                       parallel=req.parallel, seed=req.seed, device_facts=device_facts.describe(device),
                       judge=VerifyOptions(device=device, compile_baseline=False))
    name = task.path.stem if task.path.stem != "task" else task.path.parent.name
    search = Search(task.path, task.source, name, proposers, store, cfg, run_id=run_id,
                    on_event=None)
    if console is not None:
        from kernelwright.cli.live import LiveView

        with LiveView(console, name, req.budget) as view:
            search.on_event = view
            search.run()
    else:
        search.run()
    out_dir = req.out_dir or Path("kernelwright-out") / search.run_id
    crowning = crown(store, search.run_id, task.path, out_dir, device, req.compile_baseline)
    usage = store.usage_totals(search.run_id)
    return {
        "run_id": search.run_id,
        "best": None if crowning.best is None else {
            "path": crowning.best.path, "speedup_vs_eager": crowning.best.speedup_vs_eager,
            "speedup_vs_compile": crowning.best.speedup_vs_compile, "proposer": crowning.best.proposer,
            "candidate_id": crowning.best.candidate_id, "candidate_ms": crowning.best.candidate_ms},
        "note": crowning.note,
        "rejudged": crowning.rejudged,
        "candidates": store.counts(search.run_id),
        "llm": {"calls": usage.calls, "tokens": usage.input_tokens + usage.output_tokens,
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                "cost_usd": round(usage.cost_usd, 6)},
        "stop_reason": search.stop_reason,
        "device": device,
        "target": target,
    }


def _work_root() -> Path:
    """Where each run keeps the candidate files it judged."""
    from kernelwright.paths import cache_dir

    return cache_dir() / "runs"
