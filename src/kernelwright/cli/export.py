"""`kernelwright export`: every judged kernel of a run or a bench, one row each."""

from __future__ import annotations

from pathlib import Path

import click

from kernelwright.cli.history import open_store
from kernelwright.cli.render import exit_bad_input


@click.command()
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True,
              help="jsonl: one JSON object a line; parquet: one table (needs kernelwright[parquet]).")
@click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False),
              help="The file to write (replaced whole, never left half-written).")
@click.option("--store", "store_path", default=None,
              help="SQLite store (default: $KERNELWRIGHT_STORE or ~/.local/share/kernelwright/kernelwright.db).")
def export(source: str, fmt: str, output: str, store_path: str | None) -> None:
    """Write one row per judged kernel of SOURCE: a run id (`kernelwright runs`), or a bench's
    OUT folder (its results.jsonl; the kernels' code comes from the store the bench wrote to).

    Each row has the task (id, name, level), the kernel's and the reference's code, the verdict
    and its reasons, the largest error over the trials, the times and speedups with their 95%
    intervals, the proposer, the judge's profile summary, the environment and the lineage parent.
    """
    from kernelwright.report import ExportFormat, rows_for, write
    from kernelwright.task.loader import InputError

    try:
        with open_store(store_path) as store:
            rows = rows_for(store, source)
        write(rows, Path(output), ExportFormat(fmt))
    except InputError as exc:
        exit_bad_input(str(exc), False)
    click.echo(f"{len(rows)} kernels written to {output} ({fmt})")
