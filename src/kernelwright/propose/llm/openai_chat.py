"""OpenAI chat completions, and any OpenAI-compatible server (vLLM, Ollama, llama.cpp)."""

from __future__ import annotations

from typing import Any

from kernelwright.propose.base import Usage
from kernelwright.propose.llm.base import (
    OPENAI_REASONING_PREFIXES,
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

PROVIDER = "openai"
KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"


class OpenAIChat:
    """A ChatModel over the official `openai` SDK's chat completions API.

    The key and server come from the arguments, else OPENAI_API_KEY and
    OPENAI_BASE_URL. With a base_url and no key (a local server) a placeholder
    key is sent. The SDK's own retries are off: `retry` decides, so that every
    attempt is counted in the reply's usage.
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
        import openai  # lazy: only runs that use OpenAI pay for importing the SDK

        api_key, base_url = resolve_endpoint(api_key, base_url, KEY_ENV, BASE_URL_ENV)
        if not api_key:
            raise ChatError(
                f"no OpenAI API key: set {KEY_ENV}, or {BASE_URL_ENV} to use a local OpenAI-compatible server."
            )
        self.name = f"{PROVIDER}:{model}"
        self.model = model
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._sdk = openai
        self._where = base_url or "the OpenAI API"
        self._client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)

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

    def _classify(self, exc: Exception) -> AttemptFailure | None:
        return classify_sdk_error(exc, self._sdk, key_env=KEY_ENV, where=self._where, timeout_s=self.timeout_s)
