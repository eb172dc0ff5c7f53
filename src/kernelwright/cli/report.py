"""`kernelwright report`: one self-contained HTML page of a run or a bench."""

from __future__ import annotations

from pathlib import Path

import click

from kernelwright.cli.history import open_store
from kernelwright.cli.render import exit_bad_input


@click.command()
@click.argument("source")
@click.option("-o", "--output", "output", default="report.html", show_default=True,
              type=click.Path(dir_okay=False), help="The page to write.")
@click.option("--store", "store_path", default=None,
              help="SQLite store (default: $KERNELWRIGHT_STORE or ~/.local/share/kernelwright/kernelwright.db).")
def report(source: str, output: str, store_path: str | None) -> None:
    """Write one HTML page for SOURCE (a run id, or a bench's OUT folder) that opens from disk with
    no network: the tasks (sortable, with verdicts and reasons), the speedup distribution, the
    fast_p curves vs eager and vs torch.compile with the judge's intervals, the reject reasons,
    each kernel's share of the device's bandwidth, each search's lineage and the winning code
    beside the reference.
    """
    from kernelwright.task.loader import InputError

    try:
        import plotly  # noqa: F401 - the page's plots
    except ImportError:
        exit_bad_input("the report needs plotly: pip install 'kernelwright[report]'", False)
        return
    from kernelwright.report.export import write_whole
    from kernelwright.report.html import build
    try:
        with open_store(store_path) as store:
            page = build(store, source)
    except InputError as exc:
        exit_bad_input(str(exc), False)
        return
    out = Path(output)
    write_whole(out, page)
    click.echo(f"report written to {out} ({len(page) // 1024} KiB)")
