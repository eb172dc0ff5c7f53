"""A content-addressed build directory per candidate, safe across processes and kills.

Two judges of the same source share compiled extensions; judges of different
sources never share a directory, so they never contend for torch's build locks.
An flock (released by the kernel when its holder dies) serializes builders of one
key; while holding it, leftover torch `lock` files are stale by construction and
are removed, so a killed build never blocks the next one.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from kernelwright.paths import cache_dir


def torch_versions() -> tuple[str, str]:
    """torch's version and its CUDA version, as `torch.__version__` and `str(torch.version.cuda)` say.

    Read from torch's own `version.py` when torch is not imported yet, so that a command can start
    its workers (judge.pairs.prespawn, whose reference's cache directory is keyed by them) before
    it imports torch itself.
    """
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "version"):
        return str(torch.__version__), str(torch.version.cuda)
    found: dict[str, object] = {}
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin:
        try:
            tree = ast.parse(Path(spec.origin).with_name("version.py").read_text())
        except (OSError, SyntaxError, ValueError):
            tree = ast.Module(body=[], type_ignores=[])
        for node in tree.body:  # `__version__ = '...'` and `cuda: Optional[str] = '...'`
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            if isinstance(target, ast.Name) and isinstance(getattr(node, "value", None), ast.Constant):
                found[target.id] = node.value.value  # type: ignore[union-attr]
    if isinstance(found.get("__version__"), str):
        return str(found["__version__"]), str(found.get("cuda"))
    import torch  # an unusual layout: ask torch itself

    return str(torch.__version__), str(torch.version.cuda)


@lru_cache(maxsize=1)
def toolchain_id() -> str:
    """Compiler and runtime versions that change a build's output."""
    parts = [*torch_versions(), sys.version.split()[0], platform.machine()]
    for tool in (os.environ.get("CXX", "c++"), "nvcc"):
        exe = shutil.which(tool)
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20).stdout
            parts.append(out.strip().splitlines()[-1] if out.strip() else exe)
        except (OSError, subprocess.SubprocessError):
            parts.append(exe)
    return "|".join(parts)


def build_dir(source: str, device: str) -> Path:
    """The build directory for a candidate source on a device kind."""
    key = hashlib.sha256("\0".join([source, device.split(":")[0], toolchain_id()]).encode()).hexdigest()
    path = cache_dir() / "build" / key[:24]
    path.mkdir(parents=True, exist_ok=True)
    return path


def reference_dir(device: str) -> Path:
    """The reference worker's compiler caches (its torch.compile baseline), kept across verdicts.

    Inductor finds the baseline it compiled for an earlier verdict of the same task here
    instead of compiling it again (its keys cover the graph, the device and torch's version;
    the directory is per toolchain as well). Only the trusted reference worker writes here:
    it is outside the candidates' build cache, which a confined candidate is limited to, and
    the judge uses it only when the candidate is confined (sandbox.confine), since an
    unconfined candidate could otherwise plant a slow baseline for the next verdict.
    """
    key = hashlib.sha256("\0".join(["reference", device.split(":")[0], toolchain_id()]).encode()).hexdigest()
    path = cache_dir() / "reference" / key[:24]
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the directory's flock; clear torch's stale build locks under it."""
    with open(path / ".kernelwright.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        for stale in path.glob("torch_extensions/**/lock"):
            try:
                stale.unlink()
            except OSError:
                pass
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
