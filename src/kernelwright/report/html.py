"""`kernelwright report`: one self-contained HTML page of a run or a bench.

Everything is inlined (plotly.js, the styles, the highlighted code), so the page opens from
disk with no network. Every figure on it comes from the store's verdicts (report/export.py's
rows); a task's figure is its best accepted kernel's, with the judge's 95% interval.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelwright.bench.records import degenerate
from kernelwright.judge.result import is_tie
from kernelwright.report.export import ExportRow, rows_for, run_ids_of
from kernelwright.store import Store
from kernelwright.task.loader import InputError

FAST_P_POINTS = 60  # points of the fast_p curve


@dataclass(frozen=True)
class TaskSummary:
    """One task's line: its best accepted kernel, or why none was accepted."""

    task_id: str
    verdict: str  # accepted when any kernel was
    kernels: int  # judged for it
    best: ExportRow | None  # the accepted kernel with the highest speedup vs eager
    reason: str  # the first reason of its first rejected kernel when none was accepted
    degenerate: tuple[str, ...] = ()  # what the judge found degenerate about the task, once each


def summarize(rows: list[ExportRow]) -> list[TaskSummary]:
    """Per task, in the order tasks first appear."""
    by_task: dict[str, list[ExportRow]] = {}
    for r in rows:
        by_task.setdefault(r.task_id, []).append(r)
    out = []
    for task, rs in by_task.items():
        accepted = [r for r in rs if r.correct]
        best = max(accepted, key=lambda r: r.speedup_vs_eager or 0.0) if accepted else None
        reason = "" if best else next((r.error for r in rs if r.error), "") or ""
        weak = tuple(degenerate(f for r in rs for f in r.findings))
        out.append(TaskSummary(task, "accepted" if best else rs[0].verdict, len(rs), best, reason, weak))
    return out


def fast_p(tasks: list[TaskSummary], ps: list[float], key: str, which: int | None = None) -> list[float]:
    """KernelBench's fast_p at each p: the share of all tasks correct and more than p times faster.

    `key` is speedup_vs_eager or speedup_vs_compile; `which` 0 or 1 takes the low or high end of
    the judge's interval instead of the point figure (a task without an interval keeps its point)."""
    def speed(t: TaskSummary) -> float | None:
        if t.best is None:
            return None
        point = getattr(t.best, key)
        iv = getattr(t.best, key + "_interval")
        return iv[which] if which is not None and iv else point

    n = len(tasks) or 1
    return [sum(1 for t in tasks if (s := speed(t)) is not None and s > p) / n for p in ps]


def build(store: Store, source: str) -> str:
    """The whole page for a run id or a bench's OUT folder. Raises InputError for nothing to show."""
    rows = rows_for(store, source)
    if not rows:
        raise InputError(f"{source} has no judged kernel to report")
    tasks = _with_task_checks(summarize(rows), source)
    lineages = [_lineage(store, rid) for rid in run_ids_of(store, source)]
    return _page(source, rows, tasks, lineages)


def _with_task_checks(tasks: list[TaskSummary], source: str) -> list[TaskSummary]:
    """Add the flags check-task found (a bench run with --task-checks keeps them in its OUT)."""
    from kernelwright.bench import records as R
    from kernelwright.task.check import TASK_CHECKS_FILE, flag_words, read_rows

    out = Path(source)
    if out.name == R.RESULTS:
        out = out.parent
    kept = out / TASK_CHECKS_FILE
    if not kept.is_file():
        return tasks
    checks = read_rows(kept)
    return [dataclasses.replace(t, degenerate=t.degenerate + tuple(flag_words(checks[t.task_id])))
            if t.task_id in checks else t for t in tasks]


# -- the figures ------------------------------------------------------------------------


