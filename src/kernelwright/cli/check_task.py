"""`kernelwright check-task`: which tasks cannot tell work from no work."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from kernelwright.cli.render import exit_bad_input


@click.command("check-task")
@click.argument("target", type=click.Path(exists=True))
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where to run the tasks (default: cuda when available, else cpu).")
@click.option("--levels", default=None, help="A suite's levels, e.g. 1,2 (default: all).")
@click.option("--tasks", "pattern", default=None, help="A glob on a suite's task names or file names.")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
def check_task(target: str, device: str | None, levels: str | None, pattern: str | None, as_json: bool) -> None:
    """Check TARGET (a task file, or a suite in KernelBench's layout) for degenerate tasks: outputs
    under the tolerance (all zeros pass), outputs that barely depend on the inputs or on the
    weights, and operations that can be skipped with the output still passing.

    Each task runs in a child process of its own; one that fails or does not fit is a row with
    the reason. Exit 0 once every task was looked at, 2 for a target that is not a task or suite.
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
    results = []
    for name, p in named:
        c = check_one(p, dev, name)
        results.append(c)
        if not as_json:
            if c.error:
                click.echo(f"{name}: not checked: {c.error}")
            elif c.flags:
                click.echo(f"{name}: {', '.join(str(f) for f in c.flags)}")
                for d in c.details:
                    click.echo(f"  - {d}")
            else:
                click.echo(f"{name}: ok")
            for n in c.notes:
                click.echo(f"  note: {n}")
    summary = {"tasks": len(results), "flagged": sum(bool(c.flags) for c in results),
               "errors": sum(bool(c.error) for c in results), "device": dev}
    if as_json:
        sys.stdout.write(json.dumps({"tasks": [c.to_dict() for c in results], "summary": summary}) + "\n")
    else:
        click.echo(f"{summary['tasks']} tasks checked on {dev}: {summary['flagged']} flagged, "
                   f"{summary['errors']} could not be checked")
