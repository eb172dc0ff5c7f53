"""The live view of a search: proposals, verdicts by reason, best speedup so far."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kernelwright.search.loop import Event

RECENT = 8  # lines of recent verdicts shown


class LiveView:
    """Collects search events (from any thread) and renders them with rich."""

    def __init__(self, console: Console, task_name: str, budget: int) -> None:
        self.console, self.task_name, self.budget = console, task_name, budget
        self._lock = threading.Lock()
        self.proposed = 0
        self.verdicts: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self.best: float | None = None
        self.recent: list[str] = []
        self.t0 = time.monotonic()
        self._live: Live | None = None

    def __enter__(self) -> LiveView:
        self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(*exc)

    def __call__(self, e: Event) -> None:
        with self._lock:
            self._apply(e)
        if self._live is not None:
            self._live.update(self._render())

    def _apply(self, e: Event) -> None:
        if e.kind in ("proposed", "no_source"):
            self.proposed += 1
        if e.kind == "no_source":
            self.verdicts["no source"] += 1
            self._line(f"[yellow]no source[/yellow] {e.proposer} ({e.stage}): {e.note[:90]}")
        elif e.kind in ("judged", "duplicate"):
            self.verdicts[e.verdict] += 1
            if e.verdict != "accepted" and e.check:
                self.reasons[e.check] += 1
            if e.verdict == "accepted" and e.speedup is not None:
                self.best = e.speedup if self.best is None else max(self.best, e.speedup)
            style = "green" if e.verdict == "accepted" else "red"
            speed = f" {e.speedup:.2f}x" if e.speedup is not None and e.verdict == "accepted" else ""
            why = f" ({e.check})" if e.check else ""
            dup = " [dim](judged before)[/dim]" if e.kind == "duplicate" else ""
            self._line(f"[{style}]{e.verdict}[/{style}]{speed}{why} {e.candidate_id} {e.proposer} {e.stage}{dup}")
        elif e.kind in ("resumed", "stopped"):
            self._line(f"[bold]{e.kind}[/bold]: {e.note}")

    def _line(self, text: str) -> None:
        self.recent.append(text)
        del self.recent[:-RECENT]

    def _render(self) -> Group:
        with self._lock:
            head = Table.grid(padding=(0, 2))
            best = f"{self.best:.2f}x" if self.best is not None else "-"
            head.add_row(Text(f"optimizing {self.task_name}", style="bold"),
                         f"proposals {self.proposed}/{self.budget}", f"best in search {best} vs eager",
                         f"{time.monotonic() - self.t0:.0f} s")
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self.verdicts.items())) or "-"
            reasons = ", ".join(f"{k} {v}" for k, v in self.reasons.most_common(6)) or "-"
            return Group(head, Text(f"verdicts: {counts}"), Text(f"reject reasons: {reasons}"),
                         *(Text.from_markup(r) for r in self.recent))
