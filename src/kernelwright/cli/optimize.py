"""`kernelwright optimize`, `runs` and `show`: the search, and its history in the store."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kernelwright import constants as C
from kernelwright.cli.render import exit_bad_input

def _store(path: str | None) -> Any:
    from kernelwright.store import Store, default_store_path

    p = Path(path) if path else default_store_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    return Store(p)


@click.command()
@click.argument("task", type=click.Path(dir_okay=False))
@click.option("--model", "models", multiple=True, metavar="SPEC[=WEIGHT]",
              help="A proposer: PROVIDER:NAME (openai:gpt-5, anthropic:claude-sonnet-4-5, scripted:FILE.jsonl) "
                   "or inductor / mutate; repeat for an ensemble. Default: LLMs whose API keys are set, "
                   "plus inductor and mutate.")
@click.option("--budget", type=click.IntRange(1, 100000), default=12, show_default=True,
              help="Proposals to make, failed ones included.")
@click.option("--time-limit", type=click.FloatRange(1, None), default=None, help="Stop after S seconds.")
@click.option("--max-cost", type=click.FloatRange(0, None), default=None, help="Stop after spending USD.")
@click.option("--max-tokens", type=click.IntRange(1, None), default=None, help="Stop after N LLM tokens.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where to judge (default: cuda when available, else cpu).")
@click.option("--target", type=click.Choice(["nvrtc", "triton", "cuda_inline", "c", "cpp_inline", "cuda", "cpp"]),
              default=None, help="Candidate form LLMs are asked for (default: nvrtc on a GPU, c on the CPU; "
                                 "cuda and cpp mean cuda_inline and cpp_inline).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where best.py goes (default: kernelwright-out/RUN_ID).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--resume", "resume", default=None, metavar="RUN", help="Continue a run from the store.")
@click.option("--store", "store_path", default=None, help="SQLite store (default: $KERNELWRIGHT_STORE or "
                                                          "~/.local/share/kernelwright/kernelwright.db).")
@click.option("--parallel", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Proposals (LLM calls and builds) in flight while one candidate is judged.")
@click.option("--seed", type=int, default=None, help="Seed the search's choices (not the judge's inputs).")
@click.option("--no-compile-baseline", is_flag=True, help="Do not time torch.compile in the final re-judgement.")
def optimize(task: str, models: tuple[str, ...], budget: int, time_limit: float | None, max_cost: float | None,
             max_tokens: int | None, device: str | None, target: str | None, out_dir: str | None,
             as_json: bool, resume: str | None, store_path: str | None, parallel: int, seed: int | None,
             no_compile_baseline: bool) -> None:
    """Search for a faster kernel for TASK (KernelBench format); write the best verified one.

    Exit 0: a kernel re-judged faster than eager was written. Exit 1: none was found.
    Exit 2: the task, a file or an option is wrong. Exit 130: interrupted (resume with --resume).
    """
    from kernelwright.propose.llm.base import ChatError
    from kernelwright.search.run import OptimizeRequest, optimize_task
    from kernelwright.store import StoreError
    from kernelwright.task import InputError, TaskError

    req = OptimizeRequest(task=Path(task), models=list(models), budget=budget, time_limit_s=time_limit,
                          max_cost_usd=max_cost, max_tokens=max_tokens, device=device, target=target,
                          out_dir=Path(out_dir) if out_dir else None, resume=resume, parallel=parallel,
                          seed=seed, compile_baseline=not no_compile_baseline)
    console = Console(stderr=True) if as_json else Console()
    try:
        with _store(store_path) as store:
            summary = optimize_task(req, store, console=None if as_json else console)
    except (TaskError, InputError, ValueError, ChatError, StoreError) as exc:
        exit_bad_input(str(exc), as_json)
        return
    except KeyboardInterrupt:
        # The judge has killed its workers and the store holds every finished result; exit
        # now rather than wait for proposer threads stuck in LLM calls.
        click.echo("interrupted: the run is in the store; continue it with --resume RUN", err=True)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)
    if as_json:
        sys.stdout.write(json.dumps(summary, allow_nan=False) + "\n")
    else:
        _print_summary(console, summary)
    sys.exit(C.ExitCode.ACCEPTED if summary["best"] else C.ExitCode.REJECTED)


def _print_summary(console: Console, s: dict[str, Any]) -> None:
    table = Table(title=f"run {s['run_id']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    b = s["best"]
    if b:
        table.add_row("best kernel", b["path"])
        table.add_row("speedup vs eager", f"{b['speedup_vs_eager']:.2f}x (re-judged in a fresh process)")
        sc = b.get("speedup_vs_compile")
        table.add_row("speedup vs torch.compile", "-" if sc is None else f"{sc:.2f}x")
        table.add_row("proposer", b["proposer"])
    else:
        table.add_row("best kernel", f"none: {s['note']}")
    c = s["candidates"]
    table.add_row("verdicts", ", ".join(f"{k} {v}" for k, v in c["by_verdict"].items()) or "-")
    table.add_row("reject reasons", ", ".join(f"{k} {v}" for k, v in c["by_reason"].items()) or "-")
    llm = s["llm"]
    table.add_row("LLM", f"{llm['calls']} calls, {llm['tokens']} tokens, ${llm['cost_usd']:.4f}")
    table.add_row("stopped", s["stop_reason"])
    console.print(table)


@click.command()
@click.option("--store", "store_path", default=None, help="SQLite store to read.")
@click.option("--limit", type=click.IntRange(1, 10000), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def runs(store_path: str | None, limit: int, as_json: bool) -> None:
    """List runs in the store, newest first."""
    with _store(store_path) as store:
        rows = []
        for r in store.list_runs(limit):
            best = store.best(r.id)
            rows.append({"run_id": r.id, "created": r.created, "status": r.status, "task": r.task_name,
                         "device": r.device, "proposals": len(store.candidates(r.id)),
                         "best_speedup_vs_eager": best.speedup_vs_eager if best else None})
    if as_json:
        sys.stdout.write(json.dumps({"runs": rows}) + "\n")
        return
    table = Table("run", "created", "status", "task", "device", "proposals", "best (search)")
    for row in rows:
        sp = row["best_speedup_vs_eager"]
        table.add_row(row["run_id"], row["created"][:19], row["status"], row["task"], row["device"],
                      str(row["proposals"]), "-" if sp is None else f"{sp:.2f}x")
    Console().print(table)


@click.command()
@click.argument("run_id")
@click.option("--store", "store_path", default=None, help="SQLite store to read.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def show(run_id: str, store_path: str | None, as_json: bool) -> None:
    """Show one run: its best kernel, that kernel's lineage, and verdicts by reason."""
    from kernelwright.store import UnknownRun

    with _store(store_path) as store:
        try:
            run = store.get_run(run_id)
        except UnknownRun as exc:
            exit_bad_input(str(exc), as_json)
            return
        best = store.best(run_id)
        lineage = store.lineage(best.id) if best else []
        data = {"run": {k: v for k, v in run.to_dict().items() if k != "task_source"},
                "best": _brief(best) if best else None, "lineage": [_brief(c) for c in lineage],
                "candidates": store.counts(run_id), "llm": store.usage_totals(run_id).to_dict()}
    if as_json:
        sys.stdout.write(json.dumps(data, allow_nan=False) + "\n")
        return
    console = Console()
    console.print(f"[bold]{run.id}[/bold]  {run.task_name} on {run.device}, {run.status}")
    if best:
        console.print(f"best in search: {best.id} by {best.proposer}, {best.speedup_vs_eager or 0:.2f}x vs eager")
        for c in lineage:
            console.print(f"  <- {c.id} {c.proposer} ({c.stage}) {c.verdict} "
                          f"{(c.speedup_vs_eager or 0):.2f}x {c.note}", highlight=False)
    counts = data["candidates"]
    console.print("verdicts: " + ", ".join(f"{k} {v}" for k, v in counts["by_verdict"].items()))
    console.print("reject reasons: " + (", ".join(f"{k} {v}" for k, v in counts["by_reason"].items()) or "-"))


def _brief(c: Any) -> dict[str, Any]:
    return {"candidate_id": c.id, "proposer": c.proposer, "stage": c.stage, "verdict": c.verdict,
            "speedup_vs_eager": c.speedup_vs_eager, "note": c.note, "parents": list(c.parent_ids)}
