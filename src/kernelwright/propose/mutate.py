"""Parameter mutation: vary a verified kernel's launch and tiling constants, no LLM needed.

Block sizes, warps, stages, unrolling, vector widths, OpenMP team sizes and loop
chunks are where a correct kernel most often leaves speed on the table, and they are
usually plain literals. This proposer finds such literals in the parent's source
(Python, Triton, C++ or CUDA), moves one or two of them to a neighbouring power of two,
and lets the judge keep whatever is faster. A change that breaks the kernel is simply
rejected.

A definition may state the range it is safe in with a comment on its line, `// range
1..8` or `# range 1..8` (the Inductor proposer's C++ does, for knobs that can only go
down from what Inductor generated); such a knob stays in its range, steps by halving
and doubling, and may be larger than the usual limits.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import dataclass

from kernelwright.propose.base import Proposal, ProposalRequest

# Names that hold launch or tiling parameters, matched case-insensitively as a whole
# identifier or a part of it (XBLOCK, BLOCK_SIZE_M, num_warps, kThreads, TILE_K...).
_PARAM_NAME = (r"[A-Za-z_]*(?:BLOCK|TILE|WARPS?|STAGES|UNROLL|VEC(?:TOR)?(?:_?WIDTH|_?SIZE)?|THREADS"
               r"|GROUP_SIZE|SPLIT_?K|ROWS_PER|COLS_PER|ITEMS_PER|CHUNK|OMP_TEAM)[A-Za-z0-9_]*")
_LIMITS = {"warp": (1, 32), "stage": (1, 8), "unroll": (1, 32), "vec": (1, 16), "thread": (32, 1024),
           "group": (1, 64), "split": (1, 16)}
_DEFAULT_LIMITS = (1, 8192)
_MAX_LITERAL = 1 << 16  # larger literals are sizes, not knobs, unless a stated range allows them
# A stated range, in a comment after the literal on the same line.
_RANGE = re.compile(r"[^\n]*?(?://|#)[ \t]*range[ \t]+(?P<lo>\d+)[ \t]*\.\.[ \t]*(?P<hi>\d+)")

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
    bounds: tuple[int, int] | None = None  # the range its definition states, if any


def _stated_range(source: str, end: int) -> tuple[int, int] | None:
    m = _RANGE.match(source, end)
    if m is None:
        return None
    lo, hi = int(m.group("lo")), int(m.group("hi"))
    return (lo, hi) if 0 < lo <= hi else None


def _tunable(name: str, value: int, start: int, end: int, source: str) -> Tunable | None:
    """The literal as a tunable, or None when it is out of any range a knob could have."""
    bounds = _stated_range(source, end)
    high = max(_MAX_LITERAL, bounds[1]) if bounds else _MAX_LITERAL
    return Tunable(name, value, start, end, bounds) if 0 < value <= high else None


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
            start = m.start("values") + v.start()
            t = _tunable(name, int(v.group()), start, start + len(v.group()), source)
            if _NAME_RE.fullmatch(name) and t is not None:
                found.setdefault(start, t)
    for pattern in _PATTERNS:
        for m in pattern.finditer(source):
            t = _tunable(m.group("n"), int(m.group("v")), m.start("v"), m.end("v"), source)
            if t is not None:
                found.setdefault(m.start("v"), t)
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
    """Values one step away: halve or double a power of two, else +-25% rounded.

    A knob with a stated range halves and doubles whatever its value, clamped to the
    range, so that its end (often the value the generator chose) stays reachable.
    """
    if t.bounds is not None:
        lo, hi = t.bounds
        options = sorted({min(hi, max(lo, v)) for v in (t.value // 2, t.value * 2)})
        return [v for v in options if v != t.value]
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


def steps(source: str, changes: int) -> list[tuple[str, str]]:
    """Every source `changes` knobs away, each knob moved one step, with its note; in a fixed order.

    Same-named definitions (a constant repeated in Python and in C) move together so the
    two sides stay consistent.
    """
    groups: dict[str, list[Tunable]] = {}
    for t in find_tunables(source):
        groups.setdefault(t.name, []).append(t)
    moves = {name: neighbours(group[0]) for name, group in groups.items()}
    names = sorted(name for name in groups if moves[name])
    out = []
    for combo in itertools.combinations(names, changes):
        for values in itertools.product(*(moves[name] for name in combo)):
            edits = [(t, v) for name, v in zip(combo, values) for t in groups[name] if t.value == groups[name][0].value]
            note = ", ".join(f"{name} {groups[name][0].value} -> {v}" for name, v in zip(combo, values))
            out.append((apply(source, edits), note))
    return out


def _fresh(source: str, changes: int, avoid: set[str] | None) -> list[tuple[str, str]]:
    return [(new, note) for new, note in steps(source, changes) if new != source and (avoid is None or new not in avoid)]


def mutate(source: str, rng: random.Random, max_changes: int = 2,
           avoid: set[str] | None = None) -> tuple[str, str] | None:
    """One mutated source and a note like "BLOCK_SIZE 256 -> 512", or None if nothing new can change.

    One or two knobs move (chosen at random, as many as are left when fewer are), never
    to a source in `avoid`.
    """
    first = rng.randint(1, max_changes)
    for changes in [first, *(k for k in range(1, max_changes + 1) if k != first)]:
        options = _fresh(source, changes, avoid)
        if options:
            return rng.choice(options)
    return None


def has_fresh_step(source: str, avoid: set[str], max_changes: int = 2) -> bool:
    """Whether `mutate` could still give a source not in `avoid`."""
    return any(_fresh(source, k, avoid) for k in range(1, max_changes + 1))


class MutationProposer:
    """Proposes a neighbour of the best verified parent's launch and tiling parameters."""

    name = "mutate"

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()  # proposals run on a thread pool: two must not pick one source

    def applicable(self, request: ProposalRequest) -> bool:
        """Whether the first parent has a literal this proposer could move to a source not yet proposed."""
        if not request.parents:
            return False
        with self._lock:
            seen = self._seen | {request.parents[0].source}
        return has_fresh_step(request.parents[0].source, seen)

    def propose(self, request: ProposalRequest) -> Proposal:
        """Mutate the first parent; a failure when it has no tunable literal left to move."""
        if not request.parents:
            return Proposal(self.name, None, failure="parameter mutation needs a verified parent kernel")
        parent = request.parents[0]
        with self._lock:
            self._seen.add(parent.source)
            result = mutate(parent.source, random.Random(request.seed), avoid=self._seen)
            if result is not None:
                self._seen.add(result[0])
        if result is None:
            return Proposal(self.name, None, failure="the parent has no launch or tiling parameter left to vary",
                            parent_ids=(parent.candidate_id,))
        source, note = result
        return Proposal(self.name, source, parent_ids=(parent.candidate_id,), note=note)
