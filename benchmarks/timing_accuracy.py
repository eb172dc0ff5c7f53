"""How close kernelwright's charged time per call is to the kernels' true duration (issue 12, part 5).

For honest kernels from about 5 us to 5 ms (elementwise at several sizes, one kernel a call and
two, a row reduction, a GEMM, and the shipped NVRTC and Triton examples), side by side in one run:

- kernelwright: `timing.candidate_ms.median` of a full `verify` (the charged time per call);
- ncu: the summed `gpu__time_duration.sum` of every kernel one call launches (Nsight Compute,
  clocks left alone, caches flushed before each kernel as ncu does by default);
- do_bench: `triton.testing.do_bench(fn, return_mode="median")` on the same module and inputs.

Each kernel's row is written to OUT/timing_accuracy.jsonl as soon as it is measured, and a
rerun skips the rows already there (the GPU machine's calls are short). Needs CUDA.

    python benchmarks/timing_accuracy.py --out DIR [--only NAME ...] [--no-ncu]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_ELEMENTWISE = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return {body}


def get_inputs():
    return [torch.randn({n})]


def get_init_inputs():
    return []
'''

_ROWSUM = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return x.sum(dim=1)


def get_inputs():
    return [torch.randn({rows}, {cols})]


def get_init_inputs():
    return []
'''

_GEMM = '''
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, a, b):
        return a @ b


def get_inputs():
    return [torch.randn({n}, {n}), torch.randn({n}, {n})]


def get_init_inputs():
    return []
'''


def cases(tmp: Path) -> list[tuple[str, Path, Path]]:
    """(name, task, candidate): generated tasks judged against themselves, then the examples."""
    out: list[tuple[str, Path, Path]] = []

    def add(name: str, text: str) -> None:
        task = tmp / f"{name}.py"
        task.write_text(text)
        cand = tmp / f"{name}_new.py"
        cand.write_text(text + "\n\nModelNew = Model\n")
        out.append((name, task, cand))

    # One kernel a call, so that ncu's sum and the time of the call cover the same work.
    for n in (1 << 16, 1 << 20, 1 << 23, 1 << 26):
        add(f"relu_{n}", _ELEMENTWISE.format(n=n, body="torch.relu(x)"))
    # Two kernels a call: the device's gap between them is in the call's time, not in ncu's sum.
    add(f"relu_scale_{1 << 16}", _ELEMENTWISE.format(n=1 << 16, body="torch.relu(x) * 2.0"))
    add("rowsum_8192x8192", _ROWSUM.format(rows=8192, cols=8192))
    add("gemm_2048", _GEMM.format(n=2048))
    add("gemm_4096", _GEMM.format(n=4096))
    add(f"relu_{1 << 28}", _ELEMENTWISE.format(n=1 << 28, body="torch.relu(x)"))
    add(f"relu_scale_{1 << 23}", _ELEMENTWISE.format(n=1 << 23, body="torch.relu(x) * 2.0"))
    for ex in ("elementwise", "softmax", "layernorm"):
        for form in ("cuda_nvrtc", "triton_kernel"):
            p = ROOT / "examples" / ex / f"{form}.py"
            if p.exists():
                out.append((f"{ex}/{form}", ROOT / "examples" / ex / "task.py", p))
    return out


_ONE_CALL = r'''
import importlib.util, sys, torch
from kernelwright.worker.inputs import make_inputs, seed_everything

def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    m = importlib.util.module_from_spec(spec); sys.modules[name] = m; spec.loader.exec_module(m); return m

task, cand, mode = load(sys.argv[1], "kw_task"), load(sys.argv[2], "kw_cand"), sys.argv[3]
seed_everything(0)
init = list(task.get_init_inputs())
model = cand.ModelNew(*init).cuda()
inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in make_inputs(task.get_inputs, task.__dict__, 1, "task", None)]
with torch.no_grad():
    for _ in range(5):
        model(*inputs)
    torch.cuda.synchronize()
    if mode == "ncu":
        torch.cuda.nvtx.range_push("kwmeasure")
        model(*inputs)
        torch.cuda.synchronize()
        torch.cuda.nvtx.range_pop()
    elif mode == "gap":
        # The device's own gap between back-to-back kernels: N calls queued behind a spin kernel
        # (as kernelwright's launch hold queues a batch), their kernels' start and end from CUPTI.
        import statistics
        from torch.profiler import ProfilerActivity, profile
        n = 50
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            torch.cuda._sleep(100_000_000)
            for _ in range(n):
                model(*inputs)
            torch.cuda.synchronize()
        ks = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                    if e.device_type.name == "CUDA" and "spin" not in e.name.lower())
        gaps = [b[0] - a[1] for a, b in zip(ks, ks[1:])]
        if gaps:
            print("GAP", statistics.median(gaps) / 1000.0, len(ks) / n)
    else:
        import triton.testing
        print("DOBENCH", triton.testing.do_bench(lambda: model(*inputs), return_mode="median"))
'''


def ncu_ms(script: Path, task: Path, cand: Path) -> float | None:
    """Summed kernel duration of one call under Nsight Compute, or None without ncu."""
    exe = shutil.which("ncu")
    if not exe:
        return None
    proc = subprocess.run([exe, "--clock-control", "none", "--nvtx", "--nvtx-include", "kwmeasure/",
                           "--metrics", "gpu__time_duration.sum", "--csv", sys.executable, str(script),
                           str(task), str(cand), "ncu"], capture_output=True, text=True, timeout=400, check=False)
    total, seen = 0.0, False
    for line in proc.stdout.splitlines():
        cells = [c.strip('"') for c in line.split('","')]
        if len(cells) > 3 and cells[-3] == "gpu__time_duration.sum":
            unit, value = cells[-2], float(cells[-1].strip('"').replace(",", ""))
            total += value * {"nsecond": 1e-6, "usecond": 1e-3, "msecond": 1.0, "ns": 1e-6, "us": 1e-3,
                              "ms": 1.0}.get(unit, 1e-6)
            seen = True
    if not seen:
        sys.stderr.write(f"ncu gave no kernel rows: {proc.stderr[-600:]}\n")
    return total if seen else None


def dobench_ms(script: Path, task: Path, cand: Path) -> float | None:
    """triton.testing.do_bench's median per call, in a fresh process."""
    proc = subprocess.run([sys.executable, str(script), str(task), str(cand), "bench"], capture_output=True,
                          text=True, timeout=300, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("DOBENCH "):
            return float(line.split()[1])
    sys.stderr.write(f"do_bench failed: {proc.stderr[-600:]}\n")
    return None


def gap_ms(script: Path, task: Path, cand: Path) -> tuple[float, float] | None:
    """The device's median gap (ms) between back-to-back kernels of the call, and the kernels a
    call launches, from a CUPTI profile of 50 calls queued behind a spin kernel, in a fresh process."""
    proc = subprocess.run([sys.executable, str(script), str(task), str(cand), "gap"], capture_output=True,
                          text=True, timeout=300, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("GAP "):
            _, gap, kernels = line.split()
            return float(gap), float(kernels)
    sys.stderr.write(f"the gap profile failed: {proc.stderr[-600:]}\n")
    return None


def kernelwright_ms(task: Path, cand: Path) -> dict[str, object]:
    """The charged time per call and its spread, from one full verify."""
    from kernelwright.judge.verify import VerifyOptions, verify_files

    res = verify_files(task, cand, VerifyOptions(device="cuda", compile_baseline=False))
    t = res.timing
    if not res.accepted or t is None or t.candidate_ms is None:
        return {"verdict": res.verdict, "reasons": [f"{r.check}: {r.detail[:200]}" for r in res.reasons]}
    return {"verdict": res.verdict, "kw_ms": t.candidate_ms.median, "kw_spread": t.candidate_ms.spread,
            "kw_bound_ms": t.candidate_ms.clock_bound, "kw_claimed_ms": t.candidate_ms.reported_median,
            "eager_ms": t.eager_ms.median if t.eager_ms else None, "speedup_vs_eager": t.speedup_vs_eager,
            "interval": t.speedup_vs_eager_interval}


def less_gaps(row: dict[str, object]) -> float | None:
    """The charged time less the device's own gap once per kernel (`gap_ms` times `kernels`).

    Not a figure kernelwright charges: a model run back to back pays that gap per launch too, so
    the charge keeps it (docs/judge.md, "What the clock includes"). It shows how the rest of the
    charge compares with ncu, which sums kernel durations only."""
    kw, gap, k = row.get("kw_ms"), row.get("gap_ms"), row.get("kernels")
    if not all(isinstance(v, (int, float)) for v in (kw, gap, k)):
        return None
    return float(kw) - float(gap) * round(float(k))  # type: ignore[arg-type]


def goal(row: dict[str, object], kw: object = None) -> str:
    """Issue 12's goal for one row, against ncu: within 3% with a spread of at most 2% from 50 us
    up, within 10% from 5 us; "met", "missed" or "-" (no ncu figure, under 5 us, or two kernels a
    call, whose gap between kernels ncu's sum leaves out). `kw`: the time to hold to it (the
    charged time by default)."""
    kw = row.get("kw_ms") if kw is None else kw
    nc, spread = row.get("ncu_ms"), row.get("kw_spread")
    if not isinstance(kw, float) or not isinstance(nc, float) or nc < 0.005 or "scale" in str(row["name"]):
        return "-"
    if nc >= 0.05:
        ok = abs(kw / nc - 1) <= 0.03 and isinstance(spread, float) and spread <= 0.02
    else:
        ok = abs(kw / nc - 1) <= 0.10
    return "met" if ok else "missed"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--no-ncu", action="store_true")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("timing_accuracy needs CUDA", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "timing_accuracy.jsonl"
    done = {json.loads(ln)["name"] for ln in rows_path.read_text().splitlines() if ln.strip()} \
        if rows_path.exists() else set()
    tmp = Path(tempfile.mkdtemp(prefix="kw-acc-"))
    script = tmp / "one_call.py"
    script.write_text(_ONE_CALL)
    os.environ.setdefault("PYTHONPATH", str(ROOT / "src"))
    for name, task, cand in cases(tmp):
        if name in done or (args.only and name not in args.only):
            continue
        row: dict[str, object] = {"name": name, **kernelwright_ms(task, cand)}
        row["ncu_ms"] = None if args.no_ncu else ncu_ms(script, task, cand)
        row["dobench_ms"] = dobench_ms(script, task, cand)
        g = gap_ms(script, task, cand)
        row["gap_ms"], row["kernels"] = g if g else (None, None)
        with rows_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    rows = [json.loads(ln) for ln in rows_path.read_text().splitlines() if ln.strip()]
    print(f"\n{'kernel':28} {'kw ms':>9} {'spread':>7} {'ncu ms':>9} {'kw/ncu':>7} {'do_bench':>9} {'kw/db':>6} goal"
          f"  {'gap us':>6} {'k':>3} {'less gaps/ncu':>13} goal")
    for r in rows:
        kw, nc, db = r.get("kw_ms"), r.get("ncu_ms"), r.get("dobench_ms")

        def f(v: object, w: int, p: int = 4) -> str:
            return f"{v:{w}.{p}f}" if isinstance(v, (int, float)) else f"{'-':>{w}}"

        print(f"{r['name']:28} {f(kw, 9)} {f(r.get('kw_spread'), 7, 3)} {f(nc, 9)} "
              f"{f(kw / nc if kw and nc else None, 7, 3)} {f(db, 9)} {f(kw / db if kw and db else None, 6, 3)} "
              f"{goal(r)}" + ("" if kw else f"  {r.get('verdict')}: {r.get('reasons')}")
              + (f"  {r['gap_ms'] * 1000:6.2f} {r['kernels']:3.0f} {f(lg / nc if lg and nc else None, 13, 3)} "
                 f"{goal(r, lg)}" if (lg := less_gaps(r)) is not None and isinstance(r.get("gap_ms"), float) else ""))
    ratios = [r["kw_ms"] / r["ncu_ms"] for r in rows if r.get("kw_ms") and r.get("ncu_ms")]
    if ratios:
        print(f"kw/ncu: median {statistics.median(ratios):.3f}, min {min(ratios):.3f}, max {max(ratios):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
