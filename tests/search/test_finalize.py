"""Crowning: a finalist's claim is the less favourable of its fresh re-judgements."""

from __future__ import annotations

from kernelwright.search.finalize import _worse, holds_up, marginal


def _verdict(speed: float, low: float, high: float, verdict: str = "accepted") -> dict:
    return {"verdict": verdict, "findings": [],
            "timing": {"speedup_vs_eager": speed, "speedup_vs_eager_interval": [low, high],
                       "speedup_vs_compile_interval": None}}


def test_the_lower_reading_is_the_claim_with_the_interval_widened_to_both() -> None:
    # One pair of processes said 1.18x [1.15-1.24] for the task's own code (seen on the CPU);
    # the next said 0.97x [0.94-1.00]. Neither interval alone covers the other.
    combined = _worse(_verdict(1.18, 1.15, 1.24), _verdict(0.97, 0.94, 1.00))
    t = combined["timing"]
    assert t["speedup_vs_eager"] == 0.97 and t["speedup_vs_eager_interval"] == [0.94, 1.24]
    assert not holds_up(t["speedup_vs_eager"], tuple(t["speedup_vs_eager_interval"]))
    assert any("the lower is the claim" in f for f in combined["findings"])


def test_a_real_speedup_holds_in_both_and_a_rejection_wins() -> None:
    combined = _worse(_verdict(1.62, 1.55, 1.70), _verdict(1.58, 1.52, 1.66))
    t = combined["timing"]
    assert holds_up(t["speedup_vs_eager"], tuple(t["speedup_vs_eager_interval"]))
    assert t["speedup_vs_eager_interval"] == [1.52, 1.70]
    rejected = _worse(_verdict(1.62, 1.55, 1.70), _verdict(0.0, 0.0, 0.0, verdict="rejected"))
    assert rejected["verdict"] == "rejected"


def test_only_a_claim_near_the_bar_is_re_judged_again() -> None:
    # CPU spread 1.15: a low end of 1.10 clears 1.05 by less than that, 1.45 by more.
    assert marginal(_verdict(1.30, 1.10, 1.50), "cpu")
    assert not marginal(_verdict(1.72, 1.45, 2.20), "cpu")
    assert not marginal(_verdict(1.02, 0.90, 1.15), "cpu")  # no claim: nothing to confirm
    assert not marginal(_verdict(1.10, 1.09, 1.12), "cuda")  # GPU spread 1.03: 1.09 >= 1.05 * 1.03


def test_the_re_judgement_runs_here_with_a_fresh_pair_and_never_a_kept_reference(tmp_path) -> None:
    """The crown judges with the crown pool's pre-started pair, in this process, as `verify --json`
    would print it; a pool that keeps references is refused; a task that cannot load is an error."""
    import json

    import pytest

    from kernelwright import forms
    from kernelwright.judge.pairs import PairPool
    from kernelwright.search.finalize import crown_pool, rejudge
    from tests.conftest import TASKS

    cand = tmp_path / "cand.py"
    cand.write_text(forms.FORMS["c"].skeleton())
    with crown_pool("cpu", compile_baseline=False) as pool:
        res = rejudge(TASKS / "relu_add.py", cand, "cpu", compile_baseline=False, pool=pool)
    assert res["verdict"] == "accepted", res.get("reasons")
    assert any(f.startswith("workers: pre-started") for f in res["findings"])
    assert json.loads(json.dumps(res, allow_nan=False)) == res
    with PairPool(keep_reference=True) as kept, pytest.raises(ValueError, match="fresh reference"):
        rejudge(TASKS / "relu_add.py", cand, "cpu", pool=kept)
    broken = tmp_path / "task.py"
    broken.write_text("this is not python(\n")
    bad = rejudge(broken, cand, "cpu", compile_baseline=False)
    assert bad["verdict"] == "error" and bad["error"]
