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

A command that judges one candidate (`kernelwright verify`) has no earlier verdict to hide the
start behind, but it has its own import of torch: `prespawn` spawns the pair as the command
starts, before that import, and the verdict takes it (`take_prespawned`) if it asks for the same
spec. On the H200 (2026-12-06, traced identity verdicts) a worker's start took 4.1-5.9 s, of
which torch's import 3.3-5.1 s, the CUDA context 0.15-0.29 s and the launch hold 0.34-0.52 s.

A pool made with `keep_reference=True` (a search: many verdicts of one task) also keeps the
reference worker of a finished verdict for the next verdict of the same task, when nothing of
the candidate could have reached it: the candidate's worker was fully confined (Landlock's
signal scope and ptrace rule keep it from signalling, stopping or tracing the reference;
sandbox.confine), the reference never failed and was never stopped by anyone but the judge,
and the verdict ended without a task error. The worker is told to forget the verdict (its
task module, model, sets and references) before it is kept, and the next verdict loads the
task afresh under its own weight seed and makes its own sets from fresh seeds: what is saved
is the interpreter's start (torch's import, the device set-up), about 1 CPU-s a verdict on
the 2-core machine and the CUDA context on a GPU. A candidate worker is never kept.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright.sandbox import buildcache, confine, quiet
from kernelwright.sandbox.process import SandboxConfig, Worker
from kernelwright.task.metadata import TaskError

if TYPE_CHECKING:
    from kernelwright.judge.options import VerifyOptions


@dataclass(frozen=True)
class PairSpec:
    """What a pair is started for; a pool hands a pair out only for the same spec."""

    device: str
    threads: int | None
    memory_bytes: int
    build_cache_dir: str | None = None  # None: given with the load request (pooled pairs)
    confine: bool = True  # the candidate worker confined (sandbox.confine)
    # The reference imports torch.compile's modules as it starts (SandboxConfig.preload_compiler).
    # Not part of what a pair is for: any pair serves a verdict either way, only sooner or later.
    preload_compiler: bool = field(default=False, compare=False)


def pair_spec(options: VerifyOptions, device: str) -> PairSpec:
    """The workers a verdict with these options needs (what a PairPool must hold for it)."""
    threads = options.threads or (None if device == "cuda" else max(1, S.cpu_count()))
    # A kept compile ratio usually spares the compile (bench): no import for it then.
    return PairSpec(device, threads, options.memory_bytes, confine=options.confine,
                    preload_compiler=options.timing and options.compile_baseline and not options.compile_ratio_cache)


@dataclass
class Pair:
    """Two started workers and what their setup replies said."""

    ref: Worker | None  # None only while a pool holds a candidate-only pair (keep_reference)
    cand: Worker
    environment: dict[str, Any] = field(default_factory=dict)
    hardening: list[str] = field(default_factory=list)
    confinement: dict[str, str] = field(default_factory=dict)  # the candidate's, as its setup reported it
    start_s: float = 0.0  # from spawn to set up (a pooled pair's includes its wait for `refill`)
    spawned_at: float = 0.0

    def alive(self) -> bool:
        """Both workers still running and unfailed."""
        return all(w.proc.poll() is None and w.failure is None for w in self.workers())

    def workers(self) -> list[Worker]:
        """The workers this pair has (the candidate's first)."""
        return [self.cand] + ([self.ref] if self.ref is not None else [])

    def close(self) -> None:
        """Kill both workers (safe to call twice)."""
        for w in self.workers():
            w.close()


def spawn_pair(spec: PairSpec, with_ref: bool = True) -> Pair:
    """Spawn both workers (milliseconds); they start up in parallel until `finish_start`.

    `with_ref` False: the candidate's worker alone (a pool that keeps references adds one).
    """
    cuda = spec.device == "cuda"
    base = dict(memory_bytes=spec.memory_bytes, threads=spec.threads, cuda=cuda)
    ref = _spawn_reference(spec) if with_ref else None
    try:
        # Everything readable until the load request, which builds the task's Model (the process
        # control: a module converted by the Python API reads its files from kernelwright's cache
        # and the caller's project) and then narrows reads to the system's before the candidate's
        # import. Only kernelwright's own code runs in the worker before then.
        cand = Worker(P.Role.CANDIDATE, SandboxConfig(**base, build_cache_dir=spec.build_cache_dir,
                                                      confine=spec.confine, readable_until_load=("/",)))
    except BaseException:
        if ref is not None:
            ref.close()
        raise
    return Pair(ref, cand, spawned_at=time.perf_counter())


