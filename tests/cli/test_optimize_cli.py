"""`kernelwright optimize`, `runs` and `show` as users and scripts call them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import TASKS
from tests.search import kernels as K


def _kw(*args: str, timeout: int = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernelwright.cli.main", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def _script(tmp_path: Path, *codes: str) -> Path:
    path = tmp_path / "replies.jsonl"
    path.write_text("\n".join(json.dumps({"text": K.reply(c)}) for c in codes) + "\n")
    return path


def test_readable_summary_then_runs_and_show(tmp_path):
    db = str(tmp_path / "data" / "kw.db")
    cwd = tmp_path / "checkout"
    cwd.mkdir()
    out = _kw("optimize", str(TASKS / "diag_matmul.py"), "--model", f"scripted:{_script(tmp_path, K.FAST, K.WRONG)}",
              "--budget", "2", "--device", "cpu", "--store", db, "--no-compile-baseline", cwd=cwd)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "re-judged in a fresh process" in out.stdout
    assert "mismatch 1" in out.stdout  # reject reasons in the summary table
    # The search's own figure is there, and labelled as not the claim.
    assert "best in search" in out.stdout and "not the claim" in out.stdout
    # Outputs go beside the store (the data directory), never into the working directory.
    assert list(cwd.iterdir()) == []
    runs = json.loads(_kw("runs", "--store", db, "--json").stdout)["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "finished" and runs[0]["proposals"] == 2
    run_id = runs[0]["run_id"]
    best = tmp_path / "data" / "runs" / run_id / "best.py"
    assert best.read_text() == K.FAST and str(best) in out.stdout.replace("\n", "")
    best_json = json.loads((best.parent / "best.json").read_text())
    assert best_json["verdict"]["verdict"] == "accepted"
    # One headline: what runs and show report is the fresh re-judgement that ended the run.
    rejudged = best_json["verdict"]["timing"]["speedup_vs_eager"]
    assert runs[0]["speedup_vs_eager"] == rejudged and runs[0]["crowned"]
    shown = json.loads(_kw("show", run_id, "--store", db, "--json").stdout)
    assert shown["best"]["path"] == str(best) and shown["best"]["speedup_vs_eager"] == rejudged
    assert shown["lineage"]["candidate_id"] == shown["best"]["candidate_id"]
    assert shown["candidates"]["by_reason"] == {"mismatch": 1}
    readable = _kw("show", run_id, "--store", db)
    assert readable.returncode == 0 and "mismatch 1" in readable.stdout
    assert f"best kernel: {best}" in readable.stdout


def test_bad_input_exit_2_with_one_json_object(tmp_path):
    db = str(tmp_path / "kw.db")
    cases = [
        ["optimize", str(tmp_path / "missing.py"), "--device", "cpu"],
        ["optimize", str(TASKS / "diag_matmul.py"), "--model", "nosuch:model", "--device", "cpu"],
        ["optimize", str(TASKS / "diag_matmul.py"), "--model", "openai:gpt-5=-1", "--device", "cpu"],
        ["optimize", str(TASKS / "diag_matmul.py"), "--target", "triton", "--device", "cpu"],
        ["optimize", str(TASKS / "diag_matmul.py"), "--resume", "r-nosuchrun", "--device", "cpu"],
    ]
    for args in cases:
        out = _kw(*args, "--store", db, "--json", timeout=120)
        assert out.returncode == 2, (args, out.stderr[-1500:])
        assert "error" in json.loads(out.stdout), args
        assert "Traceback" not in out.stderr, args
    out = _kw("show", "r-nosuchrun", "--store", db)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_missing_api_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    out = _kw("optimize", str(TASKS / "diag_matmul.py"), "--model", "openai:gpt-5", "--device", "cpu",
              "--store", str(tmp_path / "kw.db"), timeout=120)
    assert out.returncode == 2 and "OPENAI_API_KEY" in out.stderr and "Traceback" not in out.stderr
