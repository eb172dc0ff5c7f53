"""`kernelwright bench`: judge a whole suite in KernelBench's layout and print KernelBench's figures."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernelwright import constants as C
from kernelwright.bench.metrics import P_VALUES
from kernelwright.cli._interrupt import interruptible
from kernelwright.bench.records import degenerate
from kernelwright.task.check import flag_words
from kernelwright.cli.render import exit_bad_input, speedup_text


def _levels(text: str | None) -> frozenset[int] | None:
    if not text:
        return None
    try:
        return frozenset(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: give levels as numbers, e.g. 1,2") from None


def default_out(suite: Path, device: str) -> Path:
    """Beside the store: bench/SUITE-DEVICE, so that the same command again resumes."""
    from kernelwright.store import default_store_path

    return default_store_path().parent / "bench" / f"{suite.resolve().name}-{device}"


@click.command()
@click.argument("suite", type=click.Path(exists=True, file_okay=False))
@click.option("--candidates", "candidates", type=click.Path(exists=True, file_okay=False), default=None,
              help="Candidates under the tasks' relative names (level1/23_Softmax.py), several in a folder per "
                   "task (level1/23_Softmax/*.py), or KernelBench's level_1_problem_23_sample_0_kernel.py.")
@click.option("--optimize", is_flag=True,
              help="Instead of --candidates: run the engineer on each task (as `kernelwright optimize` does) "
                   "and judge what it finds.")
@click.option("--model", "models", multiple=True, metavar="SPEC[=WEIGHT]",
              help="With --optimize: a proposer, as `optimize --model` takes it (default: LLMs whose API keys "
                   "are set, plus inductor and mutate).")
@click.option("--budget", type=click.IntRange(1, 100000), default=C.DEFAULT_BUDGET, show_default=True,
              help="With --optimize: proposals per task, failed ones included.")
@click.option("--time-limit", type=click.FloatRange(1, None), default=None,
              help="With --optimize: stop each task's search after S seconds.")
@click.option("--seed", type=int, default=None,
              help="With --optimize: seed the searches' choices. Also picks --sample's tasks (default 0).")
@click.option("--parallel", type=click.IntRange(1, 64), default=2, show_default=True,
              help="With --optimize: proposals in flight while one candidate is judged.")
@click.option("--target", type=click.Choice(["nvrtc", "triton", "cuda_inline", "c", "cpp_inline"]), default=None,
              help="With --optimize: the form LLMs are asked for (default: the device's).")
@click.option("--levels", default=None, metavar="1,2", help="Only these levels.")
@click.option("--tasks", "pattern", default=None, metavar="GLOB",
              help="Only tasks whose name (level1/23_Softmax.py) or file name matches.")
@click.option("--sample", type=click.IntRange(1, None), default=None, metavar="N",
              help="Only a seeded random sample of N of the selected tasks (the seed is --seed's).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where to judge (default: cuda when available, else cpu).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Where results.jsonl goes (default: bench/SUITE-DEVICE beside the store); "
                   "running again with the same OUT resumes.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--trials", type=click.IntRange(1, 1000), default=C.MIN_TRIALS, show_default=True,
              help="Correctness trials per candidate.")
@click.option("--no-compile-baseline", is_flag=True, help="Skip timing torch.compile (it is slow on the CPU).")
@click.option("--no-timing", is_flag=True, help="Check correctness and honesty only (fast_p above 0 is then 0).")
@click.option("--threads", type=click.IntRange(1, 1024), default=None, help="CPU threads for every side.")
@click.option("--store", "store_path", default=None, help="SQLite store (default: $KERNELWRIGHT_STORE or "
              "~/.local/share/kernelwright/kernelwright.db).")
@click.option("--no-confine", is_flag=True, help="Run candidates unconfined (also KERNELWRIGHT_CONFINE=0).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where verdicts (--candidates) or each task's whole search (--optimize) run: this machine's "
                   "judging slots (--slots), or a Ray cluster's (one GPU each; on the CPU, a whole node each). "
                   "Verdicts do not depend on it.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --executor ray: the cluster to join (default: $RAY_ADDRESS, else a local one).")
@click.option("--slots", type=click.IntRange(1, 1024), default=None,
              help="With --executor local: judging slots, each a process on one GPU (timing: on cores of its "
                   "own; default: one per visible GPU, 1 on the CPU). Slots of one device take turns timing. "
                   "With --optimize and more than 1, each slot runs whole searches.")
@click.option("--build-jobs", type=click.IntRange(1, 1024), default=None,
              help="With --executor local and --candidates: slow-building candidates built at once ahead of "
                   f"their verdicts, by the driver (default: ${C.BUILD_JOBS_ENV}, else one per core the slots leave).")
@click.option("--task-checks", "task_checks", type=click.Path(exists=True, dir_okay=False), default=None,
              metavar="FILE", help="Rows of `kernelwright check-task` (its --out file or --json output): the "
                                   "tasks it flagged are marked in the table, --json and the report (kept in OUT).")
def bench(suite: str, candidates: str | None, optimize: bool, models: tuple[str, ...], budget: int,
          time_limit: float | None, seed: int | None, parallel: int, target: str | None, levels: str | None,
          pattern: str | None, sample: int | None, device: str | None, out_dir: str | None, as_json: bool, trials: int,
          no_compile_baseline: bool, no_timing: bool, threads: int | None, store_path: str | None,
          no_confine: bool, executor: str, ray_address: str | None, slots: int | None,
          build_jobs: int | None, task_checks: str | None) -> None:
    """Judge every candidate of every task of SUITE (a KernelBench checkout or a folder in its layout).

    With --optimize instead of --candidates, the engineer runs on each task within the
    per-task budget, and the task's record is a fresh verdict of the kernel it found.

    Prints the correctness rate, reject reasons, fast_p at p = 0, 1, 1.5, 2 against eager and
    torch.compile, and geometric-mean speedups. Exit 0: the bench finished (whatever the
    verdicts). Exit 2: the suite, a folder or an option is wrong. Exit 130: interrupted (run the
    same command again to resume).
    """
    from kernelwright.bench import BenchOptions, run_bench, summarize
    from kernelwright.bench.run import OptimizePlan
    from kernelwright.bench.metrics import outcomes
    from kernelwright.judge.verify import VerifyOptions, resolve_device
    from kernelwright.store import default_store_path
    from kernelwright.task import InputError

    console = Console(stderr=True)
    if build_jobs is not None:  # the executors (and the slot processes they spawn) read it there
        os.environ[C.BUILD_JOBS_ENV] = str(build_jobs)
    try:
        dev = resolve_device(device)
        out = Path(out_dir) if out_dir else default_out(Path(suite), dev)
        if optimize == (candidates is not None):
            raise InputError("give either --candidates DIR (judge given kernels) or --optimize (find them)")
        plan = OptimizePlan(models=models, budget=budget, time_limit_s=time_limit, seed=seed, parallel=parallel,
                            target=target) if optimize else None
        opts = BenchOptions(
            out=out, levels=_levels(levels), pattern=pattern, optimize=plan, sample=sample, sample_seed=seed,
            executor=executor, ray_address=ray_address, slots=slots,
            store_path=Path(store_path) if store_path else default_store_path(),
            verify=VerifyOptions(device=dev, trials=trials, compile_baseline=not no_compile_baseline,
                                 timing=not no_timing, threads=threads, compile_ratio_cache=True,
                                 **({"confine": False} if no_confine else {})))
        opts.store_path.parent.mkdir(parents=True, exist_ok=True)
        if not as_json:
            console.print(f"results: {out / 'results.jsonl'}")
        with interruptible(), _progress(console, as_json) as (bar, on_row):
            tasks, rows = run_bench(Path(suite), Path(candidates) if candidates else None, opts, on_row)
    except InputError as exc:
        exit_bad_input(str(exc), as_json)
        return
    except KeyboardInterrupt:
        click.echo("interrupted: every finished verdict is in results.jsonl; run the same command to resume",
                   err=True)
        sys.exit(130)
    names = [t.name for t in tasks]
    summary = summarize(names, rows)
    outs = outcomes(names, rows)
    try:
        checks = _task_checks(out, names, Path(task_checks) if task_checks else None, dev)
    except OSError as exc:
        exit_bad_input(f"--task-checks: {exc}", as_json)
        return
    if as_json:
        doc = {"tasks": [_task_json(o, [r for r in rows if r.task == o.task], checks.get(o.task)) for o in outs],
               "summary": summary.to_dict(),
               "out": str(out / "results.jsonl")}
        sys.stdout.write(json.dumps(doc, allow_nan=False) + "\n")
    else:
        _print(Console(), outs, summary, rows, checks)
    sys.exit(C.ExitCode.ACCEPTED)


def _task_checks(out: Path, names: list[str], given: Path | None, device: str) -> dict[str, dict[str, Any]]:
    """check-task's rows for this bench's tasks: from --task-checks (kept in OUT for the report and
    later runs), else what an earlier run kept there. Rows checked on another device are used
    when none was checked on this one."""
    from kernelwright.report.export import write_whole
    from kernelwright.task.check import TASK_CHECKS_FILE, read_rows

    kept = out / TASK_CHECKS_FILE
    if given is None:
        return read_rows(kept) if kept.exists() else {}
    rows = {**read_rows(given), **read_rows(given, device)}
    mine = {n: rows[n] for n in names if n in rows}
    out.mkdir(parents=True, exist_ok=True)
    write_whole(kept, "".join(json.dumps(r) + "\n" for r in mine.values()))
    return mine


class _progress:
    """A bar over tasks that shows the running fast_1 (silent with --json)."""

    def __init__(self, console: Console, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console, transient=True)
        self.tid: Any = None
        self.fast: dict[str, float] = {}
        self.seen: set[str] = set()

    def __enter__(self) -> tuple[Progress, Any]:
        if not self.quiet:
            self.bar.start()
        return self.bar, self.on_row

    def on_row(self, p: Any) -> None:
        """Advance to the record's task; fast_1 over the tasks seen so far."""
        if self.tid is None:
            self.tid = self.bar.add_task("bench", total=p.tasks)
        r = p.row
        if r.accepted and r.speedup_vs_eager is not None:
            self.fast[r.task] = max(self.fast.get(r.task, 0.0), r.speedup_vs_eager)
        self.seen.add(r.task)
        fast1 = sum(v > 1.0 for v in self.fast.values())
        self.bar.update(self.tid, completed=p.task_index + 1,
                        description=f"{r.task} {r.verdict}  fast_1 {fast1}/{len(self.seen)}")

    def __exit__(self, *exc: object) -> None:
        if not self.quiet:
            self.bar.stop()


