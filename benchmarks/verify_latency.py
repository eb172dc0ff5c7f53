"""The wall time of a whole `kernelwright verify` command, its workers started as it starts
(judge.pairs.prespawn) against started when its verdict asks for them, side by side in one run.

    python benchmarks/verify_latency.py [--device cpu|cuda] [--repeats N] [--task TASK --candidate CAND]

Issue 14 asks for a standalone verify of a built candidate under 10 s on the H200. Each repeat
runs the command twice, alternating which mode goes first: once as shipped and once with
KERNELWRIGHT_PRESPAWN=0. The default pair is the elementwise example's task judged against its
own Model (a built candidate: nothing compiles), with --no-compile-baseline, so what is left is
the command's own cost. Prints each mode's median wall time and median
phases (the verdict's `phases_s`), and the ratio of the walls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kernelwright import constants as C  # noqa: E402

MODES = {"as shipped (prespawn)": "1", "workers after import": "0"}


def identity_candidate(task: Path, where: Path) -> Path:
    """The task's own Model as ModelNew, in a file of its own."""
    cand = where / "identity.py"
    cand.write_text(task.read_text() + "\n\nclass ModelNew(Model):\n    pass\n")
    return cand


def one(task: Path, cand: Path, device: str | None, prespawn: str) -> tuple[float, dict[str, float], str]:
    """One command: its wall time, its verdict's phases and its verdict."""
    cmd = [sys.executable, "-m", "kernelwright.cli.main", "verify", str(task), str(cand), "--json",
           "--no-compile-baseline"] + (["--device", device] if device else [])
    env = dict(os.environ, **{C.PRESPAWN_ENV: prespawn})
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    wall = time.perf_counter() - t0
    try:
        out = json.loads(proc.stdout)
    except ValueError:
        return wall, {}, f"no verdict (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    phases = {k: v for k, v in (out.get("phases_s") or {}).items() if "." not in k}
    return wall, phases, out.get("verdict", "?")


def main() -> None:
    """Run the repeats and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", choices=["cpu", "cuda"], default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--task", type=Path, default=ROOT / "examples" / "elementwise" / "task.py")
    ap.add_argument("--candidate", type=Path, default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cand = args.candidate or identity_candidate(args.task, Path(tmp))
        runs: dict[str, list[tuple[float, dict[str, float], str]]] = {m: [] for m in MODES}
        one(args.task, cand, args.device, "1")  # warm the page cache and the build, uncounted
        for r in range(args.repeats):
            order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
            for mode in order:
                runs[mode].append(one(args.task, cand, args.device, MODES[mode]))
                wall, _, verdict = runs[mode][-1]
                print(f"repeat {r + 1}, {mode}: {wall:.2f} s, {verdict}", file=sys.stderr, flush=True)
    print(f"`kernelwright verify {args.task.name} ... --no-compile-baseline`, {args.repeats} repeats, "
          f"device {args.device or 'auto'}")
    print("| mode | median wall s | walls | median phases s |")
    print("|---|---|---|---|")
    med = {}
    for mode, rows in runs.items():
        med[mode] = statistics.median(w for w, _, _ in rows)
        names = sorted({k for _, p, _ in rows for k in p})
        phases = {k: round(statistics.median(p.get(k, 0.0) for _, p, _ in rows), 2) for k in names}
        print(f"| {mode} | {med[mode]:.2f} | {', '.join(f'{w:.2f}' for w, _, _ in rows)} | {phases} |")
    a, b = med["as shipped (prespawn)"], med["workers after import"]
    print(f"prespawn / after import: {a / b:.2f}x the wall ({b - a:+.2f} s saved)")


if __name__ == "__main__":
    main()
