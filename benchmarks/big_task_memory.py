"""How much memory the judge itself holds on a task with large outputs, and whether it gives a verdict.

Writes a softmax task whose input is SIZE_GIB of float32 (the shape of KernelBench's level-1
softmax, scaled to the machine) and an identical candidate, judges it in this process, and
prints the verdict, its findings about large outputs, the judge's peak RSS (its workers not
included: they are its children) and the peak as a multiple of one input set.

    python benchmarks/big_task_memory.py --size-gib 1.5 [--device cpu] [--timing]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

TASK = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=1)


def get_inputs():
    return [torch.randn({rows}, {cols})]


def get_init_inputs():
    return []
'''


def main() -> int:
    """Judge the big softmax once; print the verdict and the judge's peak memory."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gib", type=float, default=1.5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--timing", action="store_true", help="time it too (slow on the CPU)")
    args = ap.parse_args()
    from kernelwright.judge.verify import VerifyOptions, verify_files
    from kernelwright.sandbox import limits

    cols = 98304
    rows = max(1, int(args.size_gib * 2**30 / 4 / cols))
    tmp = Path(tempfile.mkdtemp(prefix="kw-big-"))
    (tmp / "task.py").write_text(TASK.format(rows=rows, cols=cols))
    (tmp / "cand.py").write_text(TASK.format(rows=rows, cols=cols) + "\n\nclass ModelNew(Model):\n    pass\n")
    total, avail = limits.machine_memory()
    print(f"input {rows}x{cols} float32 = {rows * cols * 4 / 2**30:.2f} GiB; machine {total / 2**30:.1f} GiB, "
          f"{avail / 2**30:.1f} GiB available; worker limit {limits.default_worker_memory() / 2**30:.1f} GiB")
    from kernelwright.task import TaskError

    t0 = time.perf_counter()
    try:
        result = verify_files(tmp / "task.py", tmp / "cand.py",
                              VerifyOptions(device=args.device, compile_baseline=False, timing=args.timing))
    except TaskError as exc:  # the judge's answer for a task too big for the machine: still an answer
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
        print(f"verdict error (task) in {time.perf_counter() - t0:.0f} s: {exc}")
        print(f"judge peak RSS {peak / 2**30:.2f} GiB = {peak / (rows * cols * 4):.1f} x one input set")
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss << 10
    print(f"verdict {result.verdict} {[f'{r.check}: {r.detail[:200]}' for r in result.reasons]} "
          f"in {time.perf_counter() - t0:.0f} s; trials {len(result.correctness)}")
    print("findings:", [f for f in result.findings if "large" in f or "float64" in f])
    print("phases (s):", {k: round(v, 1) for k, v in result.phases_s.items() if v >= 0.1})
    print(f"judge peak RSS {peak / 2**30:.2f} GiB = {peak / (rows * cols * 4):.1f} x one input set")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
