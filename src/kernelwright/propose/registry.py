"""Which proposers a search uses: `--model` specs to proposer objects, and the defaults.

A spec is `PROVIDER:NAME` for an LLM (`openai:gpt-5`, `anthropic:claude-sonnet-4-5`,
`scripted:replies.jsonl`), or the name of a proposer that needs no LLM (`inductor`,
`mutate`), each optionally weighted (see `kernelwright.propose.llm.registry`). With no
spec, LLMs whose API keys are set are used, and the LLM-free proposers always are, so
the search runs anywhere.
"""

from __future__ import annotations

import importlib
import os
from typing import Callable

from kernelwright.propose.base import Proposer

# name -> "module:class"; imported only when used (Inductor pulls in torch._inductor).
LLM_FREE = {"inductor": "kernelwright.propose.inductor:InductorProposer",
            "mutate": "kernelwright.propose.mutate:MutationProposer"}
DEFAULT_LLMS = {"OPENAI_API_KEY": "openai:gpt-5", "ANTHROPIC_API_KEY": "anthropic:claude-sonnet-4-5"}


def _make_free(name: str) -> Proposer:
    module, _, cls = LLM_FREE[name].partition(":")
    factory: Callable[[], Proposer] = getattr(importlib.import_module(module), cls)
    return factory()


def default_specs(env: dict[str, str] | None = None) -> list[str]:
    """LLMs whose keys are set, then the proposers that need no LLM."""
    env = dict(os.environ) if env is None else env
    return [spec for key, spec in DEFAULT_LLMS.items() if env.get(key)] + ["inductor", "mutate"]


def build_proposers(specs: list[str]) -> list[tuple[Proposer, float]]:
    """Proposer objects with their weights; ValueError with a clear sentence for a bad spec."""
    from kernelwright.propose.llm.registry import make_chat, parse_ensemble
    from kernelwright.propose.llm_proposer import LLMProposer

    free = LLM_FREE
    llm_specs = [s for s in specs if s.strip().partition("=")[0] not in free]
    out: list[tuple[Proposer, float]] = []
    for spec in specs:
        name, _, weight = spec.strip().partition("=")
        if name in free:
            out.append((_make_free(name), _weight(spec, weight)))
    # One parser for LLM specs and their weights; duplicates and bad weights fail there.
    out += [(LLMProposer(make_chat(s)), w) for s, w in (parse_ensemble(llm_specs) if llm_specs else [])]
    if len({p.name for p, _ in out}) != len(out):
        raise ValueError("a proposer is listed twice; give it a larger weight instead (e.g. mutate=2)")
    return out


def _weight(spec: str, raw: str) -> float:
    if not raw:
        return 1.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise ValueError(f"the weight in {spec!r} must be a positive number (e.g. mutate=2)")
    return value
