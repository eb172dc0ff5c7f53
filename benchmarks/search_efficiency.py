"""How many proposals the search needs to find the best kernel, against an oracle and random sampling.

    python benchmarks/search_efficiency.py [--seeds 20] [--budget 60]

A synthetic proposer draws from a pool of pre-written candidates whose correctness and
speed are known: a grid of launch configurations (block size x unroll x vector width)
with a speed landscape that has one best cell, a few local optima, and a region that
is wrong (too wide a vector for the tail). Translating draws any cell at random;
optimizing proposes a neighbour of the parent (one knob moved one step), as a good
LLM or the mutation proposer would; crossover takes each knob from one of two
parents. The judge is a table lookup with the known verdicts, so the benchmark
measures the search policy (selection, islands, crossover), not the judge.

Prints, over several seeds: proposals until the best cell is first accepted, for the
search, for random sampling without replacement from the pool, and for an oracle (1).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kernelwright.judge.result import JudgeResult, Reason, Timing, TimingStats  # noqa: E402
from kernelwright.judge.verify import VerifyOptions  # noqa: E402
from kernelwright.propose.base import Proposal, ProposalRequest  # noqa: E402
from kernelwright.search.loop import Search, SearchConfig, WeightedProposer  # noqa: E402
from kernelwright.store import Store  # noqa: E402

BLOCKS = [64, 128, 256, 512, 1024]
UNROLLS = [1, 2, 4, 8]
VECS = [1, 2, 4, 8]
TASK = ROOT / "examples" / "elementwise" / "task.py"


def source(cell: tuple[int, int, int]) -> str:
    b, u, v = cell
    return f"# synthetic candidate\nBLOCK = {BLOCKS[b]}\nUNROLL = {UNROLLS[u]}\nVEC = {VECS[v]}\n"


def landscape(cell: tuple[int, int, int]) -> float | None:
    """Speedup over eager of a cell, or None when that configuration is wrong."""
    b, u, v = cell
    if v == 3 and b == 4:
        return None  # the widest vector with the largest block misses the tail: wrong output
    best = (3, 2, 2)
    dist = sum(abs(x - y) for x, y in zip(cell, best))
    local = 0.4 if cell in ((0, 0, 3), (4, 3, 0)) else 0.0  # two decoys
    return round(3.0 - 0.45 * dist + local, 3)


ALL = [(b, u, v) for b in range(len(BLOCKS)) for u in range(len(UNROLLS)) for v in range(len(VECS))]
BEST = max((c for c in ALL if landscape(c) is not None), key=lambda c: landscape(c) or 0)
BY_SOURCE = {source(c): c for c in ALL}


class PoolProposer:
    """Proposes pool candidates the way a sensible proposer would, from the request's parents."""

    name = "synthetic"

    def propose(self, request: ProposalRequest) -> Proposal:
        rng = random.Random(request.seed)
        parents = [BY_SOURCE[p.source] for p in request.parents if p.source in BY_SOURCE]
        if request.stage == "crossover" and len(parents) == 2:
            cell = tuple(rng.choice((parents[0][i], parents[1][i])) for i in range(3))
        elif parents:
            cell = list(parents[0])
            knob = rng.randrange(3)
            sizes = (len(BLOCKS), len(UNROLLS), len(VECS))
            cell[knob] = min(sizes[knob] - 1, max(0, cell[knob] + rng.choice((-1, 1))))
            cell = tuple(cell)
        else:
            cell = rng.choice(ALL)
        return Proposal(self.name, source(cell), parent_ids=tuple(p.candidate_id for p in request.parents))


def table_judge(task: Path, candidate: Path, options: VerifyOptions) -> JudgeResult:
    """The known verdict of a pool candidate."""
    speed = landscape(BY_SOURCE[candidate.read_text()])
    if speed is None:
        return JudgeResult("rejected", [Reason("mismatch", "tail elements wrong")], [], None, [], {})
    stats = TimingStats(1.0 / speed, 0.01, 100, 12)
    timing = Timing(stats, TimingStats(1.0, 0.01, 100, 12), None, speed, None)
    return JudgeResult("accepted", [], [], timing, [], {})


def search_proposals(seed: int, budget: int, work: Path) -> int | None:
    """Proposals until the best cell is first accepted (None if the budget ran out)."""
    with Store(work / f"s{seed}.db") as store:
        cfg = SearchConfig(device="cpu", target="cpp", work_dir=work, budget=budget, parallel=1, seed=seed,
                           prebuild=False)
        search = Search(TASK, TASK.read_text(), "synthetic", [WeightedProposer(PoolProposer())], store, cfg,
                        judge=table_judge)
        search.run()
        for i, c in enumerate(store.candidates(search.run_id), start=1):
            if c.source == source(BEST) and c.verdict == "accepted":
                return i
    return None


def random_proposals(seed: int) -> int:
    """Random sampling without replacement: position of the best cell in a shuffled pool."""
    order = ALL[:]
    random.Random(seed).shuffle(order)
    return order.index(BEST) + 1


def main() -> None:
    """Run the comparison and print it."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--budget", type=int, default=60)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kw-search-bench-"))
    found = [search_proposals(s, args.budget, work) for s in range(args.seeds)]
    rand = [random_proposals(s) for s in range(args.seeds)]
    hits = [f for f in found if f is not None]
    print(f"pool: {len(ALL)} candidates, {sum(landscape(c) is None for c in ALL)} wrong; best {BEST} "
          f"at {landscape(BEST)}x; budget {args.budget}; {args.seeds} seeds")
    print(f"{'strategy':<28}{'median proposals':>18}{'mean':>8}{'found':>8}")
    print(f"{'oracle':<28}{1:>18}{1.0:>8.1f}{args.seeds:>8}")
    # A miss counts as infinitely many proposals, so the median is not flattered by dropping misses.
    med = statistics.median([f if f is not None else float("inf") for f in found])
    mean_hits = f"{statistics.mean(hits):.1f}" if hits else "-"
    print(f"{'search (kernelwright loop)':<28}{med:>18}{mean_hits:>8}{len(hits):>8}")
    print(f"{'random sampling':<28}{statistics.median(rand):>18}{statistics.mean(rand):>8.1f}{args.seeds:>8}")
    print("(mean over seeds that found it; a miss counts as infinite in the median)")
    print(f"search / random (median): {med / statistics.median(rand):.2f}")


if __name__ == "__main__":
    main()
