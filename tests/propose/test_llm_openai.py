"""OpenAIChat through the real `openai` SDK against a fake OpenAI-compatible server."""

from __future__ import annotations

import threading
import time

import pytest

from kernelwright.propose.llm import (
    ChatError,
    ChatReply,
    OpenAIChat,
    RetryPolicy,
    concurrency_limit,
    set_concurrency_limit,
)
from tests.propose.fake_llm_servers import FakeLLMServer, Reply

FAST = RetryPolicy(max_attempts=3, base_backoff_s=0.0, max_backoff_s=0.0)


def chat(server: FakeLLMServer, model: str = "gpt-5", **kwargs: object) -> OpenAIChat:
    kwargs.setdefault("retry", FAST)
    return OpenAIChat(model, base_url=server.url, api_key="sk-test", **kwargs)  # type: ignore[arg-type]


def ask(model: OpenAIChat, temperature: float | None = None) -> ChatReply:
    return model.complete("be brief", "write a kernel", max_tokens=64, temperature=temperature)


def test_reply_usage_and_request_shape(openai_server: FakeLLMServer) -> None:
    openai_server.script([Reply(text="hello", input_tokens=1000, output_tokens=2000)])
    reply = ask(chat(openai_server), temperature=0.7)
    assert (reply.text, reply.finish_reason, reply.model, reply.priced) == ("hello", "stop", "gpt-5", True)
    assert (reply.usage.calls, reply.usage.input_tokens, reply.usage.output_tokens) == (1, 1000, 2000)
    assert reply.usage.cost_usd == pytest.approx((1000 * 1.25 + 2000 * 10.0) / 1e6)
    assert reply.usage.seconds > 0
    [request] = openai_server.requests
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "gpt-5"
    assert request.body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "write a kernel"},
    ]
    # A reasoning model takes max_completion_tokens and no temperature.
    assert request.body["max_completion_tokens"] == 64
    assert "temperature" not in request.body and "max_tokens" not in request.body


def test_plain_model_sends_max_tokens_and_temperature(openai_server: FakeLLMServer) -> None:
    ask(chat(openai_server, "gpt-4o"), temperature=0.3)
    body = openai_server.requests[0].body
    assert (body["max_tokens"], body["temperature"]) == (64, 0.3)


def test_env_vars_pick_server_and_key(openai_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    reply = ask(OpenAIChat("gpt-4.1", retry=FAST))
    assert reply.usage.calls == 1
    assert openai_server.requests[0].headers["authorization"] == "Bearer sk-from-env"


def test_local_server_needs_no_key(openai_server: FakeLLMServer) -> None:
    ask(OpenAIChat("qwen2.5-coder", base_url=openai_server.url))
    assert openai_server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_missing_key_says_what_to_set() -> None:
    with pytest.raises(ChatError, match="set OPENAI_API_KEY, or OPENAI_BASE_URL"):
        OpenAIChat("gpt-5")


def test_unknown_model_costs_nothing_and_says_so(openai_server: FakeLLMServer) -> None:
    reply = ask(chat(openai_server, "my-local-model"))
    assert (reply.usage.cost_usd, reply.priced) == (0.0, False)


def test_429_retried_after_the_servers_retry_after(openai_server: FakeLLMServer) -> None:
    openai_server.script([Reply(status=429, retry_after=0.3), Reply(text="ok")])
    start = time.monotonic()
    reply = ask(chat(openai_server))  # FAST backs off 0 s: any wait is Retry-After's
    assert reply.text == "ok" and reply.usage.calls == 2
    assert len(openai_server.requests) == 2
    assert time.monotonic() - start >= 0.3 and reply.usage.seconds >= 0.3


def test_5xx_retried_until_success(openai_server: FakeLLMServer) -> None:
    openai_server.script([Reply(status=500), Reply(status=503), Reply(text="ok")])
    reply = ask(chat(openai_server))
    assert (reply.text, reply.usage.calls, len(openai_server.requests)) == ("ok", 3, 3)


def test_retries_exhausted(openai_server: FakeLLMServer) -> None:
    openai_server.default = Reply(status=502, error="bad gateway")
    with pytest.raises(ChatError, match="gave up after 3 attempts.*HTTP 502: bad gateway") as caught:
        ask(chat(openai_server))
    assert caught.value.usage.calls == 3 and len(openai_server.requests) == 3


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_not_retried(openai_server: FakeLLMServer, status: int) -> None:
    openai_server.script([Reply(status=status, error="nope")])
    with pytest.raises(ChatError, match=f"HTTP {status}: nope") as caught:
        ask(chat(openai_server))
    assert len(openai_server.requests) == 1 and caught.value.usage.calls == 1


def test_401_names_the_key_variable(openai_server: FakeLLMServer) -> None:
    openai_server.script([Reply(status=401, error="Incorrect API key provided")])
    with pytest.raises(ChatError, match="rejected the API key .*check OPENAI_API_KEY"):
        ask(chat(openai_server))


def test_timeout_retried_then_chat_error(openai_server: FakeLLMServer) -> None:
    openai_server.default = Reply(delay_s=1.0)
    model = chat(openai_server, timeout_s=0.2, retry=RetryPolicy(max_attempts=2, base_backoff_s=0.0))
    with pytest.raises(ChatError, match="gave up after 2 attempts; the last: no answer within 0.2 s"):
        ask(model)
    assert len(openai_server.requests) == 2


def test_unreachable_server() -> None:
    model = OpenAIChat("gpt-5", base_url="http://127.0.0.1:9/v1", retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ChatError, match="could not reach http://127.0.0.1:9/v1"):
        ask(model)


def test_truncation_visible(openai_server: FakeLLMServer) -> None:
    openai_server.script([Reply(truncated=True)])
    assert ask(chat(openai_server)).finish_reason == "length"


def test_concurrency_limit_bounds_requests_in_flight(openai_server: FakeLLMServer) -> None:
    openai_server.default = Reply(delay_s=0.15)
    model = chat(openai_server)
    previous = concurrency_limit("openai")
    set_concurrency_limit("openai", 2)
    try:
        threads = [threading.Thread(target=ask, args=(model,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        set_concurrency_limit("openai", previous)
    assert len(openai_server.requests) == 6
    assert openai_server.max_in_flight == 2  # bounded, and the threads did overlap