def _figures(rows: list[ExportRow], tasks: list[TaskSummary]) -> list[tuple[str, dict[str, Any]]]:
    speeds = [r.speedup_vs_eager for r in rows if r.correct and r.speedup_vs_eager]
    top = max([2.0] + [s * 1.1 for s in speeds])
    ps = [top * i / (FAST_P_POINTS - 1) for i in range(FAST_P_POINTS)]
    curves: list[dict[str, Any]] = []
    for key, name, color in (("speedup_vs_eager", "vs eager", "#1f77b4"), ("speedup_vs_compile", "vs torch.compile",
                                                                          "#ff7f0e")):
        if not any(t.best is not None and getattr(t.best, key) for t in tasks):
            continue
        lo, hi = fast_p(tasks, ps, key, 0), fast_p(tasks, ps, key, 1)
        curves += [{"x": ps, "y": hi, "mode": "lines", "line": {"width": 0, "color": color}, "showlegend": False,
                    "hoverinfo": "skip", "name": f"{name} (interval high)"},
                   {"x": ps, "y": lo, "mode": "lines", "line": {"width": 0, "color": color}, "fill": "tonexty",
                    "opacity": 0.25, "name": f"{name}, 95% intervals", "hoverinfo": "skip"},
                   {"x": ps, "y": fast_p(tasks, ps, key), "mode": "lines", "line": {"color": color}, "name": name}]
    reasons = Counter((r.reasons[0]["check"] if r.reasons else "?") for r in rows if not r.correct)
    timed = [r for r in rows if r.correct and r.floor_ms and r.kernel_ms]
    # A FLOP share above 1 is a kernel doing less arithmetic than the reference (verified: an
    # algorithmic change), so this axis is not capped at the ceiling.
    flopped = [r for r in rows if r.correct and r.flop_floor_ms and r.kernel_ms]
    figs = [
        ("Speedups of the accepted kernels (vs eager)",
         {"data": [{"type": "histogram", "x": speeds, "nbinsx": 30, "name": "kernels"}],
          "layout": {"xaxis": {"title": {"text": "speedup vs eager (x)"}},
                     "yaxis": {"title": {"text": "kernels"}}}}),
        ("fast_p: the share of tasks correct and more than p times faster",
         {"data": curves, "layout": {"xaxis": {"title": {"text": "p"}},
                                     "yaxis": {"title": {"text": "fast_p"}, "range": [0, 1.02]}}}),
        ("Reject reasons (first reason of each rejected kernel)",
         {"data": [{"type": "bar", "x": list(reasons), "y": list(reasons.values())}],
          "layout": {"yaxis": {"title": {"text": "kernels"}}}}),
        ("Roofline: each accepted kernel's time against the device's measured ceilings",
         {"data": [{"type": "scatter", "mode": "markers", "x": [r.kernel_ms for r in timed],
                    "y": [r.floor_ms / r.kernel_ms for r in timed],
                    "text": [f"{r.task_id} {r.candidate_id}" for r in timed],
                    "name": "bandwidth: bytes floor / time"},
                   {"type": "scatter", "mode": "markers", "marker": {"symbol": "diamond"},
                    "x": [r.kernel_ms for r in flopped], "y": [r.flop_floor_ms / r.kernel_ms for r in flopped],
                    "text": [f"{r.task_id} {r.candidate_id}" for r in flopped],
                    "name": "arithmetic: FLOP floor / time"}],
          "layout": {"xaxis": {"title": {"text": "time per call (ms)"}, "type": "log"},
                     "yaxis": {"title": {"text": "share of the ceiling (1 = the ceiling)"}, "type": "log"}}}),
    ]
    return figs


# -- the page ---------------------------------------------------------------------------


def _lineage(store: Store, run_id: str) -> tuple[str, str]:
    """A run's search as nested lists: each kernel under the one it came from, with its speedup."""
    run = store.get_run(run_id)
    cands = [c for c in store.candidates(run_id) if c.source is not None]
    ids = {c.id for c in cands}
    children: dict[str | None, list[Any]] = {}
    for c in cands:
        parent = next((p for p in c.parent_ids if p in ids), None)
        children.setdefault(parent, []).append(c)

    def items(parent: str | None) -> str:
        out = []
        for c in children.get(parent, []):
            speed = f"{c.speedup_vs_eager:.2f}x" if c.speedup_vs_eager else (c.first_reason_check or c.verdict or "-")
            out.append(f"<li><code>{html.escape(c.id)}</code> {html.escape(c.proposer)} {html.escape(c.stage)}: "
                       f"<b>{html.escape(str(speed))}</b>{items(c.id)}</li>")
        return f"<ul>{''.join(out)}</ul>" if out else ""

    return run.task_name, items(None)


# What an empty figure says instead, in _figures' order.
_EMPTY = ("No kernel was accepted.", "No task has an accepted kernel.", "No kernel was rejected.",
          "No accepted kernel's verdict has a bytes or FLOP floor (timing.floor_ms, timing.flop_floor_ms) to set "
          "its time against.")


def _has_data(fig: dict[str, Any]) -> bool:
    return any(len(trace.get("x") or []) and len(trace.get("y", trace.get("x")) or []) for trace in fig["data"])


def _code(source: str) -> str:
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # plain text is still the code
        return f"<pre>{html.escape(source)}</pre>"
    return str(highlight(source, PythonLexer(), HtmlFormatter(noclasses=True, nobackground=True)))


def _iv(iv: list[float] | None) -> str:
    return (f" ({iv[0]:.2f}-{iv[1]:.2f}x)" + (" tie" if is_tie(iv) else "")) if iv else ""