def _spawn_reference(spec: PairSpec) -> Worker:
    # The reference runs the task, which is trusted (docs/threat-model.md), unconfined.
    # Its compiler caches persist across verdicts (buildcache.reference_dir) where the candidate's
    # files are confined (Landlock), so that no candidate can have written to them.
    ref_cache = str(buildcache.reference_dir(spec.device)) if spec.confine and confine.landlock_abi() >= 1 else None
    return Worker(P.Role.REFERENCE, SandboxConfig(memory_bytes=spec.memory_bytes, threads=spec.threads,
                                                  cuda=spec.device == "cuda", drop_capabilities=False,
                                                  confine=False, build_cache_dir=ref_cache,
                                                  preload_compiler=spec.preload_compiler))


def finish_start(pair: Pair, spec: PairSpec) -> Pair:
    """Wait for the workers' setup replies; TaskError if one cannot start (the pair is closed)."""
    try:
        replies = _set_up(pair.workers(), spec)
    except BaseException:
        pair.close()
        raise
    reply_cand = replies[0]
    if pair.ref is not None:
        pair.environment = dict(replies[1]["environment"])
    pair.hardening = list(reply_cand.get("hardening", []))
    pair.confinement = dict(reply_cand.get("confinement") or {})
    pair.start_s = time.perf_counter() - pair.spawned_at
    if S.tracing():
        roles = ["candidate", "reference"][:len(replies)]
        S.trace(f"workers set up {pair.start_s:.2f} s after their spawn; " + "; ".join(
            f"{role}: " + ", ".join(f"{k} {float(v):.2f} s" for k, v in (r.get("startup_s") or {}).items())
            for role, r in zip(roles, replies)))
    return pair


def _set_up(workers: list[Worker], spec: PairSpec) -> list[dict[str, Any]]:
    """Send each worker its setup request at once; their replies in order (TaskError if one failed)."""
    setup = P.SetupRequest(op=P.Op.SETUP, device=spec.device, threads=spec.threads)
    with ThreadPoolExecutor(len(workers)) as ex:
        futures = [ex.submit(w.request, setup, None, C.WORKER_START_TIMEOUT_S) for w in workers]
        replies = [f.result()[0] for f in futures]
    for reply in replies:
        if reply.get("status") != P.Status.OK:
            raise TaskError(f"a worker could not start: {reply.get('error')}")
    return replies


def start_pair(spec: PairSpec, with_ref: bool = True) -> Pair:
    """Spawn a pair (`with_ref` False: the candidate's worker alone) and wait until it has started."""
    return finish_start(spawn_pair(spec, with_ref), spec)


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
    with ExitStack() as stack:
        for w in pair.workers():
            stack.enter_context(quiet.background(w))
        go.wait()
        return finish_start(pair, spec)


class _Early:
    """The one pair a command spawned as it started (`prespawn`), until a verdict takes it."""

    lock = threading.Lock()
    slot: tuple[PairSpec, Pair, Future[Pair]] | None = None
    used = False  # one per process: a second `prespawn` does nothing