def _task_json(o: Any, records: list[Any], check: dict[str, Any] | None = None) -> dict[str, Any]:
    """A task's entry of --json: its deciding record's figures, then every candidate's record."""
    r = o.row
    return {"task": o.task, "verdict": str(o.verdict), "candidates": o.candidates,
            "candidate": r.candidate if r else None,
            "speedup_vs_eager": r.speedup_vs_eager if r else None,
            "speedup_vs_eager_interval": list(r.eager_interval) if r and r.eager_interval else None,
            "speedup_vs_compile": r.speedup_vs_compile if r else None,
            "speedup_vs_compile_interval": list(r.compile_interval) if r and r.compile_interval else None,
            "reasons": r.reasons if r else [{"check": "missing", "detail": "no candidate for this task"}],
            "degenerate": degenerate(f for x in records for f in x.findings),
            # check-task's flags for it (--task-checks), with one detail each; None: not checked
            "task_checks": {"flags": check.get("flags", []), "details": check.get("details", [])} if check else None,
            "records": [{"candidate": x.candidate, "verdict": str(x.verdict), "speedup_vs_eager": x.speedup_vs_eager,
                         "speedup_vs_compile": x.speedup_vs_compile, "reasons": x.reasons, "seconds": x.seconds}
                        for x in records]}


