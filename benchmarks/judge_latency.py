"""Wall time per verdict, split by phase: each candidate form new and cached, cold and pre-started.

    python benchmarks/judge_latency.py [--device cpu|cuda] [--repeats N] [--pairs TASK:CANDIDATE ...]
                                       [--json FILE] [--confinement]

States, each on its own build cache:
  new           an empty build cache (the candidate compiles) and workers started for it:
                what one `kernelwright verify` costs;
  cached        the same candidate again with its build kept;
  new+pool      an empty build cache, with the worker pair pre-started (judge.pairs): what
                each verdict of a search costs, where the next pair starts while the
                previous verdict wraps up;
  cached+pool   both.
Device ceilings are measured once up front and shared by every run, so no row pays for
them. Prints one row per candidate and state with the median of each phase, and which
phase dominates; by default one candidate per form for each shipped example. The
precompiled torch header that load_inline C++ builds share is built before the table.

With --confinement, instead: each candidate's cached verdict (workers started for it, and
pre-started) with the candidate's worker confined and unconfined, alternating, side by side:
what confinement (sandbox.confine) adds to a verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kernelwright.judge.pairs import PairPool  # noqa: E402
from kernelwright.sandbox.process import Worker  # noqa: E402
from kernelwright.judge.verify import VerifyOptions, pair_spec, verify_files  # noqa: E402

PHASES = ("start", "compile", "correctness", "timing")
STATES = ("new", "cached", "new+pool", "cached+pool")
FORM_FILES = {"cpu": ["cpu_c.py", "cpu_cpp.py"],
              "cuda": ["cuda_nvrtc.py", "triton_kernel.py", "cuda_inline.py"]}


def default_pairs(device: str) -> list[tuple[str, str]]:
    """Every shipped example candidate for the device, one per form and task."""
    pairs = []
    for task in sorted((ROOT / "examples").glob("*/task.py")):
        for form in FORM_FILES[device]:
            cand = task.parent / form
            if cand.exists():
                pairs.append((str(task), str(cand)))
    return pairs


def options(device: str, confine: bool = True) -> VerifyOptions:
    """What the search judges with."""
    return VerifyOptions(device=device, compile_baseline=False, confine=confine)


_OPS: dict[str, list[float]] = {}  # "role:op[:target]" -> [requests, seconds] in the current run


def _count_requests() -> None:
    """Account every judge-to-worker request by role and op, to show where a verdict waits.

    Wraps Worker.request in this (trusted, benchmark) process only; workers are untouched.
    """
    inner = Worker.request

    def request(self: Worker, header: dict, blobs: list | None = None, timeout: float = 600.0):  # type: ignore[type-arg]
        t0 = time.perf_counter()
        try:
            return inner(self, header, blobs, timeout)
        finally:
            key = f"{self.role}:{header.get('op')}" + (f":{header['target']}" if "target" in header else "")
            acc = _OPS.setdefault(key, [0, 0.0])
            acc[0] += 1
            acc[1] += time.perf_counter() - t0

    Worker.request = request  # type: ignore[method-assign]


def one_run(task: str, cand: str, device: str, cache: Path, pool: PairPool | None = None,
            use_pool: bool = True, confine: bool = True) -> dict[str, float]:
    """One verdict on `cache`; with `pool` and `use_pool`, its workers were started (and finished
    starting) before. Without `use_pool`, a pair the pool is still starting finishes first, so
    it does not compete with the verdict being measured."""
    os.environ["KERNELWRIGHT_CACHE"] = str(cache)
    if pool is not None:
        if use_pool:
            pool.refill(pair_spec(options(device, confine), device))
        pool.wait_ready()
        pool = pool if use_pool else None
    _OPS.clear()
    t0 = time.perf_counter()
    result = verify_files(task, cand, options(device, confine), pool=pool)
    wall = time.perf_counter() - t0
    # Every phase and sub-step the judge reports (timing.candidate, timing.eager, ...), so the
    # JSON shows what dominates inside a phase too.
    row = {p: result.phases_s.get(p, 0.0) for p in set(PHASES) | set(result.phases_s)}
    row["total"] = wall
    row.update({f"op.{k}.n": v[0] for k, v in _OPS.items()})
    row.update({f"op.{k}.s": v[1] for k, v in _OPS.items()})
    row["accepted"] = float(result.accepted)
    if not result.accepted:
        print(f"  note: {Path(cand).parent.name}/{Path(cand).name} rejected: "
              f"{[r.check for r in result.reasons]} {result.reasons[0].detail[:200]}", file=sys.stderr)
    return row


def main() -> None:
    """Measure and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--pairs", nargs="*", default=None, help="TASK:CANDIDATE pairs")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    ap.add_argument("--ops", action="store_true", help="also print requests per worker op (count, seconds)")
    ap.add_argument("--confinement", action="store_true", help="confined against unconfined verdicts instead")
    args = ap.parse_args()
    _count_requests()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    pairs = [tuple(p.split(":", 1)) for p in args.pairs] if args.pairs else default_pairs(device)
    base = Path(tempfile.mkdtemp(prefix="kw-bench-"))
    ceilings = base / "ceilings-seed"
    ceilings.mkdir()
    # Measure ceilings once, outside every timed row. The precompiled torch header of
    # load_inline C++ builds is shared by every row and built here too: a search builds it
    # once per toolchain and flags, so "new" means a new candidate, not a new header.
    os.environ["KERNELWRIGHT_PCH_DIR"] = str(base / "pch")
    one_run(*pairs[0], device, ceilings)
    for task, cand in pairs:
        if "load_inline" in Path(cand).read_text():
            one_run(task, cand, device, ceilings)
    if args.confinement:
        confinement_table(pairs, device, ceilings, args.repeats, args.json)
        shutil.rmtree(base, ignore_errors=True)
        return
    rows = []
    with PairPool() as pool:
        for task, cand in pairs:
            name = f"{Path(cand).parent.name}/{Path(cand).stem}"
            runs: dict[str, list[dict[str, float]]] = {s: [] for s in STATES}
            for r in range(args.repeats):
                for pooled in (False, True):
                    cache = base / f"{name.replace('/', '_')}_{r}_{int(pooled)}"
                    cache.mkdir(parents=True)
                    shutil.copy(ceilings / "ceilings.json", cache / "ceilings.json")
                    suffix = "+pool" if pooled else ""
                    runs["new" + suffix].append(one_run(task, cand, device, cache, pool, pooled))
                    runs["cached" + suffix].append(one_run(task, cand, device, cache, pool, pooled))
            for state in STATES:
                med = {k: statistics.median(r.get(k, 0.0) for r in runs[state]) for k in set().union(*runs[state])}
                dominant = max(PHASES, key=lambda p: med[p])
                rows.append({"candidate": name, "state": state, **med, "dominant": dominant})
    print(f"\njudge latency on {device} ({args.repeats} repeat(s), median seconds):")
    head = f"{'candidate':<34}{'state':<13}" + "".join(f"{p:>12}" for p in PHASES) + f"{'total':>10}  dominant"
    print(head)
    for r in rows:
        print(f"{r['candidate']:<34}{r['state']:<13}" + "".join(f"{r[p]:>12.2f}" for p in PHASES)
              + f"{r['total']:>10.2f}  {r['dominant']}" + ("" if r["accepted"] else "  (rejected)"))
    if args.ops:
        for r in rows:
            ops = sorted({k[3:-2] for k in r if k.startswith("op.")}, key=lambda k: -r[f"op.{k}.s"])
            print(f"{r['candidate']} {r['state']}: " + ", ".join(
                f"{k} {int(r[f'op.{k}.n'])}x {r[f'op.{k}.s']:.2f}s" for k in ops if r[f"op.{k}.s"] >= 0.01))
    for state in STATES:
        totals = [r["total"] for r in rows if r["state"] == state]
        print(f"median total, {state}: {statistics.median(totals):.2f} s over {len(totals)} candidates")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    shutil.rmtree(base, ignore_errors=True)


