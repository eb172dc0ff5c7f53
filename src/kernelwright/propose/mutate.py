"""Parameter mutation: vary a verified kernel's launch and tiling constants, no LLM needed.

Block sizes, warps, stages, unrolling and vector widths are where a correct kernel
most often leaves speed on the table, and they are usually plain literals. This
proposer finds such literals in the parent's source (Python, Triton, C++ or CUDA),
moves one or two of them to a neighbouring power of two, and lets the judge keep
whatever is faster. A change that breaks the kernel is simply rejected.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from kernelwright.propose.base import Proposal, ProposalRequest

# Names that hold launch or tiling parameters, matched case-insensitively as a whole
# identifier or a part of it (XBLOCK, BLOCK_SIZE_M, num_warps, kThreads, TILE_K...).
_PARAM_NAME = (r"[A-Za-z_]*(?:BLOCK|TILE|WARPS?|STAGES|UNROLL|VEC(?:TOR)?(?:_?WIDTH|_?SIZE)?|THREADS"
               r"|GROUP_SIZE|SPLIT_?K|ROWS_PER|COLS_PER|ITEMS_PER)[A-Za-z0-9_]*")
_LIMITS = {"warp": (1, 32), "stage": (1, 8), "unroll": (1, 32), "vec": (1, 16), "thread": (32, 1024),
           "group": (1, 64), "split": (1, 16)}
_DEFAULT_LIMITS = (1, 8192)
_MAX_TRIES = 32

# Definitions we rewrite: Python/Triton assignments and keyword arguments, C macros,
# C/C++ constants and template arguments with a name. Each keeps the value in group "v".
_PATTERNS = [
    re.compile(rf"(?im)^(?P<pre>[ \t]*(?P<n>{_PARAM_NAME})[ \t]*(?::[ \t]*[\w.\[\]]+[ \t]*)?=[ \t]*)(?P<v>\d+)\b"),
    re.compile(rf"(?i)(?P<pre>\b(?P<n>{_PARAM_NAME})[ \t]*=[ \t]*)(?P<v>\d+)\b(?=[ \t]*[,)])"),
    re.compile(rf"(?im)^(?P<pre>[ \t]*#[ \t]*define[ \t]+(?P<n>{_PARAM_NAME})[ \t]+\(?)(?P<v>\d+)\b"),
    re.compile(rf"(?i)(?P<pre>\b(?:constexpr|const)[ \t]+(?:static[ \t]+)?(?:unsigned[ \t]+)?(?:int|int32_t|int64_t"
               rf"|size_t|long|uint32_t|unsigned)[ \t]+(?P<n>{_PARAM_NAME})[ \t]*=[ \t]*)(?P<v>\d+)\b"),
]
# Tuple assignments such as `BLOCK_M, BLOCK_N, BLOCK_K = 64, 64, 32`.
_TUPLE = re.compile(r"(?m)^[ \t]*(?P<names>[A-Za-z_]\w*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)+)[ \t]*=[ \t]*"
                    r"(?P<values>\d+(?:[ \t]*,[ \t]*\d+)+)[ \t]*$")
_NAME_RE = re.compile(rf"(?i){_PARAM_NAME}")


@dataclass(frozen=True)
class Tunable:
    """One literal that looks like a launch or tiling parameter."""

    name: str
    value: int
    start: int  # character offsets of the literal in the source
    end: int


def find_tunables(source: str) -> list[Tunable]:
    """Literals defining launch/tiling parameters, in source order, without overlaps."""
    found: dict[int, Tunable] = {}
    # Tuples first: the keyword pattern would misread `A, B = 64, 32` as `B = 64`.
    for m in _TUPLE.finditer(source):
        names = [n.strip() for n in m.group("names").split(",")]
        values = list(re.finditer(r"\d+", m.group("values")))
        if len(names) != len(values):
            continue
        for name, v in zip(names, values):
            if _NAME_RE.fullmatch(name) and 0 < int(v.group()) <= 1 << 16:
                start = m.start("values") + v.start()
                found.setdefault(start, Tunable(name, int(v.group()), start, start + len(v.group())))
    for pattern in _PATTERNS:
        for m in pattern.finditer(source):
            value = int(m.group("v"))
            if value <= 0 or value > 1 << 16:
                continue
            found.setdefault(m.start("v"), Tunable(m.group("n"), value, m.start("v"), m.end("v")))
    # `R0_BLOCK: tl.constexpr = 1024` inside a Triton kernel is derived from the row length
    # (Inductor's persistent reductions): shrinking it breaks the kernel, so it is not a knob.
    return [found[k] for k in sorted(found) if not _derived(source, found[k])]


def _derived(source: str, t: Tunable) -> bool:
    line_start = source.rfind("\n", 0, t.start) + 1
    return "tl.constexpr" in source[line_start:t.start] and "=" in source[line_start:t.start]


def _limits(name: str) -> tuple[int, int]:
    low = name.lower()
    for key, bounds in _LIMITS.items():
        if key in low:
            return bounds
    return _DEFAULT_LIMITS


def neighbours(t: Tunable) -> list[int]:
    """Values one step away: halve or double a power of two, else +-25% rounded."""
    lo, hi = _limits(t.name)
    if t.value & (t.value - 1) == 0:
        options = [t.value // 2, t.value * 2]
    else:
        options = [max(1, round(t.value * 0.75)), round(t.value * 1.25) + 1]
    return [v for v in options if lo <= v <= hi and v != t.value]


def apply(source: str, changes: list[tuple[Tunable, int]]) -> str:
    """The source with each tunable's literal replaced (offsets refer to the original source)."""
    out = source
    for t, value in sorted(changes, key=lambda c: c[0].start, reverse=True):
        out = out[:t.start] + str(value) + out[t.end:]
    return out


