"""Whether another stream's kernel can run beside the launch hold (worker/hold.py), per hold kind.

The hold must leave no room on the device: a kernel the candidate launches on a side stream
during the hold would otherwise run hidden under it, before the timed call's start event.
Per kind (our NVRTC kernel, the jiterator's elementwise spin), CALLS times: the hold on the
current stream, then on a side stream a one-thread ~20 us spin (`torch.cuda._sleep`) and a
64K-element elementwise kernel, each between two events; printed: when each side kernel
ended, in microseconds after the hold ended (about +20 and +3 when the hold kept them out;
negative when they ran beside it), and what the race check's pending measure reads for an
unjoined ~50 us side stream behind each hold (about 45 us when the hold kept it out).

    python benchmarks/hold_overlap.py [--calls 30]
"""

from __future__ import annotations

import argparse
import statistics


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    import torch

    from kernelwright.worker.harness import Harness
    from kernelwright.worker.hold import DeviceHold

    h = Harness("cuda", None)
    side = torch.cuda.Stream()
    x = torch.randn(1 << 16, device="cuda")
    khz = getattr(torch.cuda.get_device_properties(0), "clock_rate", 1_980_000)
    cycles = int(20e-6 * khz * 1e3)
    Event = torch.cuda.Event
    for nvrtc in (True, False):
        hold = DeviceHold("cuda", Event, torch.cuda.synchronize, nvrtc=nvrtc)
        print(f"hold {hold.kind}: blocks_device {hold.blocks_device}, {hold.measured_ms():.3f} ms "
              f"{hold.error and '(' + hold.error + ')'}")
        ends: dict[str, list[float]] = {"one-thread 20 us spin": [], "64K elementwise": []}
        pending: list[float] = []
        for _ in range(args.calls):
            for name in ends:
                torch.cuda.synchronize()
                hold()
                held = Event(enable_timing=True)
                held.record()  # on the current stream: reached once the hold has ended
                with torch.cuda.stream(side):
                    done = Event(enable_timing=True)
                    if name.startswith("one"):
                        torch.cuda._sleep(cycles)
                    else:
                        y = x * 2  # noqa: F841 - only its timing matters
                    done.record()
                torch.cuda.synchronize()
                ends[name].append(held.elapsed_time(done) * 1e3)
            torch.cuda.synchronize()
            hold()
            y = x * 2
            with torch.cuda.stream(side):
                torch.cuda._sleep(int(50e-6 * khz * 1e3))
            snap = y.clone()
            pending.append(h.pending_ms() * 1e3)
            del snap
        for name, v in ends.items():
            print(f"  {name}: ended {statistics.median(v):+.1f} us after the hold (min {min(v):+.1f}, "
                  f"max {max(v):+.1f})")
        print(f"  unjoined ~50 us side stream: pending {statistics.median(pending):.1f} us median "
              f"(min {min(pending):.1f}, max {max(pending):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
