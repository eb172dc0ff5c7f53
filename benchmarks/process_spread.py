"""How far one task's eager time moves between fresh processes, and what moves it (CUDA).

The judge times eager in the reference's worker and the candidate in another process. On
KernelBench's level 3 an identical candidate read 0.73x-2.24x on the H200 (docs/kernelbench.md):
the same model ran at different speeds in two processes. This times each TASK's `Model` in
fresh processes, REPS times per state, the states interleaved, each call timed as the harness
times it (L2 flushed, the launch hold, events, then the host's clock after a full sync), and
prints per process: median event and host ms a call, and the top kernels of one profiled call.
States a process is put in before the model's first call:

- fresh: nothing;
- cached: 8 GB allocated and freed (the caching allocator keeps one large free block, as a
  worker that made and dropped big input sets does);
- emptied: the same, then torch.cuda.empty_cache();
- pinned: fresh, every thread on the machine's last core (tried as a cure and measured not to
  be one: pinned processes spread as far, and ran slower; docs/gpu-validation.md section 24).

Each unpinned process also prints the core its main thread was last on.

    python benchmarks/process_spread.py TASK.py [TASK.py ...] [--reps 2] [--calls 20] [--states fresh,pinned]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time

STATES = ("fresh", "cached", "emptied", "pinned")


def _child(task: str, state: str, calls: int) -> dict:
    import os

    if state == "pinned":
        os.sched_setaffinity(0, [sorted(os.sched_getaffinity(0))[-1]])
    import torch

    from kernelwright.worker.harness import pin_flags
    from kernelwright.worker.hold import DeviceHold

    pin_flags(None)
    if state in ("cached", "emptied"):
        block = torch.empty(8 << 30, dtype=torch.uint8, device="cuda")
        del block
        if state == "emptied":
            torch.cuda.empty_cache()
    spec = importlib.util.spec_from_file_location("kw_task", task)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = mod.Model(*mod.get_init_inputs()).cuda()
    args = [a.cuda() if isinstance(a, torch.Tensor) else a for a in mod.get_inputs()]
    hold = DeviceHold("cuda", torch.cuda.Event, torch.cuda.synchronize)
    flush = torch.empty(256 << 20, dtype=torch.uint8, device="cuda")
    host, ev = [], []
    with torch.no_grad():
        for i in range(calls + 3):
            flush.zero_()
            torch.cuda.synchronize()
            hold()
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            t0 = time.perf_counter()
            out = model(*args)
            e.record()
            e.synchronize()
            torch.cuda.synchronize()
            t1 = time.perf_counter()
            del out
            if i >= 3:
                host.append((t1 - t0) * 1e3)
                ev.append(s.elapsed_time(e))
        from torch.autograd import profiler

        with profiler.profile(use_device="cuda", use_kineto=True) as prof:
            model(*args)
            torch.cuda.synchronize()
    kern: dict[str, float] = {}
    for fe in prof.function_events:
        if str(getattr(fe, "device_type", "")).endswith("CUDA"):
            kern[fe.name] = kern.get(fe.name, 0.0) + float(getattr(fe, "self_device_time_total", 0.0))
    top = sorted(kern.items(), key=lambda kv: -kv[1])[:4]
    with open("/proc/self/stat") as f:
        cpu = int(f.read().rsplit(")", 1)[1].split()[36])
    return {"state": state, "cpu": cpu, "event_ms": statistics.median(ev), "host_ms": statistics.median(host),
            "kernel_ms": sum(kern.values()) / 1e3, "top": [(n[:60], round(us / 1e3, 3)) for n, us in top]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("tasks", nargs="+")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--states", default="fresh,pinned", help=f"comma-separated, of {', '.join(STATES)}")
    ap.add_argument("--child", nargs=2, metavar=("TASK", "STATE"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], args.calls)))
        return 0
    for task in args.tasks:
        print(f"== {task}")
        states = [s for s in args.states.split(",") if s in STATES]
        rows: dict[str, list[dict]] = {s: [] for s in STATES}
        for rep in range(args.reps):
            for state in states:
                p = subprocess.run([sys.executable, __file__, task, "--calls", str(args.calls),
                                    "--child", task, state], capture_output=True, text=True, timeout=300)
                if p.returncode != 0:
                    print(f"  {state}: failed: {p.stderr.strip()[-300:]}")
                    continue
                r = json.loads(p.stdout.strip().splitlines()[-1])
                rows[state].append(r)
                print(f"  rep {rep} {state:8s} cpu {r['cpu']:2d} event {r['event_ms']:9.3f} ms  host {r['host_ms']:9.3f} ms  "
                      f"kernels {r['kernel_ms']:9.3f} ms  top {r['top'][:2]}", flush=True)
        for name, sel in (("unpinned", [s for s in STATES if s != "pinned"]), ("pinned", ["pinned"])):
            ev = [r["event_ms"] for s in sel for r in rows[s]]
            if len(ev) > 1:
                print(f"  {name}: {len(ev)} processes, event ms {min(ev):.3f}-{max(ev):.3f}, "
                      f"max/min {max(ev) / min(ev):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
