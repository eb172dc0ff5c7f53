"""`kernelwright check-task`: which tasks cannot tell work from no work."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

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
def check_task(target: str, device: str | None, levels: str | None, pattern: str | None, as_json: bool,
               out_path: str | None) -> None:
    """Check TARGET (a task file, or a suite in KernelBench's layout) for degenerate tasks: outputs
    under the tolerance (all zeros pass), outputs that barely depend on the inputs or on the
    weights, and operations that can be skipped with the output still passing.

    Each task runs in a child process of its own; one that fails or does not fit is a row with
    the reason. With --json, a line per task goes to stderr as it is checked. Exit 0 once every
    task was looked at, 2 for a target that is not a task or suite.
    """
    from kernelwright.bench.suite import find_tasks
    from kernelwright.judge.verify import resolve_device
    from kernelwright.task.check import check_task as check_one
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
    results = []
    for i, (name, p) in enumerate(named):
        t0 = time.perf_counter()
        row = done.get(name)
        if row is None:
            row = check_one(p, dev, name).to_dict()
            row["device"] = dev
            if out_path:
                with open(out_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
        results.append(row)
        if as_json:
            state = "resumed" if name in done else f"{time.perf_counter() - t0:.1f} s"
            click.echo(f"[{i + 1}/{len(named)}] {name}: {', '.join(row['flags']) or row['error'][:80] or 'ok'}"
                       f" ({state})", err=True)
            continue
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
    summary = {"tasks": len(results), "flagged": sum(bool(r["flags"]) for r in results),
               "errors": sum(bool(r["error"]) for r in results), "device": dev}
    if as_json:
        rows = [{k: v for k, v in r.items() if k != "device"} for r in results]
        sys.stdout.write(json.dumps({"tasks": rows, "summary": summary}) + "\n")
    else:
        click.echo(f"{summary['tasks']} tasks checked on {dev}: {summary['flagged']} flagged, "
                   f"{summary['errors']} could not be checked")


def _done_rows(path: Path, device: str) -> dict[str, dict[str, Any]]:
    """Rows an earlier run on this device wrote to `path`, by task; a torn last line is ignored
    (that task is checked again)."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and row.get("device") == device and isinstance(row.get("task"), str):
            rows[row["task"]] = row
    return rows
