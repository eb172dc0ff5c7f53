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


def run_output_dir(store_path: str | os.PathLike[str], run_id: str) -> Path:
    """Where a run writes best.py and best.json by default: runs/RUN_ID beside its store.

    The kernel is a result worth keeping, like the store's history, so it goes under the
    data directory with the store, never into the current directory (a checkout, say).
    """
    return Path(store_path).expanduser().resolve().parent / "runs" / run_id
