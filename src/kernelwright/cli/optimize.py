"""`kernelwright optimize`: the search, its fresh re-judgement, and the summary."""

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
from kernelwright.cli.history import open_store
from kernelwright.cli._interrupt import interruptible
from kernelwright.cli.render import exit_bad_input, speedup_text



@click.command()
@click.argument("task", type=click.Path(dir_okay=False))
@click.option("--model", "models", multiple=True, metavar="SPEC[=WEIGHT]",
              help="A proposer: PROVIDER:NAME (openai:gpt-5, anthropic:claude-sonnet-4-5, scripted:FILE.jsonl) "
                   "or inductor / mutate; repeat for an ensemble. Default: LLMs whose API keys are set, "
                   "plus inductor and mutate.")
@click.option("--budget", type=click.IntRange(1, 100000), default=C.DEFAULT_BUDGET, show_default=True,
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
              help="Where best.py and best.json go (default: runs/RUN_ID beside the store).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--resume", "resume", default=None, metavar="RUN", help="Continue a run from the store.")
@click.option("--store", "store_path", default=None, help="SQLite store (default: $KERNELWRIGHT_STORE or "
                                                          "~/.local/share/kernelwright/kernelwright.db).")
@click.option("--parallel", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Proposals (LLM calls and builds) in flight while one candidate is judged.")
@click.option("--seed", type=int, default=None, help="Seed the search's choices (not the judge's inputs).")
@click.option("--no-compile-baseline", is_flag=True, help="Do not time torch.compile in the final re-judgement.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where the search and its re-judgement run: this process, or a Ray cluster's judging slot "
                   "(one GPU; on the CPU, a whole node). The run is merged into the store here either way.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --executor ray: the cluster to join (default: $RAY_ADDRESS, else a local one).")
def optimize(task: str, models: tuple[str, ...], budget: int, time_limit: float | None, max_cost: float | None,
             max_tokens: int | None, device: str | None, target: str | None, out_dir: str | None,
             as_json: bool, resume: str | None, store_path: str | None, parallel: int, seed: int | None,
             no_compile_baseline: bool, executor: str, ray_address: str | None) -> None:
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
        with interruptible(), open_store(store_path) as store:
            if executor == "local":
                summary = optimize_task(req, store, console=None if as_json else console)
            else:
                from kernelwright.executor import get_executor, optimize_elsewhere

                if not as_json:
                    console.print(f"optimizing {Path(task).name} on the {executor} executor (progress is shown "
                                  "when the search ends)")
                summary = optimize_elsewhere(req, store, get_executor(executor, ray_address, None))
    except (TaskError, InputError, ValueError, ChatError, StoreError) as exc:
        exit_bad_input(str(exc), as_json)
        return
    except RuntimeError as exc:  # the executor gave back no run (a lost slot, twice): not the task's fault
        exit_bad_input(f"the search could not run on the {executor} executor: {exc}", as_json)
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
    # The live view's last frame ends without a newline when stdout is not a terminal.
    console.line()
    table = Table(title=f"run {s['run_id']}", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    b = s["best"]
    if b:
        # The fresh re-judgement's figures come first: they are the claim. What they are gets
        # a row of its own, so that no terminal width splits it from the figures or itself.
        table.add_row("speedup vs eager", speedup_text(b["speedup_vs_eager"], b.get("speedup_vs_eager_interval")))
        table.add_row("speedup vs torch.compile",
                      speedup_text(b.get("speedup_vs_compile"), b.get("speedup_vs_compile_interval")))
        table.add_row("measured", "re-judged in a fresh process")
        table.add_row("proposer", b["proposer"])
    else:
        table.add_row("best kernel", f"none: {s['note']}")
    sb = s.get("search_best")
    if sb:
        table.add_row("best in search", f"{speedup_text(sb['speedup_vs_eager'])} by {sb['proposer']} "
                                        "(the search's own verdict, not the claim)")
    c = s["candidates"]
    table.add_row("verdicts", ", ".join(f"{k} {v}" for k, v in c["by_verdict"].items() if v) or "-")
    table.add_row("reject reasons", ", ".join(f"{k} {v}" for k, v in c["by_reason"].items()) or "-")
    llm = s["llm"]
    table.add_row("LLM", f"{llm['calls']} calls, {llm['tokens']} tokens, ${llm['cost_usd']:.4f}")
    table.add_row("stopped", s["stop_reason"])
    console.print(table)
    if b:
        # Outside the table, on one line however narrow the terminal: a path to copy.
        console.print(f"best kernel: {b['path']}", soft_wrap=True, highlight=False)
