"""Build candidates' extensions in parallel into the judge's content-addressed build cache.

    python scripts/prebuild.py --device cuda [--jobs N] CANDIDATE.py ...

Each candidate is imported in its own process with TORCH_EXTENSIONS_DIR pointing
at the directory the judge will use for that exact source, so a later
`kernelwright verify` finds the build done. Nothing here decides a verdict: a
candidate that fails to build is simply built (and rejected) again by the judge.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from kernelwright.sandbox.buildcache import build_dir  # noqa: E402


def build(path: Path, device: str) -> tuple[str, float, int]:
    source = path.read_text()
    bdir = build_dir(source, device)
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(bdir / "torch_extensions"),
               TRITON_CACHE_DIR=str(bdir / "triton"), MAX_JOBS="2")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", f"exec(compile(open({str(path)!r}).read(), {str(path)!r}, 'exec'))"],
                          env=env, capture_output=True, text=True, timeout=1200)
    return str(path), time.perf_counter() - t0, proc.returncode


def main() -> None:
    """Build every candidate given, several at a time."""
    ap = argparse.ArgumentParser()
    ap.add_argument("candidates", nargs="+", type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    args = ap.parse_args()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as ex:
        for path, seconds, rc in ex.map(lambda p: build(p, args.device), args.candidates):
            print(f"built {path} in {seconds:.1f} s (exit {rc})")
    print(f"{len(args.candidates)} candidates in {time.perf_counter() - t0:.1f} s with {args.jobs} jobs")


if __name__ == "__main__":
    main()
