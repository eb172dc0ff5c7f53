"""`kernelwright runs` and `show`: the history of searches in the store.

Every figure printed first is the fresh re-judgement that ended the run (the crowning);
the search's own verdicts, from one long-lived judge, are always labelled "search".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich import box
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from kernelwright.cli.render import exit_bad_input, speedup_text

# Below this many columns a table squeezes every column but the id into slivers: runs are
# listed one block each instead.
_NARROW = 104


def open_store(path: str | None) -> Any:
    """The store at `path`, or the default one; its folder is created if missing."""
    from kernelwright.store import Store, default_store_path

    p = Path(path) if path else default_store_path()
    p.parent.mkdir(parents=True, exist_ok=True)
    return Store(p)


def run_row(store: Any, run: Any) -> dict[str, Any]:
    """One run's line of `runs --json`: the re-judged figures first, the search's labelled."""
    crowning = store.crowning(run.id)
    in_search = store.best(run.id)
    return {
        "run_id": run.id, "created": run.created, "status": run.status, "task": run.task_name,
        "device": run.device, "proposals": len(store.candidates(run.id)),
        "speedup_vs_eager": crowning.speedup_vs_eager if crowning else None,
        "speedup_vs_eager_interval": _pair(crowning.speedup_vs_eager_interval) if crowning else None,
        "speedup_vs_compile": crowning.speedup_vs_compile if crowning else None,
        "crowned": crowning is not None,
        "note": crowning.note if crowning else _uncrowned_note(run.status),
        "search_best_speedup_vs_eager": in_search.speedup_vs_eager if in_search else None,
    }


@click.command()
@click.option("--store", "store_path", default=None, help="SQLite store to read.")
@click.option("--limit", type=click.IntRange(1, 10000), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def runs(store_path: str | None, limit: int, as_json: bool) -> None:
    """List runs in the store, newest first.

    "speedup" is the best kernel re-judged in a fresh process when the run ended;
    "search" is the best the search itself measured (labelled, never the claim).
    """
    with open_store(store_path) as store:
        rows = [run_row(store, r) for r in store.list_runs(limit)]
    if as_json:
        sys.stdout.write(json.dumps({"runs": rows}, allow_nan=False) + "\n")
        return
    console = Console()
    if not rows:
        console.print("no runs in the store yet: start one with `kernelwright optimize TASK`")
    elif console.width < _NARROW:
        for row in rows:
            console.print(f"[bold]{row['run_id']}[/bold]", highlight=False)
            console.print(f"  {row['task']} on {row['device']}, {row['status']}, {row['created'][:16].replace('T', ' ')}, "
                          f"{row['proposals']} proposals; speedup {_speedup_cell(row)}, "
                          f"search {speedup_text(row['search_best_speedup_vs_eager'])}", highlight=False)
    else:
        console.print(_runs_table(rows))


def _runs_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    # The id is what `show` takes: it never wraps or shrinks, the other columns do.
    table.add_column("run", no_wrap=True, min_width=max(len(r["run_id"]) for r in rows))
    # Fold, never an ellipsis: a cut cell reads as a different value.
    # No "created" column: the id already starts with the run's UTC start time.
    for name in ("task", "device", "status", "proposals"):
        table.add_column(name, overflow="fold", justify="right" if name == "proposals" else "left")
    for name in ("speedup", "search"):  # figures wrapped across lines misread
        table.add_column(name, no_wrap=True, justify="right")
    for row in rows:
        table.add_row(row["run_id"], row["task"], row["device"], row["status"], str(row["proposals"]),
                      _speedup_cell(row),
                      speedup_text(row["search_best_speedup_vs_eager"]))
    return table


def _speedup_cell(row: dict[str, Any]) -> str:
    if not row["crowned"]:
        return "-"
    if row["speedup_vs_eager"] is None:
        return "none"
    return speedup_text(row["speedup_vs_eager"], row["speedup_vs_eager_interval"], compact=True)


@click.command()
@click.argument("run_id")
@click.option("--store", "store_path", default=None, help="SQLite store to read.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def show(run_id: str, store_path: str | None, as_json: bool) -> None:
    """Show one run: its best kernel (path, re-judged speedup), that kernel's lineage, verdicts by reason."""
    from kernelwright.store import UnknownRun

    with open_store(store_path) as store:
        try:
            run = store.get_run(run_id)
        except UnknownRun as exc:
            exit_bad_input(str(exc), as_json)
            return
        data = run_details(store, run)
    if as_json:
        sys.stdout.write(json.dumps(data, allow_nan=False) + "\n")
        return
    print_run(Console(), data)


