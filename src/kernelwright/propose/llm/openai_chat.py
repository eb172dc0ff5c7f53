"""OpenAI chat completions, and any OpenAI-compatible server (vLLM, Ollama, llama.cpp)."""

from __future__ import annotations

from typing import Any

from kernelwright.propose.base import Usage
from kernelwright.propose.llm.base import (
    OPENAI_REASONING_PREFIXES,
    ChatError,
    ChatReply,
    SDKChat,
    call_with_retries,
    make_reply,
)

PROVIDER = "openai"
KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


class OpenAIChat(SDKChat):
    """A ChatModel over the official `openai` SDK's chat completions API.

    The key and server come from the arguments, else OPENAI_API_KEY and
    OPENAI_BASE_URL. With a base_url and no key (a local server) a placeholder
    key is sent. The SDK's own retries are off: `retry` decides, so that every
    attempt is counted in the reply's usage.
    """

    PROVIDER, KEY_ENV, BASE_URL_ENV = PROVIDER, KEY_ENV, BASE_URL_ENV
    DEFAULT_WHERE = "the OpenAI API"
    MISSING_KEY = f"no OpenAI API key: set {KEY_ENV}, or {BASE_URL_ENV} to use a local OpenAI-compatible server."

    def _client_for(self, api_key: str, base_url: str | None) -> tuple[Any, Any]:
        import openai  # lazy: only runs that use OpenAI pay for importing the SDK

        return openai, openai.OpenAI(api_key=api_key, base_url=base_url, timeout=self.timeout_s, max_retries=0)

    def complete(self, system: str, user: str, *, max_tokens: int, temperature: float | None) -> ChatReply:
        """Send one system + user prompt; return the reply or raise ChatError."""
        params = self._params(system, user, max_tokens, temperature)
        response, attempts, seconds = call_with_retries(
            lambda: self._client.chat.completions.create(**params),
            label=self.name,
            provider=PROVIDER,
            policy=self.retry,
            classify=self._classify,
        )
        if not response.choices:
            spent = Usage(calls=attempts, seconds=seconds)
            raise ChatError(f"{self.name}: {self._where} returned a reply with no choices.", spent)
        choice = response.choices[0]
        tokens = response.usage
        return make_reply(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "unknown",
            requested=self.model,
            reported=response.model,
            input_tokens=(tokens.prompt_tokens or 0) if tokens else 0,
            output_tokens=(tokens.completion_tokens or 0) if tokens else 0,
            attempts=attempts,
            seconds=seconds,
        )

    def _params(self, system: str, user: str, max_tokens: int, temperature: float | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        }
        if self.model.startswith(OPENAI_REASONING_PREFIXES):
            # Reasoning models take only max_completion_tokens and the default temperature.
            params["max_completion_tokens"] = max_tokens
        else:
            # Plain max_tokens is what local OpenAI-compatible servers all understand.
            params["max_tokens"] = max_tokens
            if temperature is not None:
                params["temperature"] = temperature
        return params
