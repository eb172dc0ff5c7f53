"""How much slower a CPU batch runs when it follows the other process's batch (CPU_PREWARM_MAX_CALL_MS).

Two processes, pinned to the same cores as the judge pins its workers, alternate batches of 64
calls of a row sum (x.sum(dim=1) of 1023x4097 fp32 over six input sets, the row-sum example's
shape) in a seeded random order, the idle one stopped (SIGSTOP) as the judge stops it. Printed,
side by side in one run: the median per-call time of batches that followed a batch of the
other process against those that followed one of their own, with no warm-up and with a
discarded warm-up of W calls run just before the timed ones.

    python benchmarks/switch_warmth.py [--threads N] [--warm 0 8 24 64] [--rounds 40]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import signal
import statistics
import time
from typing import Any


def _worker(conn: Any, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:threads])
    sets = [torch.randn(1023, 4097) for _ in range(6)]
    for x in sets:
        x.sum(dim=1)
    while True:
        msg = conn.recv()
        if msg is None:
            return
        calls, warm = msg
        for i in range(warm):
            sets[i % 6].sum(dim=1)
        times = []
        for i in range(calls):
            t0 = time.perf_counter()
            sets[i % 6].sum(dim=1)
            times.append((time.perf_counter() - t0) * 1e3)
        conn.send(statistics.median(times))


def run(threads: int, warm: int, rounds: int) -> tuple[float, float]:
    """Median ms a call of batches after a switch, and after a batch of the same process."""
    ctx = mp.get_context("spawn")
    procs = []
    for _ in range(2):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_worker, args=(child, threads))
        p.start()
        procs.append((p, parent))
    rng = random.Random(0)
    prev: int | None = None
    after_switch: list[float] = []
    after_same: list[float] = []
    try:
        for _ in range(rounds):
            k = rng.randrange(2)
            if prev is not None and prev != k:
                os.kill(procs[prev][0].pid, signal.SIGSTOP)
                os.kill(procs[k][0].pid, signal.SIGCONT)
            procs[k][1].send((64, warm))
            (after_switch if k != prev else after_same).append(procs[k][1].recv())
            prev = k
    finally:
        for p, conn in procs:
            os.kill(p.pid, signal.SIGCONT)
            conn.send(None)
            p.join()
    return statistics.median(after_switch), statistics.median(after_same)


def main() -> None:
    """Print the two medians and their ratio for each warm-up length."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--warm", type=int, nargs="+", default=[0, 8, 24, 64])
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    print(f"{'warm-up calls':>14} {'after a switch':>15} {'after own batch':>16} {'ratio':>6}")
    for w in args.warm:
        a, b = run(args.threads, w, args.rounds)
        print(f"{w:>14} {a:>12.3f} ms {b:>13.3f} ms {a / b:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
