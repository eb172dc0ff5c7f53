"""`kernelwright verify TASK CAND1 CAND2 ...`: several candidates of one task, on an executor.

Each candidate gets the same verdict as `verify TASK CAND` alone: the executor (the local
slots or a Ray cluster, kernelwright.executor) runs that same judge on each file.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from kernelwright import constants as C
from kernelwright.bench.suite import SuiteTask
from kernelwright.cli._interrupt import interruptible
from kernelwright.cli.render import exit_bad_input, speedup_text
from kernelwright.executor import JudgeJob, JudgeOutcome, get_executor
from kernelwright.judge.verify import VerifyOptions, resolve_device


def verify_many(task: Path, candidates: list[Path], opts: VerifyOptions, executor: str, ray_address: str | None,
                slots: int | None, as_json: bool) -> None:
    """Judge every candidate against `task` on `executor`, print each verdict, and exit.

    Exit 0: all accepted. Exit 1: one rejected (or failed). Exit 2: the task or a file is wrong
    (a bad task is every candidate's `error`).
    """
    from kernelwright.task import InputError

    try:
        device = resolve_device(opts.device)
        jobs = _jobs(task, candidates)
        with interruptible():
            outcomes = dict(get_executor(executor, ray_address, slots).judge(jobs, device, replace(opts, device=device)))
    except InputError as exc:
        exit_bad_input(str(exc), as_json)
        return
    except KeyboardInterrupt:
        click.echo("interrupted: no verdict", err=True)
        sys.exit(130)
    entries = [_entry(job, outcomes[job]) for job in jobs]
    counts = {v: sum(e["verdict"] == v for e in entries) for v in ("accepted", "rejected", "error")}
    if as_json:
        sys.stdout.write(json.dumps({"candidates": entries, "summary": counts}, allow_nan=False) + "\n")
    else:
        for e in entries:
            click.echo(_line(e))
        click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
    if counts["error"] == len(entries):
        sys.exit(C.ExitCode.BAD_INPUT)
    sys.exit(C.ExitCode.ACCEPTED if counts["accepted"] == len(entries) else C.ExitCode.REJECTED)


def _jobs(task: Path, candidates: list[Path]) -> list[JudgeJob]:
    from kernelwright.task import InputError

    for path in (task, *candidates):
        if not path.is_file():
            raise InputError(f"{path} is not a file")
    suite_task = SuiteTask(name=task.name, path=task, level=0, number=0)
    task_source = task.read_text(errors="replace")
    # A job's key only tells the executor's jobs apart here: nothing is resumed.
    return [JudgeJob(i, suite_task, task_source, c, str(c), c.read_text(errors="replace"), str(i))
            for i, c in enumerate(candidates)]


def _entry(job: JudgeJob, out: JudgeOutcome) -> dict[str, Any]:
    """A candidate's part of the output: its verdict as `verify --json` prints it, or the error."""
    return {"candidate": job.rel, **out.verdict_or_error()}


def _line(e: dict[str, Any]) -> str:
    t = e.get("timing") or {}
    why = f"  {e['reasons'][0]['check']}: {e['reasons'][0]['detail']}"[:200] if e.get("reasons") else ""
    fast = f"  {speedup_text(t.get('speedup_vs_eager'), t.get('speedup_vs_eager_interval'))} vs eager" if t else ""
    return f"{e['candidate']}: {e['verdict'].upper()}{fast}{why}"
