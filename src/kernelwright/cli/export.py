"""`kernelwright export`: every judged kernel of a run or a bench, one row each; or the winners as a package."""

from __future__ import annotations

from pathlib import Path

import click

from kernelwright.cli.history import open_store
from kernelwright.cli.render import exit_bad_input


@click.command()
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True,
              help="jsonl: one JSON object a line; parquet: one table (needs kernelwright[parquet]).")
@click.option("-o", "--output", "output", default=None, type=click.Path(dir_okay=False),
              help="The file to write (replaced whole, never left half-written).")
@click.option("--as-module", "as_module", default=None, type=click.Path(file_okay=False),
              help="Instead: write each task's winning kernel into this folder as an importable package.")
@click.option("--store", "store_path", default=None,
              help="SQLite store (default: $KERNELWRIGHT_STORE or ~/.local/share/kernelwright/kernelwright.db).")
def export(source: str, fmt: str, output: str | None, as_module: str | None, store_path: str | None) -> None:
    """Write one row per judged kernel of SOURCE: a run id (`kernelwright runs`), or a bench's
    OUT folder (its results.jsonl; the kernels' code comes from the store the bench wrote to).

    Each row has the task (id, name, level), the kernel's and the reference's code, the verdict
    and its reasons, the largest error over the trials, the times and speedups with their 95%
    intervals, the proposer, the judge's profile summary, the environment and the lineage parent.

    With --as-module DIR: each task's winning kernel (a search's crowned one, else the fastest
    accepted) as a package, one nn.Module per task that checks its inputs against what was
    verified and otherwise runs the task's own Model.
    """
    from kernelwright.report import ExportFormat, rows_for, write
    from kernelwright.report.export import run_ids_of
    from kernelwright.report.module import winners, write_package
    from kernelwright.task.loader import InputError

    if (output is None) == (as_module is None):
        exit_bad_input("give -o FILE, or --as-module DIR", False)
    try:
        with open_store(store_path) as store:
            if as_module is not None:
                names = write_package(winners(store, run_ids_of(store, source)), Path(as_module))
            else:
                rows = rows_for(store, source)
        if output is not None:
            write(rows, Path(output), ExportFormat(fmt))
    except InputError as exc:
        exit_bad_input(str(exc), False)
        return
    if as_module is not None:
        folder = Path(as_module)
        click.echo(f"{len(names)} kernels in {folder}: " + ", ".join(c for _, c in names))
        click.echo(f"use: import sys; sys.path.insert(0, {str(folder.resolve().parent)!r}); "
                   f"from {folder.name} import {names[0][1]}")
    else:
        click.echo(f"{len(rows)} kernels written to {output} ({fmt})")
