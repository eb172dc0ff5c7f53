"""Build a candidate's extensions ahead of its judgement, in a sandboxed worker.

A search compiles new candidates on the CPU while the device times others: this
imports the candidate (which is what triggers `load_inline` and friends) in the
same kind of worker, with the same environment and build directory, that the judge
will use, then kills it. The build lands in the content-addressed cache; nothing the
worker says decides anything, and a candidate that failed here is built (and
rejected) again by the judge itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.sandbox import buildcache, pch, quiet
from kernelwright.sandbox.limits import pch_root
from kernelwright.sandbox.process import SandboxConfig, Worker, WorkerFailure


@dataclass(frozen=True)
class PrebuildResult:
    """How the ahead-of-time build went (informational only)."""

    ok: bool
    seconds: float
    error: str = ""


def prebuild(source: str, filename: str, device: str,
             timeout_s: float = C.IMPORT_TIMEOUT_S) -> PrebuildResult:
    """Import `source` once in a sandboxed worker so its build is cached for the judge."""
    t0 = time.perf_counter()
    bdir = buildcache.build_dir(source, device)
    try:
        worker = Worker(P.Role.CANDIDATE, SandboxConfig(build_cache_dir=str(bdir), cuda=device == "cuda"))
    except OSError as exc:
        return PrebuildResult(False, time.perf_counter() - t0, f"could not start a worker: {exc}")
    try:
        # A compiler must not compete with a candidate being timed in the meantime.
        with buildcache.exclusive(bdir), quiet.background(worker):
            reply, _, _ = worker.request(P.BuildRequest(op=P.Op.BUILD, source=source, filename=filename,
                                                        cpp_prefix_pch=pch.inductor_include(pch_root(), source, build=False)),
                                         None, timeout_s)
        ok = reply.get("status") not in (P.Status.IMPORT_FAILED, P.Status.ERROR)
        return PrebuildResult(ok, time.perf_counter() - t0, "" if ok else str(reply.get("error", ""))[-2000:])
    except WorkerFailure as exc:
        return PrebuildResult(False, time.perf_counter() - t0, str(exc))
    finally:
        worker.close()
