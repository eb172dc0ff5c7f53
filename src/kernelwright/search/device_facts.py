"""One line about the device for prompts: name, size, and the ceilings the judge measured."""

from __future__ import annotations

import os
import platform

from kernelwright.judge import roofline


def _ceilings_text(ceilings: dict[str, float]) -> str:
    parts = []
    if "copy_bytes_per_s" in ceilings:
        parts.append(f"measured copy bandwidth {ceilings['copy_bytes_per_s'] / 1e9:.0f} GB/s")
    for key, value in sorted(ceilings.items()):
        if key.startswith("matmul_flops_per_s_"):
            parts.append(f"{key.removeprefix('matmul_flops_per_s_')} matmul {value / 1e12:.1f} TFLOP/s")
    return ", ".join(parts)


def describe(device: str) -> str:
    """Name, compute units, memory and (when cached) measured ceilings of `device`."""
    import torch

    if device == "cuda" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        text = (f"{p.name}, compute capability {p.major}.{p.minor}, {p.multi_processor_count} SMs, "
                f"{p.total_memory / 2**30:.0f} GiB")
        gpu = p.name
    else:
        text = f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        gpu = None
    # The judge keys ceilings by its environment; any entry for this device name will do here.
    for key, value in roofline.CeilingCache().data.items():
        if isinstance(value, dict) and ((gpu and gpu in key) or (not gpu and "|cpu|" in key)):
            extra = _ceilings_text(value)
            return f"{text}; {extra}" if extra else text
    return text
