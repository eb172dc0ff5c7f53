"""Anthropic's messages API through the official `anthropic` SDK."""

from __future__ import annotations

from typing import Any

from kernelwright.propose.llm.base import (
    ChatReply,
    SDKChat,
    call_with_retries,
    make_reply,
)

PROVIDER = "anthropic"
KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"


class AnthropicChat(SDKChat):
    """A ChatModel over the official `anthropic` SDK's messages API.

    The key and server come from the arguments, else ANTHROPIC_API_KEY and
    ANTHROPIC_BASE_URL. The SDK's own retries are off: `retry` decides, so that
    every attempt is counted. `finish_reason` is the raw `stop_reason`, so a
    reply cut at the token limit reads "max_tokens". `temperature` is not sent:
    API version 2026-10-21, which this SDK speaks, rejects any sampling
    parameter with HTTP 400, even at its default value.
    """

    PROVIDER, KEY_ENV, BASE_URL_ENV = PROVIDER, KEY_ENV, BASE_URL_ENV
    DEFAULT_WHERE = "the Anthropic API"
    MISSING_KEY = f"no Anthropic API key: set {KEY_ENV} (or pass api_key)."

    def _client_for(self, api_key: str, base_url: str | None) -> tuple[Any, Any]:
        import anthropic  # lazy: only runs that use Anthropic pay for importing the SDK

        return anthropic, anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=self.timeout_s,
                                              max_retries=0)

    def complete(self, system: str, user: str, *, max_tokens: int, temperature: float | None) -> ChatReply:
        """Send one system + user prompt; return the reply or raise ChatError (temperature unused)."""
        del temperature  # see the class docstring
        params: dict[str, Any] = {
            "model": self.model,
            "system": system,
            "messages": [{"role": "user", "content": user}],
            "max_tokens": max_tokens,
            # An explicit timeout also stops the SDK refusing long non-streaming requests.
            "timeout": self.timeout_s,
        }
        response, attempts, seconds = call_with_retries(
            lambda: self._client.messages.create(**params),
            label=self.name,
            provider=PROVIDER,
            policy=self.retry,
            classify=self._classify,
        )
        text = "".join(block.text for block in response.content if getattr(block, "type", "") == "text")
        usage = response.usage
        return make_reply(
            text=text,
            finish_reason=response.stop_reason or "unknown",
            requested=self.model,
            reported=response.model,
            input_tokens=(usage.input_tokens or 0) if usage else 0,
            output_tokens=(usage.output_tokens or 0) if usage else 0,
            attempts=attempts,
            seconds=seconds,
        )