def _page(source: str, rows: list[ExportRow], tasks: list[TaskSummary], lineages: list[tuple[str, str]]) -> str:
    import plotly.offline

    correct = sum(t.best is not None for t in tasks)
    table = "".join(
        f"<tr><td>{html.escape(t.task_id)}</td><td>{html.escape(t.verdict)}</td><td>{t.kernels}</td>"
        f"<td data-v='{(t.best.speedup_vs_eager or 0) if t.best else -1}'>"
        f"{f'{t.best.speedup_vs_eager:.2f}x' + _iv(t.best.speedup_vs_eager_interval) if t.best and t.best.speedup_vs_eager else '-'}</td>"
        f"<td data-v='{(t.best.speedup_vs_compile or 0) if t.best else -1}'>"
        f"{f'{t.best.speedup_vs_compile:.2f}x' + _iv(t.best.speedup_vs_compile_interval) if t.best and t.best.speedup_vs_compile else '-'}</td>"
        f"<td>{html.escape(t.reason[:300])}</td><td>{html.escape('; '.join(t.degenerate))}</td></tr>" for t in tasks)
    plots = "".join(
        f"<h2>{html.escape(title)}</h2><div class='plot' id='fig{i}'></div>"
        f"<script>Plotly.newPlot('fig{i}', {json.dumps(fig['data'])}, "
        f"{json.dumps({**fig['layout'], 'margin': {'t': 20}})}, {{responsive: true}});</script>"
        if _has_data(fig) else f"<h2>{html.escape(title)}</h2><p class='empty'>{html.escape(_EMPTY[i])}</p>"
        for i, (title, fig) in enumerate(_figures(rows, tasks)))
    trees = "".join(f"<details><summary>{html.escape(name)}</summary>{tree or '<p>no kernels</p>'}</details>"
                    for name, tree in lineages)
    code = "".join(
        f"<details><summary>{html.escape(t.task_id)}: {t.best.speedup_vs_eager or 0:.2f}x by "
        f"{html.escape(t.best.proposer)}</summary><div class='pair'><div><h3>kernel</h3>"
        f"{_code(t.best.kernel_code or '')}</div><div><h3>reference</h3>{_code(t.best.reference_code)}</div></div>"
        "</details>" for t in tasks if t.best is not None)
    return _TEMPLATE.format(
        title=html.escape(f"kernelwright report: {source}"), plotly=plotly.offline.get_plotlyjs(),
        summary=html.escape(f"{len(tasks)} tasks, {correct} with an accepted kernel; {len(rows)} kernels judged"),
        table=table, plots=plots, trees=trees, code=code)


_TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<script>window.kwErrors = 0; window.addEventListener('error', function () {{ window.kwErrors += 1; }});</script>
<script>{plotly}</script>
<style>
body {{ font-family: sans-serif; margin: 2em; }} table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }} th {{ cursor: pointer; background: #eee; }}
.plot {{ width: 100%; max-width: 900px; height: 360px; }} .pair {{ display: flex; gap: 1em; }}
.pair > div {{ flex: 1; overflow: auto; }}
</style></head><body>
<h1>{title}</h1><p>{summary}. Every figure is the judge's verdict as the store holds it; a
task's speedup is its best accepted kernel's, with the judge's 95% interval.</p>
<h2>Tasks</h2>
<table id="tasks"><thead><tr><th>task</th><th>verdict</th><th>kernels</th><th>speedup vs eager</th>
<th>vs torch.compile</th><th>why not accepted</th><th>degenerate task</th></tr></thead><tbody>{table}</tbody></table>
{plots}
<h2>Searches: each kernel under the one it came from</h2>{trees}
<h2>Winning kernels beside their references</h2>{code}
<script>
document.querySelectorAll('#tasks th').forEach(function (th, col) {{
  th.addEventListener('click', function () {{
    var body = document.querySelector('#tasks tbody'), rows = Array.from(body.rows);
    var asc = th.dataset.asc !== '1'; th.dataset.asc = asc ? '1' : '0';
    rows.sort(function (a, b) {{
      var x = a.cells[col], y = b.cells[col];
      var u = x.dataset.v !== undefined ? parseFloat(x.dataset.v) : x.textContent;
      var v = y.dataset.v !== undefined ? parseFloat(y.dataset.v) : y.textContent;
      return (u > v ? 1 : u < v ? -1 : 0) * (asc ? 1 : -1);
    }});
    rows.forEach(function (r) {{ body.appendChild(r); }});
  }});
}});
window.addEventListener('load', function () {{
  document.body.dataset.plots = document.querySelectorAll('.plot .main-svg').length;
  document.body.dataset.errors = window.kwErrors;
}});
</script>
</body></html>
"""
