"""Nsight Compute's view of a candidate, as a few lines of feedback for proposers.

Where `ncu` exists and the device is a GPU, an accepted kernel is run once more under
`ncu --section SpeedOfLight` in its own sandboxed, killable process. The summary
(duration, memory and compute throughput as a share of peak, per kernel) tells an LLM
whether a kernel is memory- or compute-bound. It is feedback only: nothing here
touches a verdict, and any failure just means no summary.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from kernelwright.sandbox import limits
from kernelwright.sandbox.process import SandboxConfig

NCU_TIMEOUT_S = 180.0
NCU_LAUNCHES = 8  # kernels profiled (the first calls of the candidate)
_METRICS = {"Duration": "duration", "Memory Throughput": "memory", "Compute (SM) Throughput": "compute"}


def available() -> bool:
    """Whether an `ncu` executable is on PATH."""
    return shutil.which("ncu") is not None


def summarize(csv_text: str, top: int = 4) -> str:
    """'ncu: k1 12.3 us, memory 85% of peak, compute 20%; ...' from `ncu --csv` output ('' if none)."""
    start = csv_text.find('"ID"')
    if start < 0:
        return ""
    per_kernel: dict[str, dict[str, str]] = defaultdict(dict)
    units: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO(csv_text[start:])):
        key = _METRICS.get(row.get("Metric Name", ""))
        name = (row.get("Kernel Name") or "").split("(")[0].strip()
        if key and name and key not in per_kernel[name]:
            per_kernel[name][key] = row.get("Metric Value", "")
            if key == "duration":
                units[name] = row.get("Metric Unit", "")
    parts = []
    for name, m in list(per_kernel.items())[:top]:
        bits = [f"{m['duration']} {units.get(name, '')}".strip()] if "duration" in m else []
        bits += [f"memory {m['memory']}% of peak"] if "memory" in m else []
        bits += [f"compute {m['compute']}% of peak"] if "compute" in m else []
        parts.append(f"{name[:60]} " + ", ".join(bits))
    return ("ncu: " + "; ".join(parts)) if parts else ""


LAST_ERROR: list[str] = []  # why the last profile() gave nothing (for diagnostics)


def profile(task_path: Path, candidate_path: Path, build_dir: Path | None = None,
            timeout_s: float = NCU_TIMEOUT_S) -> str:
    """The SpeedOfLight summary of a candidate's kernels, or '' when ncu is missing or fails."""
    LAST_ERROR.clear()
    exe = shutil.which("ncu")
    if exe is None:
        return ""
    scratch = Path(tempfile.mkdtemp(prefix="kw-ncu-"))
    # Unconfined (sandbox.confine): ncu's injected library reports to ncu over sockets. The
    # search calls this only when its judge runs candidates unconfined too.
    config = SandboxConfig(cuda=True, build_cache_dir=str(build_dir) if build_dir else None, confine=False)
    env = limits.scrubbed_env(scratch, config)
    env["PATH"] = os.environ.get("PATH", "/usr/bin:/bin")
    cmd = [exe, "--section", "SpeedOfLight", "--csv", "--launch-count", str(NCU_LAUNCHES),
           "--target-processes", "all", sys.executable, "-m", "kernelwright.search._ncu_driver",
           str(Path(task_path).resolve()), str(Path(candidate_path).resolve())]  # cwd is a scratch dir
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                cwd=scratch, start_new_session=True, stdin=subprocess.DEVNULL,
                                preexec_fn=lambda: limits.apply_rlimits(config))
    except OSError:
        return ""
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        LAST_ERROR.append(f"ncu took over {timeout_s:g} s")
        return ""
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary = summarize(out) if proc.returncode == 0 else ""
    if not summary:
        LAST_ERROR.append(f"ncu exit {proc.returncode}: " + out[-1500:])
    return summary
