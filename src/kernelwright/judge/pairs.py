"""Worker pairs (a reference and a candidate worker), and a pool that keeps the next one ready.

Start-up, a fresh interpreter importing torch and then creating a CUDA context,
is the largest fixed cost of a verdict: about 1 s on a 2-core CPU machine, 4-5 s
on an H100. A search judges one candidate after another, so the next pair can
start while the search does something else. Pre-starting weakens nothing:

- a pair serves exactly one verdict, and no candidate code has run in either
  worker before the verdict's own load request;
- the candidate's build directory (keyed by its source) is given with that load
  request, not at spawn, since the source is not known yet;
- the pool starts a pair only when told to, after a verdict's timed calls are
  over, as background work that stands still while anything else is timed
  (sandbox.quiet), and hands it out only once both workers have finished
  starting, so a starting interpreter never competes with a timed call.
"""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.sandbox import buildcache, confine, quiet
from kernelwright.sandbox.process import SandboxConfig, Worker
from kernelwright.task.metadata import TaskError


@dataclass(frozen=True)
class PairSpec:
    """What a pair is started for; a pool hands a pair out only for the same spec."""

    device: str
    threads: int | None
    memory_bytes: int
    build_cache_dir: str | None = None  # None: given with the load request (pooled pairs)
    confine: bool = True  # the candidate worker confined (sandbox.confine)


@dataclass
class Pair:
    """Two started workers and what their setup replies said."""

    ref: Worker
    cand: Worker
    environment: dict[str, Any] = field(default_factory=dict)
    hardening: list[str] = field(default_factory=list)
    confinement: dict[str, str] = field(default_factory=dict)  # the candidate's, as its setup reported it
    start_s: float = 0.0
    spawned_at: float = 0.0

    def alive(self) -> bool:
        """Both workers still running and unfailed."""
        return all(w.proc.poll() is None and w.failure is None for w in (self.ref, self.cand))

    def close(self) -> None:
        """Kill both workers (safe to call twice)."""
        for w in (self.cand, self.ref):
            w.close()


def spawn_pair(spec: PairSpec) -> Pair:
    """Spawn both workers (milliseconds); they start up in parallel until `finish_start`."""
    cuda = spec.device == "cuda"
    base = dict(memory_bytes=spec.memory_bytes, threads=spec.threads, cuda=cuda)
    # The reference runs the task, which is trusted (docs/threat-model.md), unconfined.
    # Its compiler caches persist across verdicts (buildcache.reference_dir) where the candidate's
    # files are confined (Landlock), so that no candidate can have written to them.
    ref_cache = str(buildcache.reference_dir(spec.device)) if spec.confine and confine.landlock_abi() >= 1 else None
    ref = Worker(P.Role.REFERENCE, SandboxConfig(**base, drop_capabilities=False, confine=False,
                                                 build_cache_dir=ref_cache))
    try:
        cand = Worker(P.Role.CANDIDATE, SandboxConfig(**base, build_cache_dir=spec.build_cache_dir,
                                                      confine=spec.confine))
    except BaseException:
        ref.close()
        raise
    return Pair(ref, cand, spawned_at=time.perf_counter())


def finish_start(pair: Pair, spec: PairSpec, background: bool = False) -> Pair:
    """Wait for both workers' setup replies; TaskError if either cannot start (the pair is closed).

    `background`: the start is background work (sandbox.quiet), stopped while anything
    else in this process is being timed.
    """
    try:
        setup = P.SetupRequest(op=P.Op.SETUP, device=spec.device, threads=spec.threads)
        with ExitStack() as stack, ThreadPoolExecutor(2) as ex:
            if background:
                stack.enter_context(quiet.background(pair.ref))
                stack.enter_context(quiet.background(pair.cand))
            fr = ex.submit(pair.ref.request, setup, None, C.WORKER_START_TIMEOUT_S)
            fc = ex.submit(pair.cand.request, setup, None, C.WORKER_START_TIMEOUT_S)
            reply_ref, _, _ = fr.result()
            reply_cand, _, _ = fc.result()
        for reply in (reply_ref, reply_cand):
            if reply.get("status") != P.Status.OK:
                raise TaskError(f"a worker could not start: {reply.get('error')}")
    except BaseException:
        pair.close()
        raise
    pair.environment = dict(reply_ref["environment"])
    pair.hardening = list(reply_cand.get("hardening", []))
    pair.confinement = dict(reply_cand.get("confinement") or {})
    pair.start_s = time.perf_counter() - pair.spawned_at
    return pair


def start_pair(spec: PairSpec) -> Pair:
    """Spawn a pair and wait until it has started."""
    return finish_start(spawn_pair(spec), spec)


class PairPool:
    """At most one pair starting or ready, for the next verdict of one judging loop.

    Not a general worker pool: one judge at a time takes from it, and whoever
    owns it calls `refill` only at a moment when nothing is being timed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: tuple[PairSpec, Pair, Future[Pair]] | None = None
        self._ex = ThreadPoolExecutor(1, thread_name_prefix="kw-pair")
        self.closed = False

    def refill(self, spec: PairSpec) -> None:
        """Spawn a pair for `spec` and let it start in the background, unless one is pending.

        The workers are spawned here, by the calling thread (they die with it), so that
        `close` can kill them at once, even halfway through starting.
        """
        with self._lock:
            if self.closed or self._pending is not None:
                return
            try:
                pair = spawn_pair(spec)
            except OSError:
                return  # no pair now: the next verdict starts its own and reports why
            self._pending = (spec, pair, self._ex.submit(finish_start, pair, spec, True))

    def wait_ready(self, timeout: float = C.WORKER_START_TIMEOUT_S) -> bool:
        """Block until the pending pair has started (or failed); False if none is pending."""
        with self._lock:
            pending = self._pending
        if pending is None:
            return False
        try:
            pending[2].result(timeout=timeout)
        except Exception:  # noqa: BLE001 - take() discards it and the verdict starts its own
            return False
        return True

    def take(self, spec: PairSpec) -> Pair | None:
        """The ready pair for `spec` (waiting for it to finish starting), or None.

        A pair for another spec, one that failed to start, or one whose workers died
        while waiting is discarded: the caller then starts its own.
        """
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return None
        their_spec, _, fut = pending
        try:
            pair = fut.result()
        except Exception:  # noqa: BLE001 - the caller starts a fresh pair and reports that failure
            return None
        if their_spec != spec or not pair.alive():
            pair.close()
            return None
        return pair

    def close(self) -> None:
        """Stop refilling and kill any pair still held."""
        with self._lock:
            self.closed = True
            pending, self._pending = self._pending, None
        if pending is not None:
            _, pair, fut = pending
            # Kill the processes now, even halfway through starting (Ctrl-C must be prompt).
            # Exactly one party then closes the pair's descriptors: the starting thread when
            # the start fails, this callback when it succeeded; never one still being read.
            pair.ref.kill()
            pair.cand.kill()
            fut.add_done_callback(_close_if_started)
        self._ex.shutdown(wait=False)

    def __enter__(self) -> "PairPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_if_started(fut: "Future[Pair]") -> None:
    if fut.exception() is None:
        fut.result().close()
