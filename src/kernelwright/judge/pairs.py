"""Worker pairs (a reference and a candidate worker), and a pool that keeps the next one ready.

Start-up, a fresh interpreter importing torch and then creating a CUDA context,
is the largest fixed cost of a verdict: about 1 s on a 2-core CPU machine, 4-5 s
on an H100. A search judges one candidate after another, so the next pair can
start while the search does something else. Pre-starting weakens nothing:

- a pair serves exactly one verdict, and no candidate code has run in either
  worker before the verdict's own load request;
- the candidate's build directory (keyed by its source) is given with that load
  request, not at spawn, since the source is not known yet;
- a start has two halves. Spawning (`spawn_ahead`) runs the interpreters'
  imports, CPU work only, and may begin as soon as a verdict has its own pair:
  the spawned workers are background work that stands still while anything is
  timed (sandbox.quiet). Setting up (`refill`: the CUDA context, the launch
  hold's calibration, which spins every SM) touches the GPU, so it is sent only
  after a verdict's timed calls are over, never while another process's
  checked or timed calls run beside it; the pool hands a pair out only once
  both workers have finished setting up.
"""

from __future__ import annotations

import threading
import time
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
    start_s: float = 0.0  # from spawn to set up (a pooled pair's includes its wait for `refill`)
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


def finish_start(pair: Pair, spec: PairSpec) -> Pair:
    """Wait for both workers' setup replies; TaskError if either cannot start (the pair is closed)."""
    try:
        setup = P.SetupRequest(op=P.Op.SETUP, device=spec.device, threads=spec.threads)
        with ThreadPoolExecutor(2) as ex:
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


@dataclass
class _Pending:
    """A pair the pool holds: spawned, and set up once `go` is set."""

    spec: PairSpec
    pair: Pair
    go: threading.Event
    started: Future[Pair]


def _start_when_told(pair: Pair, spec: PairSpec, go: threading.Event) -> Pair:
    """Set up a spawned pair once `go` is set; until it is set up it is background work.

    Its interpreters import meanwhile, stopped whenever anything is timed (sandbox.quiet);
    the setup itself waits for `go`, which the pool's owner gives only when nothing is.
    """
    with quiet.background(pair.ref), quiet.background(pair.cand):
        go.wait()
        return finish_start(pair, spec)


class PairPool:
    """At most one pair spawned, starting or ready, for the next verdict of one judging loop.

    Not a general worker pool: one judge at a time takes from it, and whoever
    owns it calls `refill` only at a moment when nothing is being timed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: _Pending | None = None
        self._ex = ThreadPoolExecutor(1, thread_name_prefix="kw-pair")
        self.closed = False

    def spawn_ahead(self, spec: PairSpec) -> None:
        """Spawn a pair for `spec` whose interpreters import now and set up only at `refill`.

        A no-op when one is held. The workers are spawned here, by the calling thread (they
        die with it), so that `close` can kill them at once, even halfway through starting.
        """
        self._hold(spec, go=False)

    def refill(self, spec: PairSpec) -> None:
        """Let the held pair set up, or spawn one for `spec` that starts in the background now.

        Called only at a moment when nothing is being timed.
        """
        self._hold(spec, go=True)

    def _hold(self, spec: PairSpec, go: bool) -> None:
        with self._lock:
            if self.closed:
                return
            if self._pending is None:
                try:
                    pair = spawn_pair(spec)
                except OSError:
                    return  # no pair now: the next verdict starts its own and reports why
                event = threading.Event()
                self._pending = _Pending(spec, pair, event, self._ex.submit(_start_when_told, pair, spec, event))
            if go:
                self._pending.go.set()

    def wait_ready(self, timeout: float = C.WORKER_START_TIMEOUT_S) -> bool:
        """Let the held pair set up and block until it has (or failed); False if none is held."""
        with self._lock:
            pending = self._pending
        if pending is None:
            return False
        pending.go.set()
        try:
            pending.started.result(timeout=timeout)
        except Exception:  # noqa: BLE001 - take() discards it and the verdict starts its own
            return False
        return True

    def take(self, spec: PairSpec) -> Pair | None:
        """The held pair for `spec` (letting it set up and waiting for that), or None.

        A pair for another spec, one that failed to start, or one whose workers died
        while waiting is discarded: the caller then starts its own.
        """
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is None:
            return None
        pending.go.set()
        try:
            pair = pending.started.result()
        except Exception:  # noqa: BLE001 - the caller starts a fresh pair and reports that failure
            return None
        if pending.spec != spec or not pair.alive():
            pair.close()
            return None
        return pair

    def close(self) -> None:
        """Stop refilling and kill any pair still held."""
        with self._lock:
            self.closed = True
            pending, self._pending = self._pending, None
        if pending is not None:
            # Kill the processes now, even halfway through starting (Ctrl-C must be prompt).
            # Exactly one party then closes the pair's descriptors: the starting thread when
            # the start fails, this callback when it succeeded; never one still being read.
            pending.pair.ref.kill()
            pending.pair.cand.kill()
            pending.go.set()
            pending.started.add_done_callback(_close_if_started)
        self._ex.shutdown(wait=False)

    def __enter__(self) -> "PairPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _close_if_started(fut: "Future[Pair]") -> None:
    if fut.exception() is None:
        fut.result().close()
