"""Host-bound CUDA calls widen a verdict's intervals (judge/timing.idle_share, host_factor).

On the H200 the time of a call that launches many small kernels followed the host's launch
rate, which moved up to 2.5x between fresh processes, and identity candidates of KernelBench's
level-3 tasks read 0.58x-2.24x against themselves (docs/gpu-validation.md section 24). The
figures below are those tasks' own: they must read as ties, never as claims.
"""

from __future__ import annotations

import pytest

from kernelwright import constants as C
from kernelwright.judge import timing
from kernelwright.judge.phases.floors import busy_of


def test_a_call_the_device_mostly_waits_for_is_host_bound() -> None:
    # MobileNetV2 on the H200: 1.76 ms of kernels (about 150 of them) in a 5.95 ms call.
    share = timing.idle_share(5.95, 1.76, 150)
    assert share == pytest.approx((5.95 - 1.76 - 150 * C.HOST_KERNEL_GAP_MS) / 5.95)
    assert 0.6 < share < 0.7


def test_a_short_kernel_is_not_host_bound_for_the_devices_own_gap() -> None:
    # One 5 us kernel charged 8 us: the gap after the start event is the device's, not the host's.
    assert timing.idle_share(0.008, 0.005, 1) == 0.0
    assert timing.idle_share(2.0, 1.99, 3) == 0.0


def test_unknown_busy_time_widens_nothing() -> None:
    assert timing.idle_share(5.0, None, 0) == 0.0
    assert timing.host_factor([]) == 1.0
    assert timing.host_factor([0.0, 0.0]) == 1.0


def test_the_larger_side_decides() -> None:
    free = C.HOST_IDLE_FREE
    assert timing.host_factor([0.1, 0.6]) == pytest.approx(1 + (C.HOST_BOUND_SPREAD - 1) * (0.6 - free) / (1 - free))
    assert timing.host_factor([1.0]) == pytest.approx(C.HOST_BOUND_SPREAD)
    assert timing.host_factor([free]) == 1.0


@pytest.mark.parametrize("raw, eager_ms, cand_ms, busy_ms", [
    ((1.066, 2.69), 14.21, 6.25, 1.72),  # level3/20 MobileNetV2, read 2.24x against itself
    ((1.151, 1.597), 17.50, 12.06, 6.84),  # level3/15 DenseNet121, read 1.31x
    ((1.006, 1.421), 27.67, 23.03, 3.06),  # level3/34 VanillaRNNHidden, read 1.23x
])
def test_level3_identity_readings_are_no_claim_once_widened(raw, eager_ms, cand_ms, busy_ms) -> None:
    # busy_ms: the total of the profile the sweep recorded for the candidate (its top kernel over its share).
    host = timing.host_factor([timing.idle_share(cand_ms, busy_ms, 150), timing.idle_share(eager_ms, busy_ms, 150)])
    low, high = timing.widened(raw, cuda=True, host=host)
    assert low < 1.0 < high  # a tie: the interval holds 1.0
    assert low < C.SPEEDUP_REPORT_MIN
    # Without the host widening the first two were claims (low end at or above the bar).
    if raw[0] / C.BETWEEN_PROCESS_SPREAD["cuda"] >= C.SPEEDUP_REPORT_MIN:
        assert timing.widened(raw, cuda=True)[0] >= C.SPEEDUP_REPORT_MIN


def test_a_real_speedup_of_a_gpu_bound_kernel_stays_a_claim() -> None:
    host = timing.host_factor([timing.idle_share(0.5, 0.49, 1), timing.idle_share(1.2, 1.19, 2)])
    assert host == 1.0
    assert timing.widened((2.3, 2.5), cuda=True, host=host)[0] >= C.SPEEDUP_REPORT_MIN
    assert timing.settled((2.3, 2.5), cuda=True, host=host)


def test_busy_of_reads_the_union_and_counts_kernels() -> None:
    rows = [{"kind": "kernel", "name": "a", "self_us": 300.0, "count": 4},
            {"kind": "kernel", "name": "b", "self_us": 200.0, "count": 1},
            {"kind": "op", "name": "aten::add", "self_us": 50.0, "count": 5},
            {"kind": "busy", "name": "device busy", "self_us": 450.0, "count": 5}]
    assert busy_of(rows) == (0.45, 5)
    # Without interval data: the kernels' sum.
    assert busy_of(rows[:3]) == (0.5, 5)
    # No kernel at all: unknown, not zero (a CPU profile, or one that failed).
    assert busy_of([{"kind": "op", "name": "x", "self_us": 1.0, "count": 1}]) == (None, 0)
    assert busy_of(["junk", {"kind": "kernel", "self_us": 1000.0}]) == (1.0, 1)


def test_a_measured_process_control_stands_in_for_the_host_bound_estimate() -> None:
    # Rowsum's identity on the H200 (section 33): the host-bound estimate added 1.28-1.33x each
    # way while the control, the same spread measured in the verdict's own processes, was at most
    # 1.014; the identities read 0.986-1.001x.
    assert timing.pair_spread(1.31, 1.014, measured=True) == 1.014
    # A control that read a process 3.4x slower widens by that, whatever the estimate says.
    assert timing.pair_spread(1.0, 3.4, measured=True) == 3.4
    # No measured control (skipped for a large model, or its calls failed and the fallback
    # stands): the estimate still counts, the larger of the two.
    assert timing.pair_spread(1.31, 1.0, measured=False) == 1.31
    assert timing.pair_spread(1.31, C.PROCESS_FACTOR_FALLBACK, measured=False) == C.PROCESS_FACTOR_FALLBACK
    assert timing.pair_spread(0.5, 0.9, measured=True) == 1.0  # never narrower than the base spread
