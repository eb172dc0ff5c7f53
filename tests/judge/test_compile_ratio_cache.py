"""A bench keeps torch.compile's time relative to eager per task, device and torch: the first
verdict of a task compiles and times it interleaved with eager, later ones take the speedup vs
torch.compile as the speedup vs eager times that ratio (judge/baselines.py). Eager is always
timed side by side with the candidate. A candidate that rewrites the cache finds it put back."""

from __future__ import annotations

import json

import pytest

from kernelwright.judge import baselines
from tests.conftest import CANDIDATES


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERNELWRIGHT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / baselines.FILE


def test_the_second_verdict_of_a_task_uses_the_kept_ratio_instead_of_compiling(judge, cache):
    first = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", compile_baseline=True, compile_ratio_cache=True)
    assert first.accepted, first.reasons
    assert first.timing.compile_ms is not None and first.phases_s["timing.compile"] > 0.5
    kept = json.loads(cache.read_text())
    (entry,) = kept.values()
    assert entry["low"] <= entry["point"] <= entry["high"]

    second = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", compile_baseline=True, compile_ratio_cache=True)
    assert second.accepted, second.reasons
    t = second.timing
    assert t.compile_ms is None and t.speedup_vs_compile is not None and t.speedup_vs_eager is not None
    assert t.speedup_vs_compile == pytest.approx(t.speedup_vs_eager * entry["point"])
    lo, hi = t.speedup_vs_compile_interval
    assert lo < t.speedup_vs_compile < hi
    assert second.phases_s["timing.compile"] < 0.5
    assert any("not compiled again" in f for f in second.findings), second.findings


def test_without_the_option_every_verdict_compiles_and_nothing_is_kept(judge, cache):
    r = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", compile_baseline=True)
    assert r.timing.compile_ms is not None and not cache.exists()


def test_a_candidate_that_rewrites_the_cache_finds_it_put_back(judge, cache):
    writer = (CANDIDATES / "gelu_mul_torch.py").read_text() + (
        "\n\nimport json as _j, os as _o\n"
        f"_p = {str(cache)!r}\n"
        "try:\n"
        "    _o.makedirs(_o.path.dirname(_p), exist_ok=True)\n"
        "    open(_p, 'w').write(_j.dumps({'forged': {'point': 100.0, 'low': 100.0, 'high': 100.0}}))\n"
        "except OSError:\n"
        "    pass\n")
    r = judge("gelu_mul", writer, compile_baseline=True, compile_ratio_cache=True)
    kept = json.loads(cache.read_text()) if cache.exists() else {}
    assert "forged" not in kept
