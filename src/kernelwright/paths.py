"""Where kernelwright keeps what outlives one run."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The cache root for ceilings and builds (KERNELWRIGHT_CACHE overrides)."""
    root = os.environ.get("KERNELWRIGHT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kernelwright")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path
