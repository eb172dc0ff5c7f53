"""The physical floor: no honest kernel moves its bytes or does its FLOPs faster than the device can.

Ceilings (copy bandwidth, matmul rate) are measured once per device, torch
version and thread count, by the reference worker (`worker.ceilings`), and cached
as JSON under the user's cache directory. This module is the judge's side: the
cache, and the floors computed from it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kernelwright import constants as C
from kernelwright.paths import cache_dir


def cache_key(environment: dict[str, Any]) -> str:
    """Ceilings depend on the device, torch and the thread count."""
    return "|".join(str(environment.get(k)) for k in ("gpu", "device", "torch", "threads"))


class JsonCache:
    """A cache file of the judge's own measurements, read once before any candidate runs.

    Candidates run as the same user and could rewrite the file; reading it before they
    exist, and putting it back afterwards if it changed, keeps one judgement's candidate
    from shaping what the judge reads from it, for itself or for later ones.
    """

    def __init__(self, name: str) -> None:
        self.path = cache_dir() / name
        try:
            self._raw = self.path.read_bytes()
        except OSError:
            self._raw = b""
        try:
            data = json.loads(self._raw) if self._raw else {}
        except ValueError:
            data = {}
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The entry of a key, if it is plausible numbers."""
        value = self.data.get(key)
        if not isinstance(value, dict):
            return None
        if not all(isinstance(v, (int, float)) and 0 < v < 1e18 for v in value.values()):
            return None
        return value

    def put(self, key: str, entry: dict[str, Any]) -> None:
        """Add an entry (atomic replace, so readers never see half a file)."""
        self.data[key] = entry
        self._raw = json.dumps(self.data, indent=1).encode()
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(self._raw)
        os.replace(tmp, self.path)

    def restore_if_changed(self) -> bool:
        """Put the file back as this judge left it; True when something had changed it."""
        try:
            now = self.path.read_bytes()
        except OSError:
            now = b""
        if now == self._raw:
            return False
        if self._raw:
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(self._raw)
            os.replace(tmp, self.path)
        else:
            self.path.unlink(missing_ok=True)
        return True


class CeilingCache(JsonCache):
    """The device ceilings (copy bandwidth, matmul rates), measured once per device."""

    def __init__(self) -> None:
        super().__init__("ceilings.json")


def floor_ms(bytes_moved: int, flops: int, dtype: str, ceilings: dict[str, Any],
             cuda: bool) -> tuple[float | None, float | None]:
    """(bytes floor, FLOP floor) in ms: the least time to move the task's bytes, and to do
    the reference's FLOPs; None where nothing bounds it.

    Only the bytes floor is a hard bound: a kernel may legitimately do far less
    arithmetic than the reference (diag(A @ B) needs no matmul), never less traffic
    than reading its inputs and writing its outputs. On the CPU a working set smaller
    than the last-level cache can beat DRAM bandwidth, so the bytes floor only applies
    to large tasks there.
    """
    bw = ceilings.get("copy_bytes_per_s")
    by_bytes = bytes_moved / bw * 1e3 if bw and (cuda or bytes_moved >= C.CPU_ROOFLINE_MIN_BYTES) else None
    rate = ceilings.get(f"matmul_flops_per_s_{dtype}") or ceilings.get("matmul_flops_per_s_float32")
    by_flops = flops / rate * 1e3 if rate and flops else None
    return by_bytes, by_flops
