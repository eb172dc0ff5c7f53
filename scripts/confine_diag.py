"""Which part of a candidate worker's confinement stops CUDA from starting, on this machine.

Each variant runs in a fresh interpreter: apply only some parts of `sandbox.confine` (the
same functions the worker uses), then start CUDA and run one kernel. Where `strace` exists,
a failing variant is run again under it and its failed system calls are printed.

    python scripts/confine_diag.py [--strace]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

CHILD = r'''
import ctypes, os, sys, tempfile
from kernelwright.sandbox import confine
parts = sys.argv[1].split(",")
lib = ctypes.CDLL(None, use_errno=True)
lib.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS, as limits.harden_self
why = []
if "seccomp" in parts:
    why.append(confine.deny_unix_sockets())
if "userns" in parts:
    why.append(confine._own_network())
if "landlock" in parts:
    abi = confine.landlock_abi()
    if "noscope" in parts:  # no signal or abstract-socket scoping (ABI 6)
        abi = min(abi, 5)
    scratch = sys.argv[2]
    readable = [*confine._SYSTEM_READ, *confine.python_paths(), *[p[2:] for p in parts if p.startswith("r=")]]
    writable = [scratch, *[p[2:] for p in parts if p.startswith("w=")]]
    why.append(confine._restrict(abi, readable, writable, confine._devices(), False))
print("applied", parts, [w for w in why if w], flush=True)
import torch
if "initseccomp" in parts:  # the filter after cuInit, before any context (a build-only worker)
    torch.cuda.init()
    print("filter after cuInit", repr(confine.deny_unix_sockets()), flush=True)
print("device_count", torch.cuda.device_count(), flush=True)
x = torch.ones(1 << 20, device="cuda")
print("sum", float((x * 2).sum()), flush=True)
if "lateseccomp" in parts:  # the filter after the driver started, then more CUDA work
    print("late filter", repr(confine.deny_unix_sockets()), flush=True)
    import socket
    try:
        socket.socket(socket.AF_UNIX)
        print("AF_UNIX socket still allowed", flush=True)
    except OSError as exc:
        print("AF_UNIX socket denied:", exc, flush=True)
    y = torch.randn(512, 512, device="cuda")
    print("late sum", float((y @ y).abs().sum() > 0), torch.cuda.get_device_name(0), flush=True)
'''

VARIANTS = ["none", "seccomp", "userns", "landlock", "userns,landlock", "initseccomp", "lateseccomp",
            "userns,landlock,initseccomp", "userns,landlock,lateseccomp"]


def main() -> int:
    """Run every variant; print one line each, and the failed system calls of failures."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--strace", action="store_true", help="re-run failures under strace -f")
    ap.add_argument("--shim", default="", help="variants (;-separated) to re-run with scripts/failshim.c preloaded")
    ap.add_argument("--variants", default="", help="only these variants (;-separated)")
    args = ap.parse_args()
    scratch = tempfile.mkdtemp(prefix="kw-diag-")
    env = dict(os.environ, HOME=scratch, TRITON_CACHE_DIR=scratch, CUDA_CACHE_PATH=scratch)
    failed = []
    for v in args.variants.split(";") if args.variants else VARIANTS:
        r = subprocess.run([sys.executable, "-c", CHILD, v, scratch], capture_output=True, text=True, env=env,
                           timeout=120)
        ok = r.returncode == 0
        last = (r.stdout.strip().splitlines() or [""])[-1]
        err = (r.stderr.strip().splitlines() or [""])[-1]
        print(f"{v:28s} {'ok ' if ok else 'FAIL'} {last} {'' if ok else err[:300]}", flush=True)
        if not ok:
            failed.append(v)
    cc = shutil.which("gcc") or shutil.which("cc")
    if args.shim and cc:
        so = os.path.join(scratch, "failshim.so")
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "failshim.c")
        subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", so, src, "-ldl"], check=True)
        for v in args.shim.split(";"):
            r = subprocess.run([sys.executable, "-c", CHILD, v, scratch], capture_output=True, text=True,
                               env=dict(env, LD_PRELOAD=so), timeout=120)
            lines = [ln for ln in r.stderr.splitlines() if ln.startswith("FAILSHIM")]
            print(f"--- shim, variant {v}: exit {r.returncode}, {len(lines)} logged calls (last 40) ---")
            for ln in lines[-40:]:
                print(ln[:300])
    if args.strace and failed and shutil.which("strace"):
        v = min(failed, key=lambda s: s.count(","))
        log = os.path.join(scratch, "strace.log")
        subprocess.run(["strace", "-f", "-o", log, sys.executable, "-c", CHILD, v, scratch], capture_output=True,
                       env=env, timeout=180)
        lines = [ln for ln in open(log) if "= -1 E" in ln and "ENOENT" not in ln]
        print(f"--- strace of {v}: {len(lines)} failed calls other than ENOENT (last 60) ---")
        for ln in lines[-60:]:
            print(ln.rstrip()[:300])
    elif args.strace and failed:
        print("strace not installed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
