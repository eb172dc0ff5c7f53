"""What the race check's measure reads on this GPU for honest work and for an unjoined side stream.

The race check (worker/harness.py, `race_readings`) reads two figures once a call's output is
copied: how late a device-wide probe (the launch hold, enqueued again on the caller's stream)
ran, in device time, and, after it, a device-wide sync timed on the host: GPU work still
queued elsewhere shows in both. This prints, per
workload, the distribution of that figure over CALLS calls made as a checked call makes them
(behind the launch hold, the output copied on the caller's stream), and which CUDA streams one
call's kernels ran on (from the profiler's trace), so the bar RACE_PENDING_MS can be set from
what honest work reads here.

Each workload runs once per LEAD: the host waits LEAD microseconds after enqueuing the hold
before it calls the workload. On the H200 (2026-12-03, lead 0) the unjoined ~50 us side stream
read about 5 us pending, as if its kernel had run during the hold rather than after it: if the
hold's kernel reaches the device later than a fast host launch does, side-stream work hides
under it. A lead that lets the hold start first should make that case read about 45 us.

    python benchmarks/race_pending.py [--calls 30] [--lead-us 0,30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable


def _streams(fn: Callable[[], object]) -> dict[str, int]:
    """Kernels of one call per CUDA stream id (the profiler's chrome trace)."""
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    path = Path(tempfile.mkdtemp()) / "trace.json"
    prof.export_chrome_trace(str(path))
    counts: dict[str, int] = {}
    for ev in json.loads(path.read_text()).get("traceEvents", []):
        if ev.get("cat") == "kernel":
            sid = str(ev.get("args", {}).get("stream"))
            counts[sid] = counts.get(sid, 0) + 1
    return counts


def main() -> int:
    """Print the pending-time distribution of each workload."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--lead-us", default="0,30", help="host waits after the hold, comma-separated")
    args = ap.parse_args()
    leads = [float(x) for x in args.lead_us.split(",")]
    import torch

    from kernelwright import constants as C
    from kernelwright.worker.harness import Harness

    h = Harness("cuda", None)
    torch.backends.cudnn.benchmark = False
    side = torch.cuda.Stream()
    x_small = torch.randn(1 << 16, device="cuda")
    x_big = torch.randn(1 << 28, device="cuda")
    conv = torch.nn.Conv2d(64, 128, 3).cuda()
    x_conv = torch.rand(128, 64, 128, 128, device="cuda")
    convt = torch.nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1).cuda()
    x_convt = torch.rand(128, 64, 64, 64, device="cuda")
    khz = getattr(torch.cuda.get_device_properties(0), "clock_rate", 1_980_000)  # the H200: 1980 MHz
    spin = int(50e-6 * khz * 1e3)  # cycles: about 50 us at the SM clock

    def unjoined() -> torch.Tensor:
        y = x_small * 2
        with torch.cuda.stream(side):
            torch.cuda._sleep(spin)
        return y

    x_mid = torch.randn(1 << 24, device="cuda")

    def unjoined_wide() -> torch.Tensor:
        # Every SM's slots taken by the side stream's grid (16M elements, about 30 us): the
        # probe's blocks cannot start at all until it ends.
        y = x_small * 2
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            x_mid.mul(2)
        return y

    def joined() -> torch.Tensor:
        y = x_small * 2
        with torch.cuda.stream(side):
            torch.cuda._sleep(spin)
        torch.cuda.current_stream().wait_stream(side)
        return y

    cases: dict[str, Callable[[], torch.Tensor]] = {
        "small elementwise (64K)": lambda: x_small * 2,
        "big elementwise (1 GiB)": lambda: x_big * 2,
        "conv2d 128x64x128x128 (level2/1's)": lambda: conv(x_conv),
        "conv_transpose2d 128x64x64x64": lambda: convt(x_convt),
        "side stream ~50 us, joined": joined,
        "side stream ~50 us, NOT joined": unjoined,
        "side stream 16M elementwise (whole device), NOT joined": unjoined_wide,
    }
    print(f"RACE_PENDING_MS {C.RACE_PENDING_MS}, RACE_PROBE_MS {C.RACE_PROBE_MS}; hold: {h.hold.kind}, "
          f"blocks device: {h.hold.blocks_device}")
    with torch.no_grad():
        for lead in leads:
            for name, fn in cases.items():
                for _ in range(3):
                    fn()
                torch.cuda.synchronize()
                seen, probes = [], []
                for _ in range(args.calls):
                    torch.cuda.synchronize()
                    h.hold(long=True)  # as a checked call holds
                    until = time.perf_counter() + lead * 1e-6
                    while time.perf_counter() < until:
                        pass
                    out = fn()
                    snap, host, probe = h._consume(out, True)  # as a checked call copies and reads
                    seen.append(host)
                    probes.append(probe if probe is not None else float("nan"))
                    del out, snap
                torch.cuda.synchronize()
                q = statistics.quantiles(seen, n=20)
                over = sum(p > C.RACE_PENDING_MS for p in seen)
                qp = statistics.quantiles(probes, n=20)
                over_p = sum(p > C.RACE_PROBE_MS for p in probes)
                print(f"lead {lead:g} us, {name}: host pending ms median {statistics.median(seen):.4f}, "
                      f"95% {q[-1]:.4f}, max {max(seen):.4f}; over {C.RACE_PENDING_MS} {over}/{len(seen)} | "
                      f"device probe ms median {statistics.median(probes):.4f}, 95% {qp[-1]:.4f}, "
                      f"max {max(probes):.4f}; over {C.RACE_PROBE_MS} {over_p}/{len(probes)}; "
                      f"kernels by stream {_streams(fn)}")
    print(f"holds the host stopped waiting for: {h.hold.late_starts[0]}; hold error: {h.hold.error or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
