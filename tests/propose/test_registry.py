"""Model specs, make_chat, ensembles, prices, and that the SDKs load only when used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kernelwright.propose.llm import (
    PROVIDERS,
    AnthropicChat,
    OpenAIChat,
    RetryPolicy,
    ScriptedChat,
    make_chat,
    parse_ensemble,
    parse_model_spec,
    price_of,
)
from tests.propose.fake_llm_servers import FakeLLMServer


def test_providers() -> None:
    assert set(PROVIDERS) == {"openai", "anthropic", "scripted"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("openai:gpt-5", ("openai", "gpt-5")),
        (" anthropic:claude-sonnet-4-5 ", ("anthropic", "claude-sonnet-4-5")),
        ("openai:llama3.1:70b", ("openai", "llama3.1:70b")),  # Ollama tags keep their colon
        ("scripted:/tmp/r.jsonl", ("scripted", "/tmp/r.jsonl")),
    ],
)
def test_parse_model_spec(spec: str, expected: tuple[str, str]) -> None:
    assert parse_model_spec(spec) == expected


@pytest.mark.parametrize("spec", ["gpt-5", ":gpt-5", "openai:", "openai:  ", ""])
def test_malformed_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="is not PROVIDER:MODEL.*known providers: anthropic, openai, scripted"):
        parse_model_spec(spec)


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown provider 'gemini'.*known providers: anthropic, openai, scripted"):
        make_chat("gemini:pro")


def test_make_chat_builds_each_provider(tmp_path: Path) -> None:
    assert isinstance(make_chat("openai:gpt-5", api_key="k"), OpenAIChat)
    assert isinstance(make_chat("anthropic:claude-haiku-4-5", api_key="k"), AnthropicChat)
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"text": "hi"}) + "\n")
    chat = make_chat(f"scripted:{path}", cycle=True)
    assert isinstance(chat, ScriptedChat) and chat.name == f"scripted:{path}"


def test_make_chat_passes_kwargs_through_to_a_working_client(openai_server: FakeLLMServer) -> None:
    chat = make_chat("openai:gpt-4o", base_url=openai_server.url, retry=RetryPolicy(max_attempts=1))
    assert chat.name == "openai:gpt-4o"
    assert chat.complete("s", "u", max_tokens=8, temperature=None).usage.calls == 1
    assert openai_server.requests[0].body["model"] == "gpt-4o"


def test_parse_ensemble_weights() -> None:
    assert parse_ensemble(["openai:gpt-5=2", "anthropic:claude-sonnet-4-5", "openai:gpt-5-mini=0.5"]) == [
        ("openai:gpt-5", 2.0),
        ("anthropic:claude-sonnet-4-5", 1.0),
        ("openai:gpt-5-mini", 0.5),
    ]


def test_at_sign_stays_in_the_model_name() -> None:
    assert parse_ensemble(["anthropic:claude-sonnet-4-5@20250929=3"]) == [("anthropic:claude-sonnet-4-5@20250929", 3.0)]


@pytest.mark.parametrize("weight", ["0", "-1", "abc", "", "nan", "inf"])
def test_bad_weights(weight: str) -> None:
    with pytest.raises(ValueError, match="must be a positive number"):
        parse_ensemble([f"openai:gpt-5={weight}"])


def test_bad_ensembles() -> None:
    with pytest.raises(ValueError, match="names no model"):
        parse_ensemble([])
    with pytest.raises(ValueError, match="listed twice"):
        parse_ensemble(["openai:gpt-5", "openai:gpt-5=3"])
    with pytest.raises(ValueError, match="unknown provider 'mistral'"):
        parse_ensemble(["mistral:large=2"])


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [("gpt-5", "gpt-5"), ("gpt-4o-2024-08-06", "gpt-4o"), ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5")],
)
def test_prices_match_dated_snapshots(model: str, priced_as: str) -> None:
    assert price_of(model) == price_of(priced_as) and price_of(model).priced


@pytest.mark.parametrize("model", ["gpt-5-nano", "gpt-4o-mini", "llama3"])
def test_unknown_models_unpriced(model: str) -> None:
    price = price_of(model)
    assert (price.priced, price.input_per_mtok, price.output_per_mtok) == (False, 0.0, 0.0)


def test_sdks_imported_only_when_a_client_is_built() -> None:
    code = (
        "import sys, kernelwright.propose.llm, kernelwright.propose.parse\n"
        "print(sorted(m for m in ('openai', 'anthropic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
