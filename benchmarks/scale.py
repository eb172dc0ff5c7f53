"""Verdicts per minute on 1, 2 and N judging slots, side by side in one run (issue 16).

Builds a small suite in KernelBench's layout from the shipped examples (each task's own Model
as its candidate, REPEAT copies of each task), then judges it with the local executor (one
slot) and with the Ray executor on a local Ray cluster of 1, 2 and N slots, and prints
verdicts per minute and the ratio to one local slot. Judged without timing: on the CPU a
timed verdict holds a whole node (no two verdicts may time on one machine), so slots of one
CPU each exist only for correctness-only judging; every verdict must still be `accepted`.

    python benchmarks/scale.py [--slots 1,2] [--repeat 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _suite(root: Path, repeat: int) -> tuple[Path, Path]:
    """suite/level1/N_NAME.py from examples/*/task.py, REPEAT times; identity candidates beside it."""
    from kernelwright.bench.suite import find_tasks, write_identity_candidates

    suite = root / "suite" / "level1"
    suite.mkdir(parents=True)
    n = 0
    for _ in range(repeat):
        for task in sorted((ROOT / "examples").glob("*/task.py")):
            n += 1
            shutil.copy(task, suite / f"{n}_{task.parent.name}.py")
    cands = root / "cands"
    write_identity_candidates(find_tasks(root / "suite", None, None), cands)
    return root / "suite", cands


def _run(suite: Path, cands: Path, out: Path, executor: str, device: str) -> tuple[int, float, set[str]]:
    from kernelwright.bench import BenchOptions, run_bench
    from kernelwright.judge.verify import VerifyOptions

    opts = BenchOptions(out=out, executor=executor, store_path=out / "kw.db",
                        verify=VerifyOptions(device=device, timing=False, compile_baseline=False, threads=1))
    t0 = time.perf_counter()
    _, rows = run_bench(suite, cands, opts)
    return len(rows), time.perf_counter() - t0, {str(r.verdict) for r in rows}


def main() -> int:
    """Print verdicts per minute for each executor and slot count."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slots", default="1,2", help="Ray slot counts to try, comma-separated")
    ap.add_argument("--repeat", type=int, default=2, help="copies of each example task in the suite")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    import ray

    with tempfile.TemporaryDirectory(prefix="kw-scale-") as tmp:
        root = Path(tmp)
        suite, cands = _suite(root, args.repeat)
        n, secs, verdicts = _run(suite, cands, root / "local", "local", args.device)
        base = n / secs * 60
        print(f"local, 1 slot: {n} verdicts in {secs:.1f} s, {base:.1f} a minute (1.00x); verdicts {sorted(verdicts)}")
        for k in (int(x) for x in args.slots.split(",")):
            ray.init(num_cpus=k, num_gpus=k if args.device == "cuda" else 0, include_dashboard=False,
                     logging_level="WARNING", log_to_driver=False)
            try:
                n, secs, verdicts = _run(suite, cands, root / f"ray{k}", "ray", args.device)
            finally:
                ray.shutdown()
            rate = n / secs * 60
            print(f"ray, {k} slot(s): {n} verdicts in {secs:.1f} s, {rate:.1f} a minute ({rate / base:.2f}x); "
                  f"verdicts {sorted(verdicts)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
