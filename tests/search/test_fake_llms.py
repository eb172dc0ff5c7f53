"""The whole command against fake OpenAI and Anthropic servers on loopback (real HTTP, real SDKs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelwright.store import Store
from tests.propose.fake_llm_servers import FakeLLMServer, Reply
from tests.search import kernels as K

TASK = Path(__file__).parent.parent / "fixtures" / "tasks" / "diag_matmul.py"


@pytest.mark.slow
def test_ensemble_over_http_finds_the_honest_kernel(tmp_path):
    with FakeLLMServer("openai", default=Reply(text=K.PROSE)) as oa, \
            FakeLLMServer("anthropic", default=Reply(text=K.PROSE)) as an:
        oa.script([Reply(status=429, retry_after=0.01), Reply(text=K.reply(K.CHEAT), input_tokens=1000,
                                                             output_tokens=400),
                   Reply(text=K.reply(K.FAST), input_tokens=1200, output_tokens=500)])
        an.script([Reply(status=500), Reply(text=K.reply(K.WRONG), input_tokens=900, output_tokens=300),
                   Reply(text=K.reply(K.FAST), input_tokens=800, output_tokens=200)])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
        env.update(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=oa.url, ANTHROPIC_API_KEY="sk-ant-test",
                   ANTHROPIC_BASE_URL=an.url)
        proc = subprocess.run(
            [sys.executable, "-m", "kernelwright.cli.main", "optimize", str(TASK),
             "--model", "openai:gpt-5=2", "--model", "anthropic:claude-sonnet-4-5", "--budget", "6",
             "--device", "cpu", "--json", "--store", str(tmp_path / "kw.db"), "--out", str(tmp_path / "out"),
             "--seed", "3", "--no-compile-baseline"],
            capture_output=True, text=True, env=env, timeout=900)
        seen_oa, seen_an = list(oa.requests), list(an.requests)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert Path(summary["best"]["path"]).read_text() == K.FAST
    assert summary["best"]["proposer"] in ("openai:gpt-5", "anthropic:claude-sonnet-4-5")
    assert summary["llm"]["tokens"] > 0 and summary["llm"]["cost_usd"] > 0  # both models are priced
    with Store(tmp_path / "kw.db") as store:
        cands = store.candidates(summary["run_id"])
    assert len(cands) == 6
    by_source = {c.source: c for c in cands if c.source}
    if K.CHEAT in by_source:
        assert by_source[K.CHEAT].verdict == "rejected"
    assert all(c.failure for c in cands if c.source is None)
    # Every request went to the fake servers, with the model asked for and a prompt holding the task.
    assert [r.body["model"] for r in seen_oa] and all(r.body["model"] == "gpt-5" for r in seen_oa)
    assert all(r.body["model"] == "claude-sonnet-4-5" for r in seen_an)
    assert any("torch.diagonal(a @ b)" in json.dumps(r.body) for r in seen_oa + seen_an)
    # The 429 and the 500 were retried, not recorded as failed proposals.
    assert not any("429" in (c.failure or "") or "500" in (c.failure or "") for c in cands)
