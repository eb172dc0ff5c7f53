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


@pytest.mark.gpu
def test_the_probe_reads_an_unjoined_side_kernel_and_not_an_honest_call():
    """The race check's device-side reading: the hold behind a call ends late by about as long as
    another stream's work still runs (here ~50 us of a one-thread spin), and on time otherwise."""
    import torch

    from kernelwright import constants as C
    from kernelwright.worker.hold import DeviceHold

    hold = DeviceHold("cuda", torch.cuda.Event, torch.cuda.synchronize)
    side = torch.cuda.Stream()
    x = torch.randn(1 << 20, device="cuda")
    khz = getattr(torch.cuda.get_device_properties(0), "clock_rate", 1_980_000)

    def readings(unjoined: bool) -> list[float]:
        seen = []
        for _ in range(15):
            torch.cuda.synchronize()
            hold(long=True)
            y = x * 2
            if unjoined:
                with torch.cuda.stream(side):
                    torch.cuda._sleep(int(50e-6 * khz * 1e3))
            y.clone()
            seen.append(hold.probe_ms())
        torch.cuda.synchronize()
        return seen

    honest, racing = readings(False), readings(True)
    assert statistics.median(honest) < C.RACE_PROBE_MS, honest
    assert statistics.median(racing) > 2 * C.RACE_PROBE_MS, racing
