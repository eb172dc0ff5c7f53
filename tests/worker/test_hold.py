"""The launch hold leaves no room on the device: a kernel another stream launches during the hold
runs after it, not hidden beside it (worker/hold.py)."""

from __future__ import annotations

import statistics

import pytest


@pytest.mark.gpu
def test_a_side_streams_kernel_runs_after_the_hold_not_beside_it():
    import torch

    from kernelwright.worker.hold import DeviceHold

    hold = DeviceHold("cuda", torch.cuda.Event, torch.cuda.synchronize)
    assert hold.blocks_device and hold.kind == "nvrtc", (hold.kind, hold.error)
    side = torch.cuda.Stream()
    khz = getattr(torch.cuda.get_device_properties(0), "clock_rate", 1_980_000)
    ends = []
    for _ in range(20):
        torch.cuda.synchronize()
        hold()
        held = torch.cuda.Event(enable_timing=True)
        held.record()
        with torch.cuda.stream(side):
            done = torch.cuda.Event(enable_timing=True)
            torch.cuda._sleep(int(20e-6 * khz * 1e3))  # one thread, about 20 us
            done.record()
        torch.cuda.synchronize()
        ends.append(held.elapsed_time(done) * 1e3)
    # Beside the hold it would end long before the hold does (the hold lasts LAUNCH_HOLD_MS).
    assert statistics.median(ends) > 10, ends
