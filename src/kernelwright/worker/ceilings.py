"""Device ceilings measured in the reference worker: copy bandwidth and matmul rate.

The judge asks for them (`protocol.Op.CEILINGS`) only when its cache (`judge.roofline`)
has none for this device, before the candidate exists; it computes the floors itself.
"""

from __future__ import annotations

import time
from typing import Any

import torch


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