def prespawn(spec: PairSpec) -> None:
    """Spawn the pair this process's first verdict will likely ask for, and set it up in the background.

    For a command that judges one candidate (`kernelwright verify`): its workers' start (torch's
    import, 4-5 s on the H200) then runs while the command itself imports torch, rather than
    after. The pair is the one a verdict would spawn itself (its build directory comes with
    the load request, as for a pooled pair) and has run nothing of the task or the candidate.
    A verdict takes it only for an equal spec (`take_prespawned`); one not taken is closed at
    exit. Its set-up touches the GPU and goes through the shared-GPU gate like any request.
    """
    with _Early.lock:
        if _Early.used:
            return
        _Early.used = True
        pair = spawn_pair(spec)
        started: Future[Pair] = Future()
        _Early.slot = (spec, pair, started)
    atexit.register(drop_prespawned)

    def set_up() -> None:
        try:
            started.set_result(finish_start(pair, spec))
        except BaseException as exc:  # noqa: BLE001 - handed to whoever takes the pair
            started.set_exception(exc)

    # A daemon thread, not an executor's: a command that exits before any verdict (a bad task)
    # must not wait at exit for a set-up nobody will use; atexit closes the pair instead.
    threading.Thread(target=set_up, name="kw-early", daemon=True).start()


def take_prespawned(spec: PairSpec) -> Pair | None:
    """The pair `prespawn` started, once set up, if it was spawned for this spec (else None, and it
    is closed). A failed set-up raises as `start_pair` would (TaskError). Only the first call gets it."""
    with _Early.lock:
        slot, _Early.slot = _Early.slot, None
    if slot is None:
        return None
    early_spec, pair, started = slot
    if early_spec != spec:
        _close_early(pair, started)
        return None
    taken = started.result()
    if not taken.alive():  # a worker that died while nobody used it is no verdict's failure
        taken.close()
        return None
    return taken


def drop_prespawned() -> None:
    """Close the pair `prespawn` started if no verdict took it (at exit, and when the command ends)."""
    with _Early.lock:
        slot, _Early.slot = _Early.slot, None
    if slot is not None:
        _close_early(*slot[1:])


