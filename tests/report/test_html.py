"""`kernelwright report`: one page that opens from disk with no network, drawn by a real browser
(headless Chromium) with no console error, its plots drawn and its table sortable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kernelwright.report.html import TaskSummary, fast_p, summarize
from kernelwright.report.export import ExportRow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _report(source: str, out: Path, store: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, KERNELWRIGHT_STORE=str(store))
    return subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "report", source, "-o", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000",
                           "--enable-logging=stderr", "--v=0", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed here (.ci/run installs it)")
def test_the_page_renders_in_chromium_with_its_plots_and_no_console_error(tmp_path, benched):
    out, store = benched
    page = tmp_path / "report.html"
    r = _report(str(out), page, store)
    assert r.returncode == 0, r.stderr
    text = page.read_text()
    # Self-contained: no script, style or image is fetched from anywhere.
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", text)
    assert "level1/2_Hinge.py" in text and "level2/2_Broken.py" in text  # every task has its row
    dom = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-errors="0"' in body, body  # no uncaught script error on the page
    plots = int(re.search(r'data-plots="(\d+)"', body).group(1))
    assert plots >= 3, body  # the speedups, fast_p and the reject reasons, each drawn as SVG by plotly
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln and ("Error" in ln or "Uncaught" in ln)]
    assert not console, console
    shot = tmp_path / "report.png"
    _chromium(tmp_path, "--window-size=1200,2400", f"--screenshot={shot}", page.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000  # kept under the test's temp dir


def _row(task: str, correct: bool, speed: float | None, iv: list[float] | None = None) -> ExportRow:
    return ExportRow(task, task, None, None, "", "", correct, "accepted" if correct else "rejected",
                     [] if correct else [{"check": "mismatch", "detail": "x"}], None if correct else "mismatch: x",
                     None, None, None, None, None, None, speed, iv, None, None, "p", "s", "", [], {}, "cpu", "r", "c",
                     None, "", None, None)


def test_fast_p_is_kernelbenchs_share_of_all_tasks_correct_and_faster_by_hand():
    # Four tasks: 2.0x (1.5-2.5), 1.2x, a rejected one, and 0.9x.
    tasks = summarize([_row("a", True, 2.0, [1.5, 2.5]), _row("a", True, 1.1), _row("b", True, 1.2),
                       _row("c", False, None), _row("d", True, 0.9)])
    assert [t.best.speedup_vs_eager if t.best else None for t in tasks] == [2.0, 1.2, None, 0.9]
    assert isinstance(tasks[2], TaskSummary) and tasks[2].reason == "mismatch: x"
    assert fast_p(tasks, [0, 1, 1.5, 2], "speedup_vs_eager") == [0.75, 0.5, 0.25, 0.0]
    # The interval's ends: the low end 1.5 is not more than 1.5; the high end 2.5 is more than 2.
    assert fast_p(tasks, [1.5, 2], "speedup_vs_eager", 0) == [0.0, 0.0]
    assert fast_p(tasks, [1.5, 2], "speedup_vs_eager", 1) == [0.25, 0.25]
