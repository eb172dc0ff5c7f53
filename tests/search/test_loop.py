"""The search loop with a scripted LLM: finds the best honest kernel, records every failure, crowns no cheat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernelwright.search.run import OptimizeRequest, optimize_task
from kernelwright.store import Store
from tests.search import kernels as K

TASK = Path(__file__).parent.parent / "fixtures" / "tasks" / "diag_matmul.py"


def write_script(path: Path, replies: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in replies) + "\n")
    return path


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "kw.db") as s:
        yield s


def run(tmp_path, store, models, budget, **kw):
    req = OptimizeRequest(task=TASK, models=models, budget=budget, device="cpu", out_dir=tmp_path / "out",
                          parallel=kw.pop("parallel", 1), seed=kw.pop("seed", 7), compile_baseline=False, **kw)
    return optimize_task(req, store)


@pytest.mark.slow
def test_search_finds_the_honest_fast_kernel_and_never_crowns_the_cheat(tmp_path, store):
    script = write_script(tmp_path / "replies.jsonl", [
        {"text": K.reply(K.SLOW), "input_tokens": 1000, "output_tokens": 300},
        {"text": K.PROSE, "input_tokens": 900, "output_tokens": 20},
        {"text": K.reply(K.CHEAT), "input_tokens": 1100, "output_tokens": 310},
        {"text": K.reply(K.WRONG)},
        {"text": K.TRUNCATED, "finish_reason": "length"},
        {"text": K.reply(K.CRASH)},
        {"text": K.reply(K.FAST)},
        {"error": "rate_limit"},
    ])
    summary = run(tmp_path, store, [f"scripted:{script}"], budget=8)

    best = summary["best"]
    assert best is not None, summary
    assert Path(best["path"]).read_text() == K.FAST
    assert best["speedup_vs_eager"] >= 1.05
    cands = store.candidates(summary["run_id"])
    assert len(cands) == 8
    by_source = {c.source: c for c in cands if c.source}
    assert by_source[K.CHEAT].verdict == "rejected"
    assert by_source[K.WRONG].reasons[0]["check"] == "mismatch"
    assert by_source[K.CRASH].verdict == "rejected"
    assert by_source[K.SLOW].verdict == "accepted"
    failures = [c.failure for c in cands if c.source is None]
    assert len(failures) == 3 and all(failures), failures  # prose, truncated, rate limit: each with a reason
    assert any("no code" in f or "code block" in f for f in failures)
    counts = summary["candidates"]
    assert counts["by_verdict"]["no_source"] == 3
    assert summary["llm"]["calls"] >= 7 and summary["llm"]["tokens"] >= 3630
    # The cheat never reaches the report, and the run says why it stopped.
    assert all(r["candidate_id"] != by_source[K.CHEAT].id for r in summary["rejudged"])
    assert summary["stop_reason"] == "proposal budget of 8 spent"
    assert store.get_run(summary["run_id"]).status == "finished"


@pytest.mark.slow
def test_a_tie_with_eager_is_not_reported(tmp_path, store):
    script = write_script(tmp_path / "replies.jsonl", [{"text": K.reply(K.SLOW)}, {"text": K.reply(K.CHEAT)}])
    summary = run(tmp_path, store, [f"scripted:{script}"], budget=2)
    assert summary["best"] is None
    assert "faster than eager" in summary["note"] or "accepted" in summary["note"]
    assert not (tmp_path / "out" / "best.py").exists()


def test_repeated_source_is_judged_once(tmp_path, store):
    script = write_script(tmp_path / "replies.jsonl", [{"text": K.reply(K.WRONG)}] * 3)
    summary = run(tmp_path, store, [f"scripted:{script}"], budget=3)
    cands = store.candidates(summary["run_id"])
    assert [c.verdict for c in cands] == ["rejected"] * 3
    assert sum(1 for c in cands if (c.judge_seconds or 0) > 0) == 1
    assert summary["target"] == "c"  # the fast-building form is the default on the CPU
    assert "ctypes" in script_prompt(tmp_path)  # and the prompt carries its skeleton


def script_prompt(tmp_path: Path) -> str:
    """The first prompt the search sent, from the store."""
    with Store(tmp_path / "kw.db") as s:
        return s.candidates(s.list_runs()[0].id)[0].prompt or ""


def test_bad_model_spec_is_a_clear_error(tmp_path, store):
    with pytest.raises(ValueError, match="unknown provider"):
        run(tmp_path, store, ["nosuch:model"], budget=1)
