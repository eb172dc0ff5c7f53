"""`kernelwright check-task`: which tasks cannot tell work from no work."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Iterator

import click

from kernelwright.cli.render import exit_bad_input


@click.command("check-task")
@click.argument("target", type=click.Path(exists=True))
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where to run the tasks (default: cuda when available, else cpu).")
@click.option("--levels", default=None, help="A suite's levels, e.g. 1,2 (default: all).")
@click.option("--tasks", "pattern", default=None, help="A glob on a suite's task names or file names.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="A JSON-lines file each task's row is appended to as it is checked; tasks already "
                   "in it are not checked again (an interrupted run resumes where it stopped).")
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Tasks checked at once, each in its own process (nothing is timed, so they may share "
                   "the device); a task that ran out of memory beside others is checked again alone.")
def check_task(target: str, device: str | None, levels: str | None, pattern: str | None, as_json: bool,
               out_path: str | None, jobs: int) -> None:
    """Check TARGET (a task file, or a suite in KernelBench's layout) for degenerate tasks: outputs
    under the tolerance (all zeros pass), outputs that barely depend on the inputs or on the
    weights, and operations that can be skipped with the output still passing.

    Each task runs in a child process of its own; one that fails or does not fit is a row with
    the reason. With --json, a line per task goes to stderr as it is checked. Exit 0 once every
    task was looked at, 2 for a target that is not a task or suite.
    """
    from kernelwright.bench.suite import find_tasks
    from kernelwright.judge.verify import resolve_device
    from kernelwright.task.loader import InputError

    dev = resolve_device(device)
    path = Path(target)
    try:
        if path.is_dir():
            lv = {int(x) for x in levels.split(",")} if levels else None
            named = [(t.name, t.path) for t in find_tasks(path, lv, pattern)]
        else:
            named = [(str(path), path)]
    except (InputError, ValueError) as exc:
        exit_bad_input(str(exc), as_json)
        return
    if not named:
        exit_bad_input(f"no task in {path} matches the selection", as_json)
    done = _done_rows(Path(out_path), dev) if out_path else {}
    todo = [(name, p) for name, p in named if name not in done]
    rows: dict[str, dict[str, Any]] = {}

    def show(name: str, row: dict[str, Any], state: str) -> None:
        rows[name] = row
        if as_json:  # progress on stderr, so that stdout stays one object
            click.echo(f"[{len(rows)}/{len(named)}] {name}: {', '.join(row['flags']) or row['error'][:80] or 'ok'}"
                       f" ({state})", err=True)
        else:
            _print_row(name, row)

    for name, _ in named:
        if name in done:
            show(name, done[name], "resumed")
    for name, row, seconds in _check_all(todo, dev, jobs):
        row["device"] = dev
        if out_path:
            with open(out_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        show(name, row, f"{seconds:.1f} s")
    results = [rows[name] for name, _ in named]
    summary = {"tasks": len(results), "flagged": sum(bool(r["flags"]) for r in results),
               "errors": sum(bool(r["error"]) for r in results), "device": dev}
    if as_json:
        tasks = [{k: v for k, v in r.items() if k != "device"} for r in results]
        sys.stdout.write(json.dumps({"tasks": tasks, "summary": summary}) + "\n")
    else:
        click.echo(f"{summary['tasks']} tasks checked on {dev}: {summary['flagged']} flagged, "
                   f"{summary['errors']} could not be checked")


def _check_all(todo: list[tuple[str, Path]], device: str, jobs: int) -> Iterator[tuple[str, dict[str, Any], float]]:
    """Check each task in its own child process, `jobs` at a time; yield (name, row, seconds) as
    each finishes. A task that ran out of memory while others ran beside it is checked again,
    alone, once the rest are done (its first row is not kept)."""
    from kernelwright.task.check import check_task as check_one

    def one(name: str, p: Path) -> tuple[str, dict[str, Any], float]:
        t0 = time.perf_counter()
        return name, check_one(p, device, name).to_dict(), time.perf_counter() - t0

    again: list[tuple[str, Path]] = []
    with ThreadPoolExecutor(jobs) as ex:
        futures = {ex.submit(one, name, p): (name, p) for name, p in todo}
        for fut in as_completed(futures):
            name, row, seconds = fut.result()
            if jobs > 1 and _out_of_memory(row["error"]):
                again.append(futures[fut])
                continue
            yield name, row, seconds
    for name, p in again:
        yield one(name, p)


def _out_of_memory(error: str) -> bool:
    """A check process's error that says the device or the host ran out of memory."""
    low = error.lower()
    return any(m in low for m in ("out of memory", "outofmemory", "memoryerror", "can't allocate memory",
                                   "killed by signal 9"))


def _print_row(name: str, row: dict[str, Any]) -> None:
    """One task's row as text."""
    if row["error"]:
        click.echo(f"{name}: not checked: {row['error']}")
    elif row["flags"]:
        click.echo(f"{name}: {', '.join(row['flags'])}")
        for d in row["details"]:
            click.echo(f"  - {d}")
    else:
        click.echo(f"{name}: ok")
    for n in row["notes"]:
        click.echo(f"  note: {n}")


def _done_rows(path: Path, device: str) -> dict[str, dict[str, Any]]:
    """Rows an earlier run on this device wrote to `path`, by task; a torn last line is ignored
    (that task is checked again)."""
    from kernelwright.task.check import read_rows

    return read_rows(path, device) if path.exists() else {}