def _close_early(pair: Pair, started: Future[Pair]) -> None:
    pair.close()  # kills the workers, which ends a set-up still waiting for their replies
    try:
        started.result(timeout=C.WORKER_START_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - finish_start closed the pair too; nothing is left to do
        pass


def task_key(source: str, path: str | Path) -> str:
    """What a kept reference worker is kept for: one task file with this exact source."""
    return hashlib.sha256(f"{Path(path).resolve()}\0{source}".encode()).hexdigest()


@dataclass
class _Kept:
    """A reference worker kept after a verdict, for the next verdict of the same task."""

    spec: PairSpec
    task: str
    ref: Worker
    environment: dict[str, Any]


class PairPool:
    """At most one pair spawned, starting or ready, for the next verdict of one judging loop.

    Not a general worker pool: one judge at a time takes from it, and whoever
    owns it calls `refill` only at a moment when nothing is being timed. With
    `keep_reference`, it also keeps a finished verdict's reference worker for the next
    verdict of the same task (see the module's docstring for when), and then spawns ahead
    only candidate workers.
    """

    def __init__(self, keep_reference: bool = False) -> None:
        self._lock = threading.Lock()
        self._pending: _Pending | None = None
        self._ex = ThreadPoolExecutor(1, thread_name_prefix="kw-pair")
        self.closed = False
        self.keep_reference = keep_reference
        self._kept: _Kept | None = None
        self._lent = False  # a verdict is under way whose reference may come back (give_back)
        self._came_back = True  # the last verdict's reference was kept (so this one's likely will be)
        self._lent_task = ""  # the task of the verdict under way
        self._next_task: str | None = None  # the next verdict's task, when the owner knows it (expect)

    def expect(self, task: str | None) -> None:
        """Say which task (a `task_key`) the next verdict is for, when its owner knows: a pair
        spawned ahead then brings a reference worker of its own unless one for that task is kept
        or coming back. None (the default): the same task as the verdict under way (a search)."""
        with self._lock:
            self._next_task = task

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
                # A reference kept, or one a verdict is still using and may give back: the
                # next verdict needs only a candidate's worker (take starts a reference if not).
                nxt = self._next_task
                expected = ((self._kept is not None and nxt in (None, self._kept.task))
                            or (self._lent and self._came_back and nxt in (None, self._lent_task)))
                with_ref = not (self.keep_reference and expected)
                try:
                    pair = spawn_pair(spec, with_ref=with_ref)
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

    def take(self, spec: PairSpec, task: str = "") -> Pair | None:
        """The held pair for `spec` (letting it set up and waiting for that), or None.

        A pair for another spec, one that failed to start, or one whose workers died
        while waiting is discarded: the caller then starts its own. With a reference kept for
        `task` (a `task_key`), the pair is that reference and a fresh candidate worker, the
        one held or, when none is, one started now; a held candidate-only pair with no kept
        reference gets a reference started now. Raises TaskError when a worker started here
        cannot start.
        """
        with self._lock:
            pending, self._pending = self._pending, None
            kept, self._kept = self._kept, None
            self._lent, self._lent_task = self.keep_reference, task
        if kept is not None and (kept.spec != spec or kept.task != task or not healthy(kept.ref)):
            kept.ref.close()
            kept = None
        pair = self._started(pending, spec)
        if kept is None:
            if pair is not None and pair.ref is None:
                pair = _with_reference(pair, spec)
            return pair
        if pair is None:
            pair = start_pair(spec, with_ref=False)
        elif pair.ref is not None:
            pair.ref.close()  # spawned before the kept one came back: the kept one is set up already
        pair.ref, pair.environment = kept.ref, dict(kept.environment)
        kept.ref.renew()
        return pair

    def _started(self, pending: _Pending | None, spec: PairSpec) -> Pair | None:
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

    def give_back(self, ref: Worker | None, environment: dict[str, Any], spec: PairSpec, task: str) -> None:
        """End of a verdict taken from this pool: keep its reference worker for the next verdict
        of `task`, or (`ref` None: the judge closed it, not keepable) note that none comes back.

        The caller gives back only a reference it judged keepable (module docstring). The worker
        is told to forget the verdict first; one that does not answer that is closed.
        """
        with self._lock:
            self._lent = False
            keep = ref is not None and self.keep_reference and not self.closed
            self._came_back = keep
        if ref is None:
            return
        if not keep or not _forget_verdict(ref):
            ref.close()
            with self._lock:
                self._came_back = False
            return
        with self._lock:
            kept = None if self.closed else _Kept(spec, task, ref, dict(environment))
            old, self._kept = self._kept, kept
        if old is not None:
            old.ref.close()
        if kept is None:
            ref.close()

    def close(self) -> None:
        """Stop refilling and kill any pair or reference still held."""
        with self._lock:
            self.closed = True
            pending, self._pending = self._pending, None
            kept, self._kept = self._kept, None
        if kept is not None:
            kept.ref.close()
        if pending is not None:
            # Kill the processes now, even halfway through starting (Ctrl-C must be prompt).
            # Exactly one party then closes the pair's descriptors: the starting thread when
            # the start fails, this callback when it succeeded; never one still being read.
            for w in pending.pair.workers():
                w.kill()
            pending.go.set()
            pending.started.add_done_callback(_close_if_started)
        self._ex.shutdown(wait=False)

    def __enter__(self) -> "PairPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def healthy(w: Worker) -> bool:
    """Running, unfailed, and never stopped by anyone but the judge: a reference that may be kept."""
    return w.proc.poll() is None and w.failure is None and w.external_stops == 0


def _forget_verdict(ref: Worker) -> bool:
    """Tell a reference worker to forget its verdict; False when it does not answer that cleanly."""
    if not healthy(ref):
        return False
    try:
        reply, _, _ = ref.request(P.BareRequest(op=P.Op.RESET), None, C.WORKER_START_TIMEOUT_S)
    except Exception:  # noqa: BLE001 - a worker that cannot forget is closed, never reused
        return False
    return reply.get("status") == P.Status.OK and healthy(ref)


def _with_reference(pair: Pair, spec: PairSpec) -> Pair:
    """Add a reference worker, started now, to a candidate-only pair (TaskError: both closed)."""
    ref = _spawn_reference(spec)
    try:
        reply = _set_up([ref], spec)[0]
    except BaseException:
        ref.close()
        pair.close()
        raise
    pair.ref, pair.environment = ref, dict(reply["environment"])
    return pair


def _close_if_started(fut: "Future[Pair]") -> None:
    if fut.exception() is None:
        fut.result().close()
