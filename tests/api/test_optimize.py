"""kernelwright.optimize searches for a module, with the command line's search, store and re-judgement.

The proposer replays canned replies (`scripted:FILE.jsonl`): no LLM and no compiler.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import kernelwright
from kernelwright.api import KernelRejectedError, UnverifiedInputError
from kernelwright.store import Store
from tests.api.modules import SORTED_ROW_SUM_FAST, SortedRowSum
from tests.search import kernels as K


def _script(tmp_path: Path, *replies: str) -> str:
    path = tmp_path / "replies.jsonl"
    path.write_text("".join(json.dumps({"text": r}) + "\n" for r in replies))
    return f"scripted:{path}"


def test_optimize_a_module_finds_the_faster_kernel_and_records_the_run(tmp_path):
    module = SortedRowSum()
    x = torch.randn(128, 1024)
    wrong = SORTED_ROW_SUM_FAST.replace(".sum(1)", ".sum(1) * 1.01")
    db = tmp_path / "kw.db"
    result = kernelwright.optimize(
        module, (x,), models=_script(tmp_path, K.reply(wrong), K.reply(SORTED_ROW_SUM_FAST)), budget=2,
        parallel=1, seed=1, out_dir=tmp_path / "out", store=db, compile_baseline=False)

    assert result.accepted, (result.note, result.summary)
    assert result.note == "re-judged in a fresh process"
    assert result.kernel_path == str(tmp_path / "out" / "best.py") and result.kernel_source == SORTED_ROW_SUM_FAST
    assert result.speedup_vs_eager is not None and result.speedup_vs_eager >= 1.05
    assert [s.describe() for s in result.signatures] == ["(float32[128, 1024] on cpu)"]
    as_json = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert as_json["run_id"] == result.run_id and as_json["search"]["candidates"]["by_reason"] == {"mismatch": 1}

    # The same store as `kernelwright optimize`: the run, both candidates, and the task's generated file.
    with Store(db) as store:
        run = store.get_run(result.run_id)
        verdicts = sorted(c.verdict for c in store.candidates(result.run_id))
    assert run.task_path == result.task_path and verdicts == ["accepted", "rejected"]

    other = torch.randn(128, 1024)
    # Another summation order than the module's: equal within float32's tolerance, not bit for bit.
    torch.testing.assert_close(result.module(other), module(other), rtol=1e-4, atol=1e-3)
    with pytest.raises(UnverifiedInputError):
        result.module(torch.randn(32, 1024))


def test_optimize_without_a_kernel_is_a_rejected_result(tmp_path):
    result = kernelwright.optimize(SortedRowSum(), (torch.randn(128, 1024),), models=_script(tmp_path, K.PROSE),
                                   budget=1, parallel=1, out_dir=tmp_path / "out", store=str(tmp_path / "kw.db"),
                                   compile_baseline=False)
    assert result.verdict == "rejected" and result.note == "no candidate was accepted"
    assert result.checks == ["search"] and result.kernel_path is None and result.run_id
    with pytest.raises(KernelRejectedError, match="no candidate was accepted"):
        result.module  # noqa: B018


def test_optimize_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown provider"):
        kernelwright.optimize(SortedRowSum(), (torch.randn(4, 1024),), models="nosuch:model",
                              store=tmp_path / "kw.db", out_dir=tmp_path / "out")
    with pytest.raises(ValueError, match="fallback"):
        kernelwright.optimize(SortedRowSum(), (torch.randn(4, 1024),), fallback="sometimes")
