"""The LLM chat layer: provider clients, retries, limits, prices and model specs."""

from kernelwright.propose.llm.anthropic_chat import AnthropicChat
from kernelwright.propose.llm.base import (
    PRICES,
    ChatError,
    ChatModel,
    ChatReply,
    Price,
    RetryPolicy,
    concurrency_limit,
    cost_usd,
    price_of,
    set_concurrency_limit,
)
from kernelwright.propose.llm.openai_chat import OpenAIChat
from kernelwright.propose.llm.registry import PROVIDERS, make_chat, parse_ensemble, parse_model_spec
from kernelwright.propose.llm.scripted import ScriptedChat

__all__ = [
    "PRICES",
    "PROVIDERS",
    "AnthropicChat",
    "ChatError",
    "ChatModel",
    "ChatReply",
    "OpenAIChat",
    "Price",
    "RetryPolicy",
    "ScriptedChat",
    "concurrency_limit",
    "cost_usd",
    "make_chat",
    "parse_ensemble",
    "parse_model_spec",
    "price_of",
    "set_concurrency_limit",
]
