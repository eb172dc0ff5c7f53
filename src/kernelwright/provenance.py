"""What code made a verdict: kernelwright's own sources and torch's version, as a digest.

A record made by another judge must not be reused as if this one had made it: the package
version stays 0.1.0 across every change to the judge, so a resumed bench keys its records on
the digest of the sources themselves.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import torch

PACKAGE_ROOT = Path(__file__).resolve().parent


def code_digest(root: Path = PACKAGE_ROOT) -> str:
    """A digest of every Python source under `root` (kernelwright's package by default), by path and content."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


@functools.lru_cache(maxsize=1)
def judge_identity() -> dict[str, str]:
    """kernelwright's source digest and torch's version (computed once a process)."""
    return {"kernelwright_code": code_digest(), "torch": torch.__version__}
