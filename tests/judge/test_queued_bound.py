"""The judge's clock bound of short CUDA calls (skipped without CUDA).

Queued batches (judge/timing.py) bound a call by its device time, from the judge's clock alone:
for a kernel of about 10 us the bound must charge most of the kernel time the judge's own
profile saw, and must not be the protocol's cost a call (a per-call batch's bound read 0.18 ms
for an 11 us kernel on the H200).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright import constants as C

pytestmark = pytest.mark.gpu

# Off (constants.QUEUED_BOUND_MAX_MS, docs/gpu-validation.md section 29): no queued batch runs.
queued_on = pytest.mark.skipif(C.QUEUED_BOUND_MAX_MS <= 0, reason="the queued clock bound is off")

ROOT = Path(__file__).resolve().parents[2]


@queued_on
def test_a_short_kernels_clock_bound_is_its_device_time(judge):
    result = judge(ROOT / "examples" / "elementwise" / "task.py", ROOT / "examples" / "elementwise" / "cuda_nvrtc.py",
                   device="cuda", threads=None)
    assert result.accepted, result.reasons
    t = result.timing
    cand = t.candidate_ms
    assert t.profile_busy_ms is not None and cand.clock_bound is not None and cand.reported_median is not None
    assert cand.clock_bound >= 0.5 * t.profile_busy_ms, t
    assert cand.clock_bound <= max(1.5 * cand.reported_median, cand.reported_median + 0.01), t


def test_a_short_side_stream_kernel_is_charged_by_the_bound(judge):
    """Issue 12's case: a short kernel left on a side stream; rejected as a race, or charged."""
    side = ROOT / "tests" / "exploits" / "test_gpu_cheats.py"
    source = side.read_text().split("SIDE_STREAM = '''", 1)[1].split("'''", 1)[0]
    result = judge("gelu_mul", source, device="cuda", threads=None)
    if result.accepted:
        # With the queued bound off, an accepted one is charged by the profile bound instead:
        # no less than PROFILE_BOUND_SAFETY of the device's busy time in one call.
        t = result.timing
        charged = t.candidate_ms.clock_bound if C.QUEUED_BOUND_MAX_MS > 0 else t.candidate_ms.median
        assert charged >= 0.5 * t.profile_busy_ms, t
    else:
        assert result.checks[0] in {"race", "mismatch", "timed_output"}, result.reasons
