"""One optimize job end to end: proposers, the search, the fresh re-judgement, a summary.

`optimize_task` is what `kernelwright optimize` runs, and the entry point for scripts
that want the same job without the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

from kernelwright import constants as C
from kernelwright import forms
from kernelwright.judge.verify import VerifyOptions, resolve_device
from kernelwright.propose.registry import build_proposers, default_specs
from kernelwright.search import device_facts
from kernelwright.paths import run_output_dir
from kernelwright.search.finalize import Crowning, crown, crown_pool
from kernelwright.search.loop import Search, SearchConfig, WeightedProposer
from kernelwright.store import content_hash
from kernelwright.task.loader import InputError, load_task

@dataclass(frozen=True)
class OptimizeRequest:
    """What to optimize and with what budget."""

    task: Path
    models: list[str]
    budget: int = C.DEFAULT_BUDGET
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


def optimize_task(req: OptimizeRequest, store: Any, console: Any = None,
                  on_start: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run (or resume) a search and crown its best kernel; the `--json` summary as a dict.

    `on_start` is told the run id once the run is in the store, before any proposal.

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
                       judge=VerifyOptions(device=device, compile_baseline=False, extra_rounds=False))
    name = task.path.stem if task.path.stem != "task" else task.path.parent.name
    search = Search(task.path, task.source, name, proposers, store, cfg, run_id=run_id,
                    on_event=None)
    if on_start is not None:
        on_start(search.run_id)
    # The re-judgement's fresh workers import torch while the search runs (on the 2-core
    # machine Inductor's capture leaves a core free for the first seconds).
    with crown_pool(device, req.compile_baseline) as pool:
        if console is not None:
            from kernelwright.cli.live import LiveView

            with LiveView(console, name, req.budget) as view:
                search.on_event = view
                search.run()
        else:
            search.run()
        out_dir = req.out_dir or run_output_dir(store.path, search.run_id)
        crowning = crown(store, search.run_id, task.path, out_dir, device, req.compile_baseline, pool)
    record_crowning(store, search.run_id, crowning)
    usage = store.usage_totals(search.run_id)
    in_search = store.best(search.run_id)
    b = crowning.best
    return {
        "run_id": search.run_id,
        # The fresh re-judgement's figures: what the run reports.
        "best": None if b is None else {
            "path": b.path, "speedup_vs_eager": b.speedup_vs_eager,
            "speedup_vs_eager_interval": _pair(b.speedup_vs_eager_interval),
            "speedup_vs_compile": b.speedup_vs_compile,
            "speedup_vs_compile_interval": _pair(b.speedup_vs_compile_interval),
            "proposer": b.proposer, "candidate_id": b.candidate_id, "candidate_ms": b.candidate_ms},
        "out_dir": str(out_dir),
        "note": crowning.note,
        "rejudged": crowning.rejudged,
        # The search's own best verdict (one long-lived judge): labelled, never the headline.
        "search_best": None if in_search is None else {
            "candidate_id": in_search.id, "proposer": in_search.proposer,
            "speedup_vs_eager": in_search.speedup_vs_eager},
        "candidates": store.counts(search.run_id),
        "llm": {"calls": usage.calls, "tokens": usage.input_tokens + usage.output_tokens,
                "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                "cost_usd": round(usage.cost_usd, 6)},
        "stop_reason": search.stop_reason,
        "device": device,
        "target": target,
    }


def record_crowning(store: Any, run_id: str, crowning: Crowning) -> None:
    """Keep how the run ended in the store, so `runs` and `show` report the re-judged figures."""
    b = crowning.best
    store.record_crowning(
        run_id, candidate_id=None if b is None else b.candidate_id, path=None if b is None else b.path,
        speedup_vs_eager=None if b is None else b.speedup_vs_eager,
        speedup_vs_eager_interval=None if b is None else b.speedup_vs_eager_interval,
        speedup_vs_compile=None if b is None else b.speedup_vs_compile,
        speedup_vs_compile_interval=None if b is None else b.speedup_vs_compile_interval,
        candidate_ms=None if b is None else b.candidate_ms, note=crowning.note, rejudged=crowning.rejudged,
        result=crowning.verdict)


def _pair(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else list(interval)


def _work_root() -> Path:
    """Where each run keeps the candidate files it judged."""
    from kernelwright.paths import cache_dir

    return cache_dir() / "runs"
