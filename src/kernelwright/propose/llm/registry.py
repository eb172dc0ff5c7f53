"""Model specs ("openai:gpt-5"), the provider registry, and weighted ensembles.

A spec is PROVIDER:MODEL, split at the first colon, so model names that hold
colons themselves (Ollama's "llama3.1:70b") pass through whole.

An ensemble entry is SPEC or SPEC=WEIGHT, the weight a positive number (default
1) giving the model's share of the proposals: "openai:gpt-5=2" proposes twice
as often as a weight-1 entry. "=" was chosen over "@" because "@" occurs in
model ids (Vertex AI's "claude-sonnet-4-5@20250929"); consequently a spec that
itself contains "=" cannot be listed in an ensemble.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from kernelwright.propose.llm.anthropic_chat import AnthropicChat
from kernelwright.propose.llm.base import ChatModel
from kernelwright.propose.llm.openai_chat import OpenAIChat
from kernelwright.propose.llm.scripted import ScriptedChat

# provider -> factory(model, **kwargs); the SDKs are imported only when a factory runs.
PROVIDERS: dict[str, Callable[..., ChatModel]] = {
    "openai": OpenAIChat,
    "anthropic": AnthropicChat,
    "scripted": ScriptedChat,  # scripted:PATH.jsonl
}
DEFAULT_WEIGHT = 1.0


def parse_model_spec(spec: str) -> tuple[str, str]:
    """Split "provider:model" into (provider, model); ValueError for a bad spec or unknown provider."""
    provider, colon, model = spec.strip().partition(":")
    if not colon or not provider or not model.strip():
        raise ValueError(f"model spec {spec!r} is not PROVIDER:MODEL (e.g. 'openai:gpt-5'); {_known()}")
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r} in {spec!r}; {_known()}")
    return provider, model.strip()


def make_chat(spec: str, **kwargs: Any) -> ChatModel:
    """Build the ChatModel a spec names; `kwargs` go to the provider's constructor."""
    provider, model = parse_model_spec(spec)
    return PROVIDERS[provider](model, **kwargs)


def parse_ensemble(entries: Iterable[str]) -> list[tuple[str, float]]:
    """Parse ["openai:gpt-5=2", "anthropic:claude-sonnet-4-5"] into [(spec, weight), ...].

    ValueError for an empty list, a bad spec, a weight that is not a positive
    finite number, or a spec listed twice (give it a larger weight instead).
    """
    parsed: list[tuple[str, float]] = []
    for entry in entries:
        spec, weight = _ensemble_entry(entry)
        if any(spec == seen for seen, _ in parsed):
            raise ValueError(f"{spec!r} is listed twice; give it a larger weight instead (e.g. {spec}=2)")
        parsed.append((spec, weight))
    if not parsed:
        raise ValueError("the ensemble names no model; give at least one PROVIDER:MODEL[=WEIGHT]")
    return parsed


def _ensemble_entry(entry: str) -> tuple[str, float]:
    spec, equals, raw_weight = entry.strip().rpartition("=")
    if not equals:
        spec, raw_weight = entry.strip(), ""
    provider, model = parse_model_spec(spec)
    if not equals:
        return f"{provider}:{model}", DEFAULT_WEIGHT
    try:
        weight = float(raw_weight)
    except ValueError:
        weight = math.nan
    if not (math.isfinite(weight) and weight > 0):
        raise ValueError(f"the weight in {entry!r} must be a positive number (SPEC=WEIGHT, e.g. openai:gpt-5=2)")
    return f"{provider}:{model}", weight


def _known() -> str:
    return "known providers: " + ", ".join(sorted(PROVIDERS))
