"""Verdicts per minute of `kernelwright bench`, and where each verdict's time goes.

    python benchmarks/bench_throughput.py SUITE [--candidates DIR] [--levels 1,2] [--tasks GLOB]
                                          [--device cpu|cuda] [--out DIR] [--no-compile-baseline]

Without --candidates it judges the identity sweep (each selected task's own Model as its
candidate; scripts/identity_candidates.py writes the same files). It runs the bench in this
process into a fresh OUT (nothing resumed), then prints: verdicts, wall time, verdicts per
minute, and the mean seconds of each phase the judge reports (worker start, reference,
compile, correctness, timing and its steps), with each top-level phase's share of the
verdicts' wall time. KernelBench's own harness, for comparison, times a built candidate in
6-8 s on the H200 (issue 14); the goal is about 6 s a verdict.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from kernelwright.bench import BenchOptions, run_bench
from kernelwright.bench.suite import find_tasks, write_identity_candidates
from kernelwright.judge.verify import VerifyOptions


def main() -> int:
    """Run the bench once and print its throughput and time split."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", type=Path)
    ap.add_argument("--candidates", type=Path, default=None)
    ap.add_argument("--levels", default=None)
    ap.add_argument("--tasks", default=None)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", type=Path, default=None, help="a fresh folder (default: a temporary one)")
    ap.add_argument("--no-compile-baseline", action="store_true")
    args = ap.parse_args()
    levels = frozenset(int(x) for x in args.levels.split(",")) if args.levels else None
    work = Path(tempfile.mkdtemp(prefix="kw-bench-tp-"))
    out = args.out or work / "out"
    if (out / "results.jsonl").exists():
        raise SystemExit(f"{out} already holds results: give a fresh --out (this measures judging, not resuming)")
    cands = args.candidates
    if cands is None:
        cands = work / "identity"
        write_identity_candidates(find_tasks(args.suite, set(levels) if levels else None, args.tasks), cands)
    opts = BenchOptions(out=out, levels=levels, pattern=args.tasks,
                        verify=VerifyOptions(device=args.device, compile_baseline=not args.no_compile_baseline))
    t0 = time.perf_counter()
    _, rows = run_bench(args.suite, cands, opts)
    wall = time.perf_counter() - t0
    judged = [r for r in rows if r.candidate]
    print(f"{len(judged)} verdicts in {wall:.1f} s: {60 * len(judged) / wall:.2f} verdicts per minute "
          f"({wall / max(1, len(judged)):.1f} s each); "
          + ", ".join(f"{v} {sum(str(r.verdict) == v for r in judged)}" for v in ("accepted", "rejected", "error")))
    by_phase: dict[str, list[float]] = defaultdict(list)
    for r in judged:
        for k, v in r.phases_s.items():
            by_phase[k].append(v)
    total = sum(r.seconds for r in judged) or 1.0
    print(f"{'phase':28s} {'mean s':>8s} {'max s':>8s} {'share':>7s}")
    for k in sorted(by_phase, key=lambda k: (k.split(".")[0], "." in k, k)):
        v = by_phase[k]
        share = "" if "." in k else f"{100 * sum(v) / total:6.1f}%"
        print(f"{k:28s} {statistics.fmean(v):8.2f} {max(v):8.2f} {share:>7s}")
    print(f"results: {out / 'results.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
