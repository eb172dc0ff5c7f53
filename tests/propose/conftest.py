"""Fixtures for the proposer tests: fake LLM servers, and no real keys or servers leaking in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.propose.fake_llm_servers import FakeLLMServer

LLM_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN")


@pytest.fixture(autouse=True)
def no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's real keys must never reach a test, nor a test reach a real API."""
    for name in LLM_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def openai_server() -> Iterator[FakeLLMServer]:
    """A fake OpenAI-compatible server; its `url` is the SDK's base_url."""
    with FakeLLMServer("openai") as server:
        yield server


@pytest.fixture
def anthropic_server() -> Iterator[FakeLLMServer]:
    """A fake Anthropic messages server; its `url` is the SDK's base_url."""
    with FakeLLMServer("anthropic") as server:
        yield server