def confinement_table(pairs: list[tuple[str, str]], device: str, cache: Path, repeats: int,
                      json_path: str | None) -> None:
    """Cached verdicts confined and unconfined, alternating; medians and their difference."""
    rows = []
    with PairPool() as pool:
        for task, cand in pairs:
            name = f"{Path(cand).parent.name}/{Path(cand).stem}"
            for pooled in (False, True):
                totals: dict[bool, list[float]] = {True: [], False: []}
                starts: dict[bool, list[float]] = {True: [], False: []}
                for _ in range(repeats):
                    for confine in (True, False):
                        r = one_run(task, cand, device, cache, pool, pooled, confine)
                        totals[confine].append(r["total"])
                        starts[confine].append(r["start"])
                row = {"candidate": name, "state": "cached+pool" if pooled else "cached",
                       **{f"{k}_{'confined' if c else 'unconfined'}": statistics.median(v[c])
                          for k, v in (("total", totals), ("start", starts)) for c in (True, False)}}
                row["added"] = row["total_confined"] - row["total_unconfined"]
                rows.append(row)
    print(f"\nconfinement on {device} ({repeats} repeat(s) each, alternating; median seconds):")
    print(f"{'candidate':<34}{'state':<13}{'confined':>10}{'unconfined':>12}{'added':>8}"
          f"{'start c':>9}{'start u':>9}")
    for r in rows:
        print(f"{r['candidate']:<34}{r['state']:<13}{r['total_confined']:>10.2f}{r['total_unconfined']:>12.2f}"
              f"{r['added']:>+8.2f}{r['start_confined']:>9.2f}{r['start_unconfined']:>9.2f}")
    print(f"median added: {statistics.median(r['added'] for r in rows):+.3f} s over {len(rows)} rows")
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
