"""KernelBench's figures over a bench's records: correctness, fast_p, geometric means.

fast_p (KernelBench's definition): the share of *all* tasks in the selection whose
candidate is correct and more than p times faster than the baseline. A task with several
candidates counts once, by its fastest accepted one; a task without any counts as not
correct. kernelwright also gives `fast_p_sure`, which counts a task only when the low end
of the speedup's 95% interval clears p: a 1.02x tie inside +-5% noise is fast_1 by
KernelBench's rule and not by this one.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kernelwright.bench.records import BenchRow, Verdict

P_VALUES = (0.0, 1.0, 1.5, 2.0)
BASELINES = ("eager", "compile")


@dataclass(frozen=True)
class TaskOutcome:
    """A task's result: its best candidate's record, or the reason it has none that passed."""

    task: str
    verdict: Verdict
    row: BenchRow | None  # the record that decided it (None: no candidate)
    candidates: int  # how many were judged


def outcomes(task_names: list[str], rows: list[BenchRow]) -> list[TaskOutcome]:
    """One outcome per task, in `task_names` order: its fastest accepted record, else its first one."""
    by_task: dict[str, list[BenchRow]] = {}
    for r in rows:
        if r.verdict != Verdict.MISSING:
            by_task.setdefault(r.task, []).append(r)
    out = []
    for name in task_names:
        mine = by_task.get(name, [])
        accepted = [r for r in mine if r.accepted]
        if accepted:
            best = max(accepted, key=lambda r: r.speedup_vs_eager if r.speedup_vs_eager is not None else -1.0)
            out.append(TaskOutcome(name, Verdict.ACCEPTED, best, len(mine)))
        elif mine:
            out.append(TaskOutcome(name, mine[0].verdict, mine[0], len(mine)))
        else:
            out.append(TaskOutcome(name, Verdict.MISSING, None, 0))
    return out


def _speedup(row: BenchRow, baseline: str, sure: bool) -> float | None:
    if sure:
        interval = row.eager_interval if baseline == "eager" else row.compile_interval
        return interval[0] if interval else None
    return row.speedup_vs_eager if baseline == "eager" else row.speedup_vs_compile


def fast_p(outs: list[TaskOutcome], p: float, baseline: str = "eager", sure: bool = False) -> float:
    """The share of all tasks correct and more than p times faster than `baseline`."""
    if not outs:
        return 0.0
    hits = 0
    for o in outs:
        if o.verdict != Verdict.ACCEPTED or o.row is None:
            continue
        s = _speedup(o.row, baseline, sure)
        if p == 0.0 and not sure:
            hits += 1  # fast_0 is the correctness rate, timed or not
        elif s is not None and s > p:
            hits += 1
    return hits / len(outs)


def geomean(values: list[float]) -> float | None:
    """The geometric mean of positive values (None when there are none)."""
    vals = [v for v in values if v is not None and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


@dataclass(frozen=True)
class Summary:
    """A bench's headline figures."""

    tasks: int  # in the selection
    candidates: int  # judged (every record but "missing")
    correct: int  # tasks with an accepted candidate
    correctness_rate: float  # correct / tasks
    errors: int  # tasks whose every record is an error (the task, not the candidate)
    missing: int  # tasks without a candidate
    reasons: dict[str, int]  # first reason of each rejected or error record, by check
    # baseline -> p -> share; a baseline no correct task was timed against (--no-compile-baseline,
    # --no-timing) is None rather than a row of zeros that would read as "measured, never faster".
    fast_p: dict[str, dict[str, float] | None] = field(default_factory=dict)
    fast_p_sure: dict[str, dict[str, float] | None] = field(default_factory=dict)  # by the interval's low end
    geomean_vs_eager: float | None = None  # over correct tasks that were timed
    geomean_vs_compile: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for --json."""
        from dataclasses import asdict

        return asdict(self)


def summarize(task_names: list[str], rows: list[BenchRow]) -> Summary:
    """The summary over the selected tasks' records."""
    outs = outcomes(task_names, rows)
    judged = [r for r in rows if r.verdict != Verdict.MISSING and r.task in set(task_names)]
    reasons = Counter(str(r.reasons[0]["check"]) for r in judged if not r.accepted and r.reasons)
    correct = [o for o in outs if o.verdict == Verdict.ACCEPTED and o.row is not None]
    timed = {b: any(_speedup(o.row, b, False) is not None for o in correct) for b in BASELINES}
    return Summary(
        tasks=len(outs), candidates=len(judged), correct=len(correct),
        correctness_rate=len(correct) / len(outs) if outs else 0.0,
        errors=sum(o.verdict == Verdict.ERROR for o in outs), missing=sum(o.verdict == Verdict.MISSING for o in outs),
        reasons=dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        fast_p={b: {f"{p:g}": fast_p(outs, p, b) for p in P_VALUES} if timed[b] else None for b in BASELINES},
        fast_p_sure={b: {f"{p:g}": fast_p(outs, p, b, sure=True) for p in P_VALUES if p > 0} if timed[b] else None
                     for b in BASELINES},
        geomean_vs_eager=geomean([o.row.speedup_vs_eager for o in correct if o.row.speedup_vs_eager]),
        geomean_vs_compile=geomean([o.row.speedup_vs_compile for o in correct if o.row.speedup_vs_compile]),
    )
