"""Ties through the Python API: each shipped example's and task fixture's Model, judged by
`kernelwright.verify(model, candidate, inputs)` against its own code (issue 12, part 4).

    python scripts/api_identity.py [--device cpu|cuda] [--tasks NAME ...] [--json FILE]

As a user would call it: for each task, a script of its own (the task's code, then a main
block) builds `Model(*get_init_inputs())` and `get_inputs()` on the device and calls
`kernelwright.verify` with a candidate that is the same code (`class ModelNew(Model)`, built
with the task's own init inputs), so the judge ships the class from the running script
(`__main__`) as it would a user's. One verdict per task, without the torch.compile baseline;
prints one row per task (verdict, speedup vs eager and its 95% interval, how the module was
shipped) and how many read within 0.93-1.07x or with 1.00x inside their interval. The CLI's
counterpart is `tests/judge/test_ties.py` (CPU) and `gpu_validate.sh s32` (CUDA).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVEN = (0.93, 1.07)

_MAIN = '''

if __name__ == "__main__":
    import json
    import sys

    import torch
    import kernelwright

    device = sys.argv[2]
    torch.manual_seed(0)
    model = Model(*get_init_inputs()).to(device)
    inputs = tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in get_inputs())
    result = kernelwright.verify(model, sys.argv[1], inputs, device=device, compile_baseline=False)
    t = result.timing
    print(json.dumps({"verdict": result.verdict, "reasons": [r.detail[:200] for r in result.reasons],
                      "speedup": t.speedup_vs_eager if t else None,
                      "interval": list(t.speedup_vs_eager_interval or []) if t else None,
                      "shipped": next((f for f in result.findings if "itself" in f or "graph" in f), "")[:160],
                      "findings": list(result.findings)}))
'''

_CANDIDATE = '''

class ModelNew(Model):
    def __init__(self):
        super().__init__(*get_init_inputs())
'''


def tasks() -> list[Path]:
    """Every shipped example's task and every task fixture."""
    return sorted(ROOT.glob("examples/*/task.py")) + sorted((ROOT / "tests" / "fixtures" / "tasks").glob("*.py"))


def name(task: Path) -> str:
    """The example's folder, or the fixture's file stem."""
    return task.parent.name if task.name == "task.py" else task.stem


def judge(task: Path, device: str, work: Path) -> dict:
    """One API verdict of `task`'s Model against its own code, in a fresh script process."""
    folder = work / name(task)
    folder.mkdir()
    source = task.read_text()
    (folder / "user_script.py").write_text(source + _MAIN)
    (folder / "candidate.py").write_text(source + _CANDIDATE)
    proc = subprocess.run([sys.executable, "user_script.py", "candidate.py", device], cwd=folder,
                          capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"verdict": "error", "reasons": [proc.stderr.strip()[-400:]], "speedup": None, "interval": None}
    return json.loads(lines[-1])


def even(row: dict) -> bool:
    """Within EVEN, or 1.00x inside its interval."""
    s, iv = row.get("speedup"), row.get("interval") or []
    return s is not None and (EVEN[0] <= s <= EVEN[1] or (len(iv) == 2 and iv[0] <= 1.0 <= iv[1]))


def main() -> None:
    """Judge each task through the API and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--tasks", nargs="*", help="only these (example folder or fixture stem)")
    ap.add_argument("--json", type=Path, help="write the rows here, one JSON object per line")
    args = ap.parse_args()
    chosen = [t for t in tasks() if not args.tasks or name(t) in args.tasks]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kw-api-identity-") as tmp:
        for task in chosen:
            row = {"task": name(task), **judge(task, args.device, Path(tmp))}
            rows.append(row)
            iv = row.get("interval") or []
            print(f"{row['task']:28s} {row['verdict']:9s} "
                  + (f"{row['speedup']:.3f}x" if row.get("speedup") is not None else "-")
                  + (f" [{iv[0]:.2f}-{iv[1]:.2f}]" if len(iv) == 2 else "")
                  + f"  {row.get('shipped') or '; '.join(row.get('reasons') or [])}", flush=True)
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    speeds = [r["speedup"] for r in rows if r.get("speedup") is not None]
    inside = sum(1 for r in rows if r.get("speedup") is not None and EVEN[0] <= r["speedup"] <= EVEN[1])
    print(f"{len(rows)} tasks on {args.device}: {sum(r['verdict'] == 'accepted' for r in rows)} accepted, "
          f"{inside} within {EVEN[0]}-{EVEN[1]}x, {sum(even(r) for r in rows)} within it or holding 1.00x"
          + (f"; speedups {min(speeds):.3f}-{max(speeds):.3f}x" if speeds else ""))


if __name__ == "__main__":
    main()
