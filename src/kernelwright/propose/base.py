"""What every proposer shares: the request it answers, the proposal it returns, usage.

A proposer turns a `ProposalRequest` (the task, the target form, parents with their
feedback) into one `Proposal`: candidate source that defines `ModelNew`, or a
one-sentence failure saying why there is none. Proposers never judge anything; the
search loop hands every proposal to the judge.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

STAGES = ("translate", "repair", "optimize", "crossover")


@dataclass(frozen=True)
class Usage:
    """LLM usage of one or more calls; all zeros for proposers that need no LLM."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other))))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Parent:
    """A kernel a proposer may build on, with what the judge said about it."""

    candidate_id: str
    source: str
    verdict: str  # "accepted" | "rejected"
    speedup_vs_eager: float | None = None
    feedback: str = ""  # trimmed: compiler error, where outputs differ, timings, profile summary
    task_source: str = ""  # set for archive examples from other tasks


@dataclass(frozen=True)
class ProposalRequest:
    """Everything a proposer may use to write one candidate."""

    task_source: str
    task_name: str
    target: str  # a form name from kernelwright.forms (nvrtc, triton, c, cuda_inline, cpp_inline)
    device: str  # "cpu" | "cuda"
    stage: str  # one of STAGES
    device_facts: str = ""
    parents: tuple[Parent, ...] = ()
    examples: tuple[Parent, ...] = ()  # verified kernels of earlier tasks, most similar first
    best_speedup: float | None = None
    seed: int = 0  # proposers that draw at random use this, so a run can be replayed


@dataclass(frozen=True)
class Proposal:
    """One candidate (or the reason there is none) and what producing it cost."""

    proposer: str
    source: str | None
    failure: str | None = None
    prompt: str | None = None
    reply: str | None = None
    parent_ids: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    note: str = ""  # what changed, e.g. "BLOCK_SIZE 256 -> 512"

    def __post_init__(self) -> None:
        if (self.source is None) == (self.failure is None):
            raise ValueError("a proposal holds either source or a failure, not both or neither")


@runtime_checkable
class Proposer(Protocol):
    """Writes candidates. `name` is what the store and reports show ("openai:gpt-5", "inductor")."""

    name: str

    def propose(self, request: ProposalRequest) -> Proposal:
        """Return one proposal; never raise for a bad reply (record it as a failure instead)."""
        ...
