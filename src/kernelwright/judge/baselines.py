"""torch.compile's speed relative to eager, kept per task, device and torch version (trusted side).

The speedup vs eager is always measured side by side with the candidate, in interleaved
rounds: it is the claim. The torch.compile baseline costs a compile in every verdict (6-9 s
on the H200, most of a standalone verdict), so a bench may keep it: with
`VerifyOptions.compile_ratio_cache`, a verdict that timed torch.compile keeps compile/eager
(per-round ratios' median and 95% interval, as the judge measured them interleaved), and a
later verdict of the same task on the same device and torch takes its speedup vs
torch.compile as its speedup vs eager times that ratio: the interval the product of both,
the ratio's widened by the spread between pairs of processes (it came from another pair).
The file lives with the device ceilings and is guarded the same way (roofline.JsonCache).
"""

from __future__ import annotations

import hashlib
from typing import Any

from kernelwright.judge import roofline, timing

FILE = "compile_ratios.json"


def ratio_key(environment: dict[str, Any], task_source: str) -> str:
    """The task (its source) on this device, torch and thread count."""
    return roofline.cache_key(environment) + "|" + hashlib.sha256(task_source.encode()).hexdigest()


def ratio_of(compiled: timing.Measurement, eager: timing.Measurement) -> dict[str, float] | None:
    """compile/eager from interleaved rounds: {"point", "low", "high"}, or None without an interval."""
    point, iv = timing.speedup_interval(compiled, eager)
    if point is None or iv is None:
        return None
    return {"point": float(point), "low": float(iv[0]), "high": float(iv[1])}


def via_ratio(vs_eager: tuple[float | None, tuple[float, float] | None], ratio: dict[str, float],
              cuda: bool) -> tuple[float | None, tuple[float, float] | None]:
    """The speedup vs torch.compile from the speedup vs eager and a kept compile/eager ratio."""
    point, iv = vs_eager
    if point is None:
        return None, None
    r_iv = timing.widened((ratio["low"], ratio["high"]), cuda)
    return point * ratio["point"], ((iv[0] * r_iv[0], iv[1] * r_iv[1]) if iv and r_iv else None)
