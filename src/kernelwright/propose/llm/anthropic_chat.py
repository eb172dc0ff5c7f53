"""Anthropic's messages API through the official `anthropic` SDK."""

from __future__ import annotations

from typing import Any

from kernelwright.propose.llm.base import (
    REQUEST_TIMEOUT_S,
    AttemptFailure,
    ChatError,
    ChatReply,
    RetryPolicy,
    call_with_retries,
    classify_sdk_error,
    make_reply,
    resolve_endpoint,
)

PROVIDER = "anthropic"
KEY_ENV = "ANTHROPIC_API_KEY"
BASE_URL_ENV = "ANTHROPIC_BASE_URL"


class AnthropicChat:
    """A ChatModel over the official `anthropic` SDK's messages API.

    The key and server come from the arguments, else ANTHROPIC_API_KEY and
    ANTHROPIC_BASE_URL. The SDK's own retries are off: `retry` decides, so that
    every attempt is counted. `finish_reason` is the raw `stop_reason`, so a
    reply cut at the token limit reads "max_tokens". `temperature` is not sent:
    API version 2026-10-21, which this SDK speaks, rejects any sampling
    parameter with HTTP 400, even at its default value.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout_s: float = REQUEST_TIMEOUT_S,
        retry: RetryPolicy | None = None,
    ) -> None:
        import anthropic  # lazy: only runs that use Anthropic pay for importing the SDK

        api_key, base_url = resolve_endpoint(api_key, base_url, KEY_ENV, BASE_URL_ENV)
        if not api_key:
            raise ChatError(f"no Anthropic API key: set {KEY_ENV} (or pass api_key).")
        self.name = f"{PROVIDER}:{model}"
        self.model = model
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._sdk = anthropic
        self._where = base_url or "the Anthropic API"
        self._client = anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)

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

    def _classify(self, exc: Exception) -> AttemptFailure | None:
        return classify_sdk_error(exc, self._sdk, key_env=KEY_ENV, where=self._where, timeout_s=self.timeout_s)