def mutate(source: str, rng: random.Random, max_changes: int = 2,
           avoid: set[str] | None = None) -> tuple[str, str] | None:
    """One mutated source and a note like "BLOCK_SIZE 256 -> 512", or None if nothing can change.

    Same-named definitions (a constant repeated in Python and in C) move together so the
    two sides stay consistent.
    """
    tunables = find_tunables(source)
    names = sorted({t.name for t in tunables if neighbours(t)})
    if not names:
        return None
    for _ in range(_MAX_TRIES):
        picked = rng.sample(names, k=min(len(names), rng.randint(1, max_changes)))
        changes, notes = [], []
        for name in picked:
            group = [t for t in tunables if t.name == name]
            value = rng.choice(neighbours(group[0]))
            changes += [(t, value) for t in group if t.value == group[0].value]
            notes.append(f"{name} {group[0].value} -> {value}")
        new = apply(source, changes)
        if new != source and (avoid is None or new not in avoid):
            return new, ", ".join(notes)
    return None


class MutationProposer:
    """Proposes a neighbour of the best verified parent's launch and tiling parameters."""

    name = "mutate"

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def applicable(self, request: ProposalRequest) -> bool:
        """Whether the first parent has a literal this proposer could move."""
        return bool(request.parents) and any(neighbours(t) for t in find_tunables(request.parents[0].source))

    def propose(self, request: ProposalRequest) -> Proposal:
        """Mutate the first parent; a failure when it has no tunable literal left to move."""
        if not request.parents:
            return Proposal(self.name, None, failure="parameter mutation needs a verified parent kernel")
        parent = request.parents[0]
        self._seen.add(parent.source)
        result = mutate(parent.source, random.Random(request.seed), avoid=self._seen)
        if result is None:
            return Proposal(self.name, None, failure="the parent has no launch or tiling parameter left to vary",
                            parent_ids=(parent.candidate_id,))
        source, note = result
        self._seen.add(source)
        return Proposal(self.name, source, parent_ids=(parent.candidate_id,), note=note)