def _print(console: Console, outs: list[Any], s: Any, rows: list[Any],
           checks: dict[str, dict[str, Any]] | None = None) -> None:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column("task", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("vs eager [95%]", no_wrap=True)
    table.add_column("vs compile [95%]", no_wrap=True)
    table.add_column("reason", overflow="fold")
    flagged = 0
    for o in outs:
        r = o.row
        reason = "" if r is None or o.verdict == "accepted" or not r.reasons else \
            f"{r.reasons[0]['check']}: {r.reasons[0]['detail']}"[:120]
        weak = degenerate(f for x in rows if x.task == o.task for f in x.findings) \
            + flag_words((checks or {}).get(o.task, {}))
        flagged += bool(weak)
        if weak:
            reason = (reason + "; " if reason else "") + "degenerate task: " + "; ".join(weak)
        table.add_row(o.task + (" *" if weak else ""), str(o.verdict) if r else "missing",
                      speedup_text(r.speedup_vs_eager, r.eager_interval, compact=True) if r else "-",
                      speedup_text(r.speedup_vs_compile, r.compile_interval, compact=True) if r else "-",
                      reason if r else "no candidate")
    console.print(table)
    if flagged:
        console.print(f"* {flagged} degenerate task(s): a kernel can pass them without doing their work "
                      "(kernelwright check-task says more)")
    console.print(f"tasks {s.tasks}  candidates judged {s.candidates}  correct {s.correct} "
                  f"({s.correctness_rate:.0%})  errors {s.errors}  without a candidate {s.missing}")
    if s.reasons:
        console.print("rejected or failed, by first reason: " + ", ".join(f"{k} {v}" for k, v in s.reasons.items()))
    fp = Table(box=box.SIMPLE_HEAD, show_edge=False, title="fast_p: share of all tasks correct and > p times faster")
    fp.add_column("baseline")
    for p in P_VALUES:
        fp.add_column(f"p={p:g}", justify="right")
    fp.add_column("geomean", justify="right")
    for b, g in (("eager", s.geomean_vs_eager), ("compile", s.geomean_vs_compile)):
        shares, sure = s.fast_p[b], s.fast_p_sure[b]
        if shares is None or sure is None:
            fp.add_row(b, *(["not timed"] + [""] * len(P_VALUES)))
            continue
        fp.add_row(b, *(f"{v:.2f}" for v in shares.values()), "-" if g is None else f"{g:.2f}x")
        fp.add_row(f"{b}, interval clears p", "", *(f"{v:.2f}" for v in sure.values()), "")
    console.print(fp)
