"""A search's verdicts with the reference worker kept from verdict to verdict, against a fresh
reference each verdict, side by side in one run.

    python benchmarks/kept_reference.py [--device cpu|cuda] [--verdicts N] [--repeats R]
                                        [--task TASK --candidate CANDIDATE]

Each repeat judges the same candidate N times in a row through one `PairPool`, once with
`keep_reference=False` (what a search did before 94ede5b: both workers new each verdict,
pre-started while the previous verdict wraps up) and once with `keep_reference=True` (the
reference worker of the task serves the next verdict; only candidate workers are started
ahead), alternating which goes first. The candidate's build is made once before, so every
verdict loads a cached build. Prints the median verdict wall time of each mode, the whole
sequence's wall time, and the CPU time of the whole process tree (this process and every
worker reaped by the end: a kept reference is reaped when its pool closes), with the ratios.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kernelwright.judge.pairs import PairPool  # noqa: E402
from kernelwright.judge.verify import VerifyOptions, resolve_device, verify_files  # noqa: E402


def _cpu() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def sequence(task: Path, cand: Path, opts: VerifyOptions, n: int, keep: bool) -> dict[str, float]:
    """N verdicts through one pool; their median wall time, the sequence's wall and CPU time."""
    times = []
    c0, w0 = _cpu(), time.perf_counter()
    with PairPool(keep_reference=keep) as pool:
        for _ in range(n):
            t0 = time.perf_counter()
            result = verify_files(task, cand, opts, pool=pool)
            times.append(time.perf_counter() - t0)
            if not result.accepted:
                raise SystemExit(f"the candidate was rejected: {result.reasons}")
    return {"median_s": statistics.median(times), "wall_s": time.perf_counter() - w0, "cpu_s": _cpu() - c0}


def main() -> int:
    """Run both modes `--repeats` times and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None)
    ap.add_argument("--verdicts", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--task", type=Path, default=ROOT / "examples" / "elementwise" / "task.py")
    ap.add_argument("--candidate", type=Path, default=None)
    args = ap.parse_args()
    device = resolve_device(args.device)
    cand = args.candidate or args.task.parent / ("cpu_c.py" if device == "cpu" else "cuda_nvrtc.py")
    opts = VerifyOptions(device=device, compile_baseline=False, extra_rounds=False)
    verify_files(args.task, cand, opts)  # the build, once
    rows: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for r in range(args.repeats):
        for keep in ((False, True) if r % 2 == 0 else (True, False)):
            rows[keep].append(sequence(args.task, cand, opts, args.verdicts, keep))
    print(f"{args.verdicts} verdicts of {cand.name} on {device}, {args.repeats} repeats (medians of repeats)")
    print(f"{'mode':<22}{'verdict s':>10}{'sequence s':>12}{'CPU s':>8}")
    med = {k: {f: statistics.median(x[f] for x in v) for f in ("median_s", "wall_s", "cpu_s")}
           for k, v in rows.items()}
    for keep, label in ((False, "fresh reference"), (True, "kept reference")):
        m = med[keep]
        print(f"{label:<22}{m['median_s']:>10.2f}{m['wall_s']:>12.1f}{m['cpu_s']:>8.1f}")
    ratio = {f: med[True][f] / med[False][f] for f in ("median_s", "wall_s", "cpu_s")}
    print(f"{'kept / fresh':<22}{ratio['median_s']:>10.2f}{ratio['wall_s']:>12.2f}{ratio['cpu_s']:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
