"""How much of a CUDA call's time is the host's, and the device's own gap between kernels.

The judge widens a verdict's intervals when a call is host-bound (constants.HOST_BOUND_SPREAD),
judging that from one profiled call: the call's time less the union of its kernels, less
HOST_KERNEL_GAP_MS for each kernel as the device's own gap between back-to-back kernels. This
measures that gap and the host's share directly, for a queue of tiny kernels and for each TASK:

- launched: the call timed with events after a full sync, as the harness times it (the
  device waits whenever the host is behind);
- queued: the same call launched behind a long `torch.cuda._sleep` kernel, events recorded
  after the sleep, so every launch is already queued when the device reaches it: the call's
  time with the host out of it;
- from one profiled queued call, the median and 90th percentile gap between one kernel's
  end and the next one's start (the device's own gap), and the kernel count.

    python benchmarks/kernel_gap.py [TASK.py ...] [--calls 10] [--tiny 2000]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
from typing import Any, Callable

import torch


def _task(path: str) -> tuple[str, Callable[[], Any]]:
    spec = importlib.util.spec_from_file_location("kw_gap_task", path)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    torch.manual_seed(0)
    model = mod.Model(*mod.get_init_inputs()).cuda().eval()
    inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in mod.get_inputs()]

    def call() -> Any:
        with torch.no_grad():
            return model(*inputs)
    return path.rsplit("/", 1)[-1], call


def _tiny(n: int) -> tuple[str, Callable[[], Any]]:
    x = torch.zeros(1024, device="cuda")

    def call() -> Any:
        for _ in range(n):
            x.add_(1.0)
        return x
    return f"{n} tiny kernels (add_ of 1024 floats)", call


def _launched_ms(call: Callable[[], Any]) -> float:
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    call()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b)


def _sleep_cycles(host_ms: float) -> int:
    # Long enough that the host has queued the whole call before the device reaches it.
    clock_khz = torch.cuda.get_device_properties(0).clock_rate if hasattr(
        torch.cuda.get_device_properties(0), "clock_rate") else 2_000_000
    return int(max(20.0, 3.0 * host_ms) * clock_khz)


def _queued_ms(call: Callable[[], Any], cycles: int) -> float:
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda._sleep(cycles)
    a.record()
    call()
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b)


def _gaps_us(call: Callable[[], Any], cycles: int) -> tuple[list[float], int]:
    from torch.autograd import profiler

    torch.cuda.synchronize()
    with profiler.profile(use_device="cuda", use_kineto=True) as prof:
        torch.cuda._sleep(cycles)
        call()
        torch.cuda.synchronize()
    spans = sorted((float(e.time_range.start), float(e.time_range.end)) for e in prof.function_events
                   if str(getattr(e, "device_type", "")).endswith("CUDA") and "sleep" not in e.name and "spin" not in e.name
                   and getattr(e, "time_range", None) is not None)
    gaps, end = [], None
    for s, e in spans:
        if end is not None:
            gaps.append(max(0.0, s - end))
        end = e if end is None else max(end, e)
    return gaps, len(spans)


def _measure(name: str, call: Callable[[], Any], calls: int) -> None:
    import time

    for _ in range(3):
        call()
    t0 = time.perf_counter()
    call()
    torch.cuda.synchronize()
    host_ms = (time.perf_counter() - t0) * 1e3
    cycles = _sleep_cycles(host_ms)
    launched = statistics.median(_launched_ms(call) for _ in range(calls))
    queued = statistics.median(_queued_ms(call, cycles) for _ in range(calls))
    gaps, n = _gaps_us(call, cycles)
    gaps.sort()
    med = statistics.median(gaps) if gaps else 0.0
    p90 = gaps[int(0.9 * (len(gaps) - 1))] if gaps else 0.0
    print(f"{name}: launched {launched:.4f} ms, queued {queued:.4f} ms, host's share "
          f"{max(0.0, 1 - queued / launched):.0%}; {n} kernels, device gap median {med:.2f} us, "
          f"90% {p90:.2f} us; launched - queued = {(launched - queued) * 1e3 / max(n, 1):.2f} us a kernel",
          flush=True)


def main() -> int:
    """Print, per workload, launched and queued call times and the device's own kernel gap."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tasks", nargs="*")
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--tiny", type=int, default=2000, help="tiny kernels in the synthetic call")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available: nothing to measure", file=sys.stderr)
        return 2
    print(torch.__version__, torch.cuda.get_device_name(0))
    _measure(*_tiny(args.tiny), args.calls)
    for path in args.tasks:
        _measure(*_task(path), args.calls)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
