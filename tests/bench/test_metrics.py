"""fast_p, geometric means and the summary, on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from kernelwright.bench.metrics import fast_p, geomean, outcomes, summarize
from kernelwright.bench.records import BenchRow, Verdict

TASKS = ["a", "b", "c", "d", "e"]


def row(task, verdict, eager=None, compile_=None, interval=None, cand="x.py", check=None):
    reasons = [{"check": check, "detail": "..."}] if check else []
    return BenchRow(task, cand, Verdict(verdict), key=task + cand, device="cpu", speedup_vs_eager=eager,
                    speedup_vs_compile=compile_, eager_interval=interval, reasons=reasons)


ROWS = [
    row("a", "accepted", 2.5, 1.2, (2.2, 2.8)),
    row("b", "accepted", 1.02, 0.5, (0.95, 1.09)),  # a tie: fast_1 by KernelBench's rule only
    row("b", "rejected", cand="y.py", check="mismatch"),
    row("c", "rejected", check="mismatch"),
    row("c", "accepted", 1.6, 0.9, (1.4, 1.8), cand="y.py"),
    row("c", "accepted", 0.8, 0.4, (0.7, 0.9), cand="z.py"),  # c counts by its fastest (1.6)
    row("d", "error", check="task"),
    # e: no candidate at all, still in the denominator
]


def test_fast_p_by_hand():
    outs = outcomes(TASKS, ROWS)
    assert [o.verdict for o in outs] == ["accepted", "accepted", "accepted", "error", "missing"]
    assert outs[2].row.speedup_vs_eager == 1.6 and outs[2].candidates == 3
    assert fast_p(outs, 0) == pytest.approx(3 / 5)
    assert fast_p(outs, 1) == pytest.approx(3 / 5)  # 2.5, 1.02, 1.6
    assert fast_p(outs, 1.5) == pytest.approx(2 / 5)  # 2.5, 1.6
    assert fast_p(outs, 2) == pytest.approx(1 / 5)
    assert fast_p(outs, 1, sure=True) == pytest.approx(2 / 5)  # the tie's interval holds 1
    assert fast_p(outs, 1, "compile") == pytest.approx(1 / 5)  # 1.2; b's 0.5 and c's 0.9 are not


def test_summary():
    s = summarize(TASKS, ROWS)
    assert (s.tasks, s.candidates, s.correct, s.errors, s.missing) == (5, 7, 3, 1, 1)
    assert s.correctness_rate == pytest.approx(0.6)
    assert s.reasons == {"mismatch": 2, "task": 1}
    assert s.fast_p["eager"] == pytest.approx({"0": 0.6, "1": 0.6, "1.5": 0.4, "2": 0.2})
    assert s.geomean_vs_eager == pytest.approx((2.5 * 1.02 * 1.6) ** (1 / 3))
    assert s.geomean_vs_compile == pytest.approx((1.2 * 0.5 * 0.9) ** (1 / 3))


def test_an_untimed_baseline_is_not_a_row_of_zeros():
    s = summarize(["a"], [row("a", "accepted", 1.3, None)])
    assert s.fast_p["compile"] is None and s.fast_p_sure["compile"] is None
    assert s.fast_p["eager"]["1"] == 1.0


def test_geomean():
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert geomean([]) is None
    assert math.isclose(geomean([1.0, 0.0, 4.0]), 2.0)  # a zero would be no speedup measured
