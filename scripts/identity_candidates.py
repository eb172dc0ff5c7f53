"""Write each task's own Model as its candidate (`class ModelNew(Model)`), for `kernelwright bench`.

The identity sweep: judged against itself, every task should be accepted at about 1.00x; a
judge that rejects KernelBench's own reference as its own candidate is broken. The files go
to OUT under the tasks' relative names (OUT/level1/23_Softmax.py); the suite is read, never
changed, and nothing of it is written into this repository.

    python scripts/identity_candidates.py SUITE OUT [--levels 1,2] [--tasks GLOB]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kernelwright.bench.suite import find_tasks, write_identity_candidates


def main() -> int:
    """Write one identity candidate per selected task; print how many."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--levels", default=None)
    ap.add_argument("--tasks", default=None)
    args = ap.parse_args()
    levels = {int(x) for x in args.levels.split(",")} if args.levels else None
    tasks = find_tasks(args.suite, levels, args.tasks)
    write_identity_candidates(tasks, args.out)
    print(f"{len(tasks)} identity candidates in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
