"""Readable summaries of verdicts for the terminal."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from kernelwright import constants as C
from kernelwright.judge.result import JudgeResult, TimingStats, is_tie


def _ms(t: TimingStats | None) -> str:
    if t is None:
        return "-"
    return f"{t.median:.4f} ms (±{t.spread * 100:.1f}%, {t.count} calls)"


def _bound(t: TimingStats | None) -> str:
    # The least per-call time the judge's own clock allows: the charged time is never below it.
    if t is None or t.clock_bound is None:
        return "-"
    return f">= {t.clock_bound:.4f} ms"


def print_verdict(result: JudgeResult, console: Console | None = None) -> None:
    """A short summary: verdict, reasons, errors, timings and findings."""
    console = console or Console()
    style = "bold green" if result.accepted else "bold red"
    console.print(f"[{style}]{result.verdict.upper()}[/{style}]  "
                  f"on {result.environment.get('gpu') or result.environment.get('device', '?')}")
    for r in result.reasons:
        console.print(f"  [red]{r.check}[/red]: {r.detail}", markup=True, highlight=False)
    if result.correctness:
        worst = max(result.correctness, key=lambda t: t.max_rel_error if t.max_rel_error == t.max_rel_error else 0)
        console.print(f"  correctness: {sum(t.passed for t in result.correctness)}/{len(result.correctness)} "
                      f"trials passed; worst error {worst.max_rel_error:.2e} of the output's scale")
    t = result.timing
    if t is not None:
        table = Table(show_header=True, header_style="bold")
        table.add_column("")
        table.add_column("per call")
        table.add_column("judge's clock allows")
        table.add_column("speedup")
        table.add_row("candidate", _ms(t.candidate_ms), _bound(t.candidate_ms), "")
        table.add_row("eager", _ms(t.eager_ms), _bound(t.eager_ms),
                      speedup_text(t.speedup_vs_eager, getattr(t, "speedup_vs_eager_interval", None)))
        table.add_row("torch.compile", _ms(t.compile_ms), _bound(t.compile_ms),
                      speedup_text(t.speedup_vs_compile, getattr(t, "speedup_vs_compile_interval", None)))
        console.print(table)
        if t.profile_busy_ms is not None:
            console.print(f"  GPU busy in one profiled call: {t.profile_busy_ms:.4f} ms, every stream (the time "
                          f"charged may not be under {C.PROFILE_BOUND_SAFETY:g}x this)", highlight=False)
        if getattr(t, "rounds", 0):
            console.print(f"  timing: {t.rounds} rounds, each one batch of every side in a random order; "
                          "the speedup is the median of the rounds' ratios", highlight=False)
    for f in result.findings:
        console.print(f"  - {f}", highlight=False, markup=False)


def speedup_text(value: float | None, interval: Any = None, compact: bool = False) -> str:
    """"1.49x", or "1.49x (95% interval 1.41-1.57x)" ("1.49x [1.41-1.57]" compact) with an interval.

    An interval that holds 1.00x reads as a tie first ("tie: 0.97x (95% interval 0.84-1.12x)",
    "tie 0.97x [0.84-1.12]"): the point estimate of a tie is noise, and a reader skimming a
    column of speedups must not take it for a claim either way.
    """
    if value is None:
        return "-"
    if interval is None:
        return f"{value:.2f}x"
    low, high = interval
    tie = is_tie(interval)
    if compact:
        return ("tie " if tie else "") + f"{value:.2f}x [{low:.2f}-{high:.2f}]"
    return ("tie: " if tie else "") + f"{value:.2f}x (95% interval {low:.2f}-{high:.2f}x)"


def exit_bad_input(message: str, as_json: bool, **payload: Any) -> None:
    """Exit 2 with one sentence on stderr and, with --json, one object ({..., "error": message})."""
    if as_json:
        sys.stdout.write(json.dumps({**payload, "error": message}) + "\n")
    click.echo(f"error: {message}", err=True)
    sys.exit(C.ExitCode.BAD_INPUT)
