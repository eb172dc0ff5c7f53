"""Summarise an identity sweep's results.jsonl (`kernelwright bench` with each task's own Model as
its candidate): what docs/kernelbench.md records.

    python scripts/sweep_summary.py OUT/results.jsonl

Prints, per level and in all: tasks judged, accepted, each task not accepted with its reason;
the identity speedups' spread (they should sit at 1.00x: quantiles, the share whose interval
holds 1.0) and the five furthest from 1.00x; the tasks the judge flagged degenerate; what was
scaled down (no float64 reference, input sets made on use); the most GPU work a task's trials
left queued at return (the race check's measure); the seconds a verdict took.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections import Counter
from pathlib import Path


def _q(xs: list[float], q: float) -> float:
    """The q-quantile of xs (nearest rank)."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def main() -> int:
    """Print the sweep's summary."""
    rows = [json.loads(line) for line in Path(sys.argv[1]).read_text().splitlines() if line.strip()]
    by_level = Counter(r["task"].split("/")[0] for r in rows)
    acc = [r for r in rows if r["verdict"] == "accepted"]
    print(f"{len(rows)} tasks judged ({', '.join(f'{k} {v}' for k, v in sorted(by_level.items()))}); "
          f"{len(acc)} accepted")
    for lvl in sorted(by_level):
        n = sum(1 for r in acc if r["task"].startswith(lvl + "/"))
        print(f"  {lvl}: {n}/{by_level[lvl]} accepted")
    print("not accepted:")
    for r in rows:
        if r["verdict"] != "accepted":
            why = "; ".join(f"{x['check']}: {x['detail'][:300]}" for x in r["reasons"])
            print(f"  {r['task']}: {r['verdict']} ({why})")
    sp = [r["speedup_vs_eager"] for r in acc if r.get("speedup_vs_eager")]
    if sp:
        logs = [math.log(x) for x in sp]
        print(f"identity speedups ({len(sp)}): median {statistics.median(sp):.3f}x, geomean "
              f"{math.exp(statistics.fmean(logs)):.3f}x, 5%-95% {_q(sp, 0.05):.3f}-{_q(sp, 0.95):.3f}x, "
              f"min {min(sp):.3f}x, max {max(sp):.3f}x")
        within = [abs(x - 1) <= 0.02 for x in sp]
        print(f"  within 2% of 1.00x: {sum(within)}/{len(sp)}; within 5%: {sum(abs(x - 1) <= 0.05 for x in sp)}")
        holds = [r for r in acc if r.get("eager_interval") and r["eager_interval"][0] <= 1 <= r["eager_interval"][1]]
        print(f"  interval holds 1.00x: {len(holds)}/{sum(1 for r in acc if r.get('eager_interval'))}")
        print("  furthest from 1.00x:")
        for r in sorted(acc, key=lambda r: -abs(math.log(r["speedup_vs_eager"] or 1)))[:5]:
            print(f"    {r['task']}: {r['speedup_vs_eager']:.3f}x {r.get('eager_interval')} "
                  f"eager {r.get('eager_ms')} ms, candidate {r.get('candidate_ms')} ms")
    for label, key in (("degenerate", "degenerate task"), ("no float64 reference", "no float64 reference"),
                       ("input sets made on use", "large "), ("noisy timing", "timing was noisy")):
        hit = [(r["task"], f) for r in rows for f in r.get("findings", []) if f.startswith(key)]
        print(f"{label}: {len(hit)}")
        for task, f in hit:
            print(f"  {task}: {f[:240]}")
    pend = sorted(((r["max_pending_ms"], r["task"]) for r in rows if r.get("max_pending_ms") is not None),
                  reverse=True)
    if pend:
        # The race check's measure on accepted trials: how close honest tasks come to its bar.
        print(f"GPU work left queued at return (ms, the most of any trial; race bar 0.05): median "
              f"{statistics.median(p for p, _ in pend):.4f}, max {pend[0][0]:.4f}; highest: "
              + ", ".join(f"{t} {p:.4f}" for p, t in pend[:5]))
    secs = [r["seconds"] for r in rows if r.get("seconds")]
    if secs:
        print(f"seconds a verdict: median {statistics.median(secs):.1f}, mean {statistics.fmean(secs):.1f}, "
              f"max {max(secs):.1f}, total {sum(secs):.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
