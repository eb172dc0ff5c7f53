"""The physical floor: no honest kernel moves its bytes or does its FLOPs faster than the device can.

Ceilings (copy bandwidth, matmul rate) are measured once per device, torch
version and thread count, and cached as JSON under the user's cache directory.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import torch

from kernelwright import constants as C
from kernelwright.paths import cache_dir


def measure_ceilings(device: str) -> dict[str, Any]:
    """Copy bandwidth (read + write bytes per second) and matmul FLOP/s on `device`."""
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    n = (256 << 20) // 4 if cuda else (64 << 20) // 4
    src = torch.rand(n, device=device)
    dst = torch.empty_like(src)

    def best(fn: Any, reps: int) -> float:
        fn()
        sync()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t0)
        return min(times)

    copy_s = best(lambda: dst.copy_(src), 10)
    result: dict[str, Any] = {"copy_bytes_per_s": 2 * n * 4 / copy_s}
    size = 8192 if cuda else 1024
    dtypes = [torch.float32] + ([torch.bfloat16, torch.float16] if cuda else [])
    for dt in dtypes:
        a = torch.rand(size, size, device=device, dtype=dt)
        b = torch.rand(size, size, device=device, dtype=dt)
        s = best(lambda: torch.mm(a, b), 5)
        result[f"matmul_flops_per_s_{str(dt).removeprefix('torch.')}"] = 2 * size**3 / s
    return result


def cache_key(environment: dict[str, Any]) -> str:
    """Ceilings depend on the device, torch and the thread count."""
    return "|".join(str(environment.get(k)) for k in ("gpu", "device", "torch", "threads"))


def load_cached(key: str) -> dict[str, Any] | None:
    """Cached ceilings for this key, if any."""
    try:
        data = json.loads((cache_dir() / "ceilings.json").read_text())
    except (OSError, ValueError):
        return None
    value = data.get(key)
    return value if isinstance(value, dict) else None


def store(key: str, ceilings: dict[str, Any]) -> None:
    """Add ceilings to the cache (atomic replace, so readers never see half a file)."""
    path = cache_dir() / "ceilings.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data[key] = ceilings
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def floor_ms(bytes_moved: int, flops: int, dtype: str, ceilings: dict[str, Any], cuda: bool) -> float | None:
    """The least time the work can take, or None when nothing bounds it.

    On the CPU a working set smaller than the last-level cache can beat DRAM
    bandwidth, so the bandwidth term only applies to large tasks there.
    """
    terms = []
    bw = ceilings.get("copy_bytes_per_s")
    if bw and (cuda or bytes_moved >= C.CPU_ROOFLINE_MIN_BYTES):
        terms.append(bytes_moved / bw * 1e3)
    rate = ceilings.get(f"matmul_flops_per_s_{dtype}") or ceilings.get("matmul_flops_per_s_float32")
    if rate and flops:
        terms.append(flops / rate * 1e3)
    return max(terms) if terms else None
