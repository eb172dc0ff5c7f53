"""Frozen records that store queries return; each has `to_dict()` for JSON output."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

RUN_STATUSES = ("running", "finished", "interrupted", "failed")
VERDICTS = ("accepted", "rejected", "error")  # "error": the judge itself failed, not the candidate


class _Record:
    """Mixin: a plain dict of the fields, tuples turned into lists."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}  # type: ignore[call-overload]


@dataclass(frozen=True)
class RunRecord(_Record):
    """One search run over one task on one device."""

    id: str
    created: str  # ISO 8601, UTC
    updated: str
    status: str  # one of RUN_STATUSES
    task_path: str
    task_hash: str  # sha256 of the task source
    task_name: str
    task_source: str
    device: str
    config: dict[str, Any]
    best_candidate_id: str | None


@dataclass(frozen=True)
class VerdictRecord(_Record):
    """What the judge said about one candidate."""

    candidate_id: str
    verdict: str  # one of VERDICTS
    reasons: tuple[dict[str, Any], ...]  # [{"check": ..., "detail": ...}, ...]
    first_reason_check: str | None
    speedup_vs_eager: float | None
    speedup_vs_compile: float | None
    candidate_ms: float | None
    eager_ms: float | None
    compile_ms: float | None
    result_json: str
    judged_at: str
    judge_seconds: float | None


@dataclass(frozen=True)
class CandidateRecord(_Record):
    """One proposal of a run, with its verdict fields (all None until it is judged)."""

    id: str
    run_id: str
    source_hash: str | None  # sha256 of source; None for a proposal that produced no source
    source: str | None
    failure: str | None  # why a proposal produced no source
    proposer: str
    stage: str
    prompt: str | None
    reply: str | None
    note: str
    parent_ids: tuple[str, ...]  # in the order the proposer used them
    created: str
    generation: int
    island: int
    verdict: str | None = None
    reasons: tuple[dict[str, Any], ...] | None = None
    first_reason_check: str | None = None
    speedup_vs_eager: float | None = None
    speedup_vs_compile: float | None = None
    candidate_ms: float | None = None
    eager_ms: float | None = None
    compile_ms: float | None = None
    result_json: str | None = None
    judged_at: str | None = None
    judge_seconds: float | None = None


@dataclass(frozen=True)
class CrowningRecord(_Record):
    """How a run ended: its best kernel as a fresh process re-judged it, or none and why.

    These are the figures a run reports first; the search's own verdicts (one
    long-lived judge, many candidates) are in the candidates' fields.
    """

    run_id: str
    candidate_id: str | None  # the crowned candidate; None when no finalist held up
    path: str | None  # where best.py was written
    speedup_vs_eager: float | None  # the fresh re-judgement's
    speedup_vs_eager_interval: tuple[float, float] | None  # its 95% interval, when the judge gave one
    speedup_vs_compile: float | None
    speedup_vs_compile_interval: tuple[float, float] | None
    candidate_ms: float | None  # median per call, fresh re-judgement
    note: str  # "re-judged in a fresh process", or why nothing was crowned
    rejudged: tuple[dict[str, Any], ...]  # every finalist tried: candidate_id, verdict, speedup, reasons
    result_json: str | None  # the crowned kernel's whole fresh verdict
    crowned_at: str


@dataclass(frozen=True)
class ArchiveEntry(_Record):
    """The best accepted kernel of one task: an example for proposers working on another task."""

    task_hash: str
    task_name: str
    task_source: str
    candidate_id: str
    source: str
    speedup_vs_eager: float | None
