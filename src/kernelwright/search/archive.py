"""The innovation archive: verified kernels of earlier tasks, retrieved by similarity.

A kernel that won on a similar task (the same ops, the same shapes of computation)
is the best example a proposer can get. Similarity is Jaccard overlap of the task
sources' identifiers (torch ops, module names), which needs no model and no network.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from kernelwright.propose.base import Parent

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
_STOP = frozenset("self def return import torch class Model forward super init get_inputs get_init_inputs "
                  "None True False nn Module randn rand batch_size dim".split())


def tokens(source: str) -> frozenset[str]:
    """The identifiers that say what a task computes."""
    return frozenset(t for t in _IDENT.findall(source) if t not in _STOP)


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of two task sources' identifiers, 0..1."""
    ta, tb = tokens(a), tokens(b)
    return len(ta & tb) / len(ta | tb) if ta | tb else 0.0


def retrieve(task_source: str, entries: Iterable[Any], k: int = 2) -> tuple[Parent, ...]:
    """The k archive entries whose tasks look most like this one, as prompt examples.

    `entries` are the store's archive records (task_source, candidate source, speedup).
    """
    scored = []
    for e in entries:
        score = similarity(task_source, e.task_source)
        if score > 0:
            scored.append((score, e))
    scored.sort(key=lambda se: -se[0])
    return tuple(Parent(candidate_id=e.candidate_id, source=e.source, verdict="accepted",
                        speedup_vs_eager=e.speedup_vs_eager, task_source=e.task_source)
                 for _, e in scored[:k])
