"""AnthropicChat through the real `anthropic` SDK against a fake messages server."""

from __future__ import annotations

import threading
import time

import pytest

from kernelwright.propose.llm import (
    AnthropicChat,
    ChatError,
    ChatReply,
    RetryPolicy,
    concurrency_limit,
    set_concurrency_limit,
)
from kernelwright.propose.parse import extract_candidate
from tests.propose.fake_llm_servers import FakeLLMServer, Reply

# The SDK warns about its own list of retiring models; the prices under test are for these.
pytestmark = pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning")
FAST = RetryPolicy(max_attempts=3, base_backoff_s=0.0, max_backoff_s=0.0)


def chat(server: FakeLLMServer, model: str = "claude-sonnet-4-5", **kwargs: object) -> AnthropicChat:
    kwargs.setdefault("retry", FAST)
    return AnthropicChat(model, base_url=server.url, api_key="sk-ant-test", **kwargs)  # type: ignore[arg-type]


def ask(model: AnthropicChat) -> ChatReply:
    return model.complete("be brief", "write a kernel", max_tokens=64, temperature=0.5)


def sent_key(server: FakeLLMServer) -> str:
    """The key of the last request, whichever header this SDK version puts it in."""
    headers = server.requests[-1].headers
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def test_reply_usage_and_request_shape(anthropic_server: FakeLLMServer) -> None:
    anthropic_server.script([Reply(text="hello", input_tokens=1000, output_tokens=2000)])
    reply = ask(chat(anthropic_server))
    assert (reply.text, reply.finish_reason, reply.model) == ("hello", "end_turn", "claude-sonnet-4-5")
    assert (reply.usage.calls, reply.usage.input_tokens, reply.usage.output_tokens) == (1, 1000, 2000)
    assert reply.usage.cost_usd == pytest.approx((1000 * 3.0 + 2000 * 15.0) / 1e6)
    [request] = anthropic_server.requests
    assert request.path == "/v1/messages" and sent_key(anthropic_server) == "sk-ant-test"
    assert "anthropic-version" in request.headers
    assert request.body["model"] == "claude-sonnet-4-5" and request.body["system"] == "be brief"
    assert request.body["messages"] == [{"role": "user", "content": "write a kernel"}]
    assert request.body["max_tokens"] == 64
    assert "temperature" not in request.body  # the API version this SDK speaks rejects it


def test_text_blocks_are_concatenated(anthropic_server: FakeLLMServer) -> None:
    anthropic_server.script([Reply(text="part one, "), Reply(text="part two")])
    model = chat(anthropic_server)
    assert [ask(model).text for _ in range(2)] == ["part one, ", "part two"]


def test_env_vars_pick_server_and_key(anthropic_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", anthropic_server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    assert ask(AnthropicChat("claude-haiku-4-5", retry=FAST)).usage.calls == 1
    assert sent_key(anthropic_server) == "sk-ant-env"


def test_missing_key_says_what_to_set() -> None:
    with pytest.raises(ChatError, match="set ANTHROPIC_API_KEY"):
        AnthropicChat("claude-sonnet-4-5")


def test_dated_model_is_priced_as_its_base(anthropic_server: FakeLLMServer) -> None:
    reply = ask(chat(anthropic_server, "claude-opus-4-1-20250805"))
    assert reply.priced and reply.usage.cost_usd == pytest.approx((11 * 15.0 + 7 * 75.0) / 1e6)


def test_429_retried_after_the_servers_retry_after(anthropic_server: FakeLLMServer) -> None:
    anthropic_server.script([Reply(status=429, retry_after=0.3), Reply(text="ok")])
    start = time.monotonic()
    reply = ask(chat(anthropic_server))
    assert reply.text == "ok" and reply.usage.calls == 2 and len(anthropic_server.requests) == 2
    assert time.monotonic() - start >= 0.3


def test_overloaded_and_5xx_retried(anthropic_server: FakeLLMServer) -> None:
    anthropic_server.script([Reply(status=529, error="Overloaded"), Reply(status=500), Reply(text="ok")])
    reply = ask(chat(anthropic_server))
    assert (reply.text, reply.usage.calls) == ("ok", 3)


def test_401_not_retried(anthropic_server: FakeLLMServer) -> None:
    anthropic_server.script([Reply(status=401, error="invalid x-api-key")])
    with pytest.raises(ChatError, match="rejected the API key .*invalid x-api-key.*check ANTHROPIC_API_KEY"):
        ask(chat(anthropic_server))
    assert len(anthropic_server.requests) == 1


def test_timeout_retried_then_chat_error(anthropic_server: FakeLLMServer) -> None:
    anthropic_server.default = Reply(delay_s=1.0)
    model = chat(anthropic_server, timeout_s=0.2, retry=RetryPolicy(max_attempts=2, base_backoff_s=0.0))
    with pytest.raises(ChatError, match="gave up after 2 attempts; the last: no answer within 0.2 s") as caught:
        ask(model)
    assert len(anthropic_server.requests) == 2 and caught.value.usage.calls == 2


def test_truncation_reaches_the_parser(anthropic_server: FakeLLMServer) -> None:
    anthropic_server.script(
        [Reply(text="```python\nclass ModelNew:\n    def f(self):\n        return (1,", truncated=True)]
    )
    reply = ask(chat(anthropic_server))
    assert reply.finish_reason == "max_tokens"
    parsed = extract_candidate(reply.text, reply.finish_reason)
    assert parsed.failure is not None and parsed.failure.startswith("the code is truncated: line 3:")


def test_concurrency_limit_bounds_requests_in_flight(anthropic_server: FakeLLMServer) -> None:
    anthropic_server.default = Reply(delay_s=0.15)
    model = chat(anthropic_server)
    previous = concurrency_limit("anthropic")
    set_concurrency_limit("anthropic", 3)
    try:
        threads = [threading.Thread(target=ask, args=(model,)) for _ in range(7)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        set_concurrency_limit("anthropic", previous)
    assert len(anthropic_server.requests) == 7 and anthropic_server.max_in_flight == 3
