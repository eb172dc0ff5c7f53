"""Verdicts per minute on 1, 2 and N judging slots, side by side in one run (issue 16).

Builds a small suite in KernelBench's layout from the shipped examples (each task's own Model
as its candidate, REPEAT copies of each task), then judges it with the local executor on 1, 2
and N slots (slot processes of this machine) and with the Ray executor on a local Ray cluster
of 1, 2 and N slots, and prints verdicts per minute and the ratio to one local slot. Judged
without timing unless --timed: on the CPU a timed Ray verdict holds a whole node, so Ray's
slots of one CPU each exist only for correctness-only judging (the local executor's timed
slots each get cores of their own and take turns timing). Every verdict must be `accepted`.

With --kernels FORM the candidates are the examples' own kernels in that form (cpu_cpp,
cuda_inline: `load_inline` builds of tens of seconds each; cpu_c, cuda_nvrtc, triton_kernel)
instead of identities, each row's and each copy's source made unique by a comment, so that
every row builds every candidate afresh: the figures then include building overlapped with
judging (a slot's build pool builds ahead while its verdicts are judged).

    python benchmarks/scale.py [--local-slots 1,2] [--slots 1,2] [--repeat 2] [--device cpu] [--timed]
                               [--kernels FORM]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _suite(root: Path, repeat: int, form: str | None) -> Path:
    """suite/level1/N_NAME.py from examples/*/task.py (those with a FORM.py kernel), REPEAT times."""
    suite = root / "suite" / "level1"
    suite.mkdir(parents=True)
    n = 0
    for _ in range(repeat):
        for task in sorted((ROOT / "examples").glob("*/task.py")):
            if form and not (task.parent / f"{form}.py").is_file():
                continue
            n += 1
            shutil.copy(task, suite / f"{n}_{task.parent.name}.py")
    return root / "suite"


def _candidates(suite: Path, out: Path, form: str | None, row: str) -> Path:
    """Identity candidates, or each task's example kernel in FORM made unique to this row and copy
    (a comment: a new source, so a new build, the build cache being keyed by source)."""
    from kernelwright.bench.suite import find_tasks, write_identity_candidates

    tasks = find_tasks(suite, None, None)
    if not form:
        write_identity_candidates(tasks, out)
        return out
    for t in tasks:
        dest = out / t.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        kernel = ROOT / "examples" / t.path.stem.split("_", 1)[1] / f"{form}.py"
        dest.write_text(kernel.read_text() + f"\n# benchmarks/scale.py: row {row}, task {t.name}\n")
    return out


def _run(suite: Path, cands: Path, out: Path, executor: str, device: str, slots: int | None,
         timed: bool) -> tuple[int, float, set[str]]:
    from kernelwright.bench import BenchOptions, run_bench
    from kernelwright.judge.verify import VerifyOptions

    opts = BenchOptions(out=out, executor=executor, store_path=out / "kw.db", slots=slots,
                        verify=VerifyOptions(device=device, timing=timed, compile_baseline=False, threads=1))
    t0 = time.perf_counter()
    _, rows = run_bench(suite, cands, opts)
    return len(rows), time.perf_counter() - t0, {str(r.verdict) for r in rows}


def _row(executor: str, slots: int, n: int, secs: float, verdicts: set[str], base: float | None) -> float:
    """Print one row of the table; the rate (verdicts a minute)."""
    rate = n / secs * 60
    ratio = rate / base if base else 1.0
    print(f"| {executor} | {slots} | {secs:.1f} s | {rate:.1f} | {ratio:.2f}x | {', '.join(sorted(verdicts))} |",
          flush=True)
    return rate


def main() -> int:
    """Print verdicts per minute for each executor and slot count, as a markdown table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--local-slots", default="1,2", help="local slot counts to try, comma-separated")
    ap.add_argument("--slots", default="1,2", help="Ray slot counts to try, comma-separated ('' for none)")
    ap.add_argument("--repeat", type=int, default=2, help="copies of each example task in the suite")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--timed", action="store_true", help="time every verdict (local slots only on the CPU)")
    ap.add_argument("--kernels", default=None, metavar="FORM",
                    help="judge the examples' FORM.py kernels, built afresh in every row, not identities")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="kw-scale-") as tmp:
        root = Path(tmp)
        suite = _suite(root, args.repeat, args.kernels)
        if args.kernels:
            # One verdict first, not counted: the shared precompiled header the first `load_inline`
            # build makes (a minute on the 2-core CPU machine) would otherwise fall on the first row.
            warm = root / "warm" / "level1"
            warm.mkdir(parents=True)
            first = sorted(suite.glob("level1/*.py"))[0]
            shutil.copy(first, warm / first.name)
            _run(warm.parent, _candidates(warm.parent, root / "cands-warm", args.kernels, "warm-up"), root / "warm-out",
                 "local", args.device, 1, args.timed)
        print("| executor | slots | verdicts in | a minute | vs 1 local slot | verdicts |\n|---|---|---|---|---|---|")
        base = None
        for k in _counts(args.local_slots):
            cands = _candidates(suite, root / f"cands-local{k}", args.kernels, f"local{k}")
            rate = _row("local", k, *_run(suite, cands, root / f"local{k}", "local", args.device, k, args.timed), base)
            base = base or rate
        for k in _counts(args.slots):
            import ray

            cands = _candidates(suite, root / f"cands-ray{k}", args.kernels, f"ray{k}")
            ray.init(num_cpus=k, num_gpus=k if args.device == "cuda" else 0, include_dashboard=False,
                     logging_level="WARNING", log_to_driver=False)
            try:
                _row("ray", k, *_run(suite, cands, root / f"ray{k}", "ray", args.device, None, args.timed), base)
            finally:
                ray.shutdown()
    return 0


def _counts(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


if __name__ == "__main__":
    raise SystemExit(main())