def run_details(store: Any, run: Any) -> dict[str, Any]:
    """What `show --json` prints: the run, its crowning, the lineage tree, verdict counts, LLM usage."""
    crowning = store.crowning(run.id)
    in_search = store.best(run.id)
    # The lineage is the crowned kernel's; before a crowning (or when none held up), the
    # search's best, labelled as such.
    head_id = crowning.candidate_id if crowning and crowning.candidate_id else (in_search.id if in_search else None)
    return {
        "run": {k: v for k, v in run.to_dict().items() if k != "task_source"},
        "best": _crowned(crowning) if crowning else None,
        "crowned": crowning is not None,
        "note": crowning.note if crowning else _uncrowned_note(run.status),
        "search_best": _brief(in_search) if in_search else None,
        "lineage": _lineage_tree(store, head_id) if head_id else None,
        "candidates": store.counts(run.id),
        "llm": store.usage_totals(run.id).to_dict(),
    }


def print_run(console: Console, d: dict[str, Any]) -> None:
    """`show`'s text: headline (re-judged) first, then the lineage with search figures, then counts."""
    run = d["run"]
    console.print(f"[bold]{run['id']}[/bold]  {run['task_name']} on {run['device']}, {run['status']}",
                  highlight=False)
    best = d["best"]
    if best and best["path"]:
        console.print(f"best kernel: {best['path']}", highlight=False, soft_wrap=True)
        console.print("speedup vs eager (re-judged in a fresh process): "
                      + speedup_text(best["speedup_vs_eager"], best["speedup_vs_eager_interval"]), highlight=False)
        if best["speedup_vs_compile"] is not None:
            console.print("speedup vs torch.compile: "
                          + speedup_text(best["speedup_vs_compile"], best["speedup_vs_compile_interval"]),
                          highlight=False)
    else:
        console.print(f"best kernel: none ({d['note']})", highlight=False)
    for entry in (best or {}).get("rejudged", []):
        if entry.get("verdict") != "accepted" or entry.get("candidate_id") != best.get("candidate_id"):
            why = "; ".join(r.get("check", "?") for r in entry.get("reasons") or []) or "-"
            console.print(f"  finalist {entry.get('candidate_id')}: {entry.get('verdict')} "
                          f"{speedup_text(entry.get('speedup_vs_eager'))} when re-judged ({why})", highlight=False)
    if d["lineage"]:
        title = "lineage (speedups as the search measured them; each kernel made from those under it)"
        tree = Tree(title)
        _add_node(tree, d["lineage"])
        console.print(tree, highlight=False)
    counts = d["candidates"]
    console.print("verdicts: " + ", ".join(f"{k} {v}" for k, v in counts["by_verdict"].items()), highlight=False)
    console.print("reject reasons: " + (", ".join(f"{k} {v}" for k, v in counts["by_reason"].items()) or "-"),
                  highlight=False)


def _add_node(parent: Tree, node: dict[str, Any]) -> None:
    branch = parent.add(_node_label(node), highlight=False)
    if node.get("seen"):
        return
    for p in node["parents"]:
        _add_node(branch, p)


def _node_label(n: dict[str, Any]) -> str:
    what = f" {n['note']}" if n["note"] else ""
    verdict = n["verdict"] or "unjudged"
    speed = f" {speedup_text(n['speedup_vs_eager'])} (search)" if n["verdict"] == "accepted" else ""
    again = " (shown above)" if n.get("seen") else ""
    return f"{n['candidate_id']}  {n['proposer']}/{n['stage']}{what}: {verdict}{speed}{again}"


def _lineage_tree(store: Any, head_id: str) -> dict[str, Any]:
    """The kernel and its ancestors as nested dicts; a shared ancestor is expanded once."""
    records = {c.id: c for c in [store.candidate(head_id), *store.lineage(head_id)]}
    seen: set[str] = set()

    def node(cid: str) -> dict[str, Any]:
        c = records[cid]
        out = {**_brief(c), "seen": cid in seen}
        if cid not in seen:
            seen.add(cid)
            out["parents"] = [node(p) for p in c.parent_ids if p in records]
        else:
            out["parents"] = []
        return out

    return node(head_id)


def _crowned(c: Any) -> dict[str, Any]:
    return {"candidate_id": c.candidate_id, "path": c.path, "speedup_vs_eager": c.speedup_vs_eager,
            "speedup_vs_eager_interval": _pair(c.speedup_vs_eager_interval),
            "speedup_vs_compile": c.speedup_vs_compile,
            "speedup_vs_compile_interval": _pair(c.speedup_vs_compile_interval),
            "candidate_ms": c.candidate_ms, "note": c.note, "rejudged": list(c.rejudged),
            "crowned_at": c.crowned_at}


def _brief(c: Any) -> dict[str, Any]:
    return {"candidate_id": c.id, "proposer": c.proposer, "stage": c.stage, "verdict": c.verdict,
            "speedup_vs_eager": c.speedup_vs_eager, "note": c.note, "parents": list(c.parent_ids)}


def _uncrowned_note(status: str) -> str:
    if status == "running":
        return "the run has not ended yet: nothing re-judged so far"
    if status == "finished":
        return "no re-judgement recorded (a run from before kernelwright kept them)"
    return f"the run is {status} and nothing was re-judged; continue it with `optimize --resume RUN`"


def _pair(interval: Any) -> list[float] | None:
    return None if interval is None else [float(v) for v in interval]
