"""Several local judging slots, each a process of its own, pinned to one GPU and its own cores.

A slot is a spawned Python process that judges the jobs it is sent, in order, as the
one-slot local executor does in the driver (pre-started pairs, slow builds ahead),
and sends each outcome back; the driver alone writes results.jsonl and the store. On CUDA a
slot's CUDA_VISIBLE_DEVICES is one visible GPU (slot i gets GPU i modulo their number), which
its sandboxed workers inherit. With timing, each slot runs on cores of its own (its workers
inherit the affinity): a candidate's build in one slot's verdict never runs on cores another
slot times on, and two slots of one device take turns timing (sandbox.quiet).

With a build pool (executor._builds; the local executor gives one to judging slots), the driver
builds the slow-building candidates ahead instead of the slots: a slot then holds fewer jobs,
and the driver hands out built ones first.

A slot process that dies (killed, out of memory) loses the jobs it held; each is judged
again once on a fresh slot, and lost twice it is an infrastructure error, as on Ray.

`bench --optimize` sends a slot whole searches instead (one at a time), each into a private
store in the job's scratch folder under the bench's OUT; the driver merges each finished run
into the bench's store. A search whose slot died is run once more in the same folder, which
resumes it from its private store as a bench run again would (its proposals and verdicts are
not made twice).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from kernelwright import constants as C
from kernelwright.bench.records import ErrorCheck
from kernelwright.executor._base import JudgeJob, JudgeOutcome, SearchJob, SearchOutcome, judge_here, search_here
from kernelwright.executor._builds import BuildPool
from kernelwright.judge.verify import VerifyOptions
from kernelwright.sandbox import limits

if TYPE_CHECKING:
    from kernelwright.bench.run import OptimizePlan

# Jobs a slot holds at once: the one it judges and those after it, the first of which it
# builds ahead (one more than that covers the moment an outcome is on its way back).
HELD = 3
TRIES = 2  # a job whose slot died is judged once more, then recorded as lost
STOP_WAIT_S = 120.0  # a slot's last background build may still be finishing when the jobs are done
SEARCHES_HELD = 1  # a search is long: a slot holds only the one it runs, so idle slots take the rest

Job = TypeVar("Job", JudgeJob, SearchJob)
Outcome = TypeVar("Outcome", JudgeOutcome, SearchOutcome)


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES names them (indices or UUIDs)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [e.strip() for e in env.split(",") if e.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def default_slots(device: str) -> int:
    """One slot per visible GPU on CUDA; one on the CPU."""
    return max(1, len(visible_gpus())) if device.startswith("cuda") else 1


def core_shares(n: int, timing: bool) -> list[list[int] | None]:
    """Each slot's cores: disjoint shares of this process's when anything is timed, else no pinning.

    Raises InputError when there are fewer cores than slots to time on.
    """
    if not timing:
        return [None] * n
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < n:
        from kernelwright.task.loader import InputError

        raise InputError(f"{n} timing slots need {n} cores of their own; this process may use {len(cores)} "
                         "(fewer --slots, or --no-timing)")
    return [cores[i * len(cores) // n:(i + 1) * len(cores) // n] for i in range(n)]


@dataclass
class _Slot:
    index: int
    gpu: str | None
    cores: list[int] | None
    proc: Any = None  # a multiprocessing Process
    conn: Connection | None = None
    held: deque[Any] = field(default_factory=deque)  # jobs sent and not yet answered, in order


class SlotPool:
    """`n` slot processes judging on `device`; `judge` hands out jobs and yields outcomes as they come."""

    def __init__(self, n: int, device: str, opts: VerifyOptions, timed: bool | None = None,
                 builds: BuildPool | None = None) -> None:
        """`timed`: whether the slots time anything (None: as `opts` says; a search always times).
        `builds`: the driver's build pool, which builds the jobs' slow candidates ahead (the slots
        then build nothing ahead themselves); None: each slot builds its next job's ahead."""
        gpus = visible_gpus() if device.startswith("cuda") else []
        # The slots share this machine's RAM: each verdict's workers get their slot's part of it.
        opts = replace(opts, memory_bytes=limits.default_worker_memory(n))
        self.device, self.opts, self.builds = device, opts, builds
        self.slots = [_Slot(i, gpus[i % len(gpus)] if gpus else None, cores)
                      for i, cores in enumerate(core_shares(n, opts.timing if timed is None else timed))]
        self.ctx = mp.get_context("spawn")  # a fresh interpreter: CUDA_VISIBLE_DEVICES set before CUDA starts

    def judge(self, jobs: list[JudgeJob]) -> Iterator[tuple[JudgeJob, JudgeOutcome]]:
        """Judge `jobs` on the slots; yield (job, outcome) as each finishes, in any order."""
        yield from self._run(jobs, C.HELD_WITH_BUILDS if self.builds else HELD, None, _lost)

    def search(self, jobs: list[SearchJob], plan: OptimizePlan) -> Iterator[tuple[SearchJob, SearchOutcome]]:
        """Run each job's search on a slot (one search a slot at a time); yield (job, outcome) as each ends."""
        yield from self._run(jobs, SEARCHES_HELD, plan, _lost_search)

    def _run(self, jobs: list[Job], held: int, plan: OptimizePlan | None,
             lost: Callable[[_Slot, int | None], Outcome]) -> Iterator[tuple[Job, Outcome]]:
        queue, tries, done = deque(jobs), Counter[str](), False
        try:
            for slot in self.slots:
                self._start(slot, plan)
            while True:
                for slot in self.slots:
                    self._feed(slot, queue, held)
                busy = {slot.conn: slot for slot in self.slots if slot.held}
                if not busy:
                    break
                # With a build pool, also look again now and then: a finished build frees a job.
                for conn in wait(list(busy), C.BUILD_POLL_S if self.builds else None):
                    yield from self._receive(busy[conn], queue, tries, plan, lost)  # type: ignore[index]
            done = True
        finally:
            self._stop(graceful=done)

    def _start(self, slot: _Slot, plan: OptimizePlan | None) -> None:
        parent, child = self.ctx.Pipe()
        slot.proc = self.ctx.Process(target=_slot_main,
                                     args=(child, slot.gpu, slot.cores, self.device, self.opts, plan,
                                           self.builds is None),
                                     name=f"kw-slot-{slot.index}", daemon=True)
        slot.proc.start()
        child.close()
        slot.conn = parent

    def _feed(self, slot: _Slot, queue: deque[Any], held: int) -> None:
        assert slot.conn is not None
        while queue and len(slot.held) < held:
            job = self._next(queue, idle=not slot.held)
            if job is None:
                return
            slot.held.append(job)
            slot.conn.send(job)

    def _next(self, queue: deque[Any], idle: bool) -> Any:
        """The job to send a slot next (None: none yet): the queue's first, or the build pool's pick."""
        if self.builds is None:
            return queue.popleft()
        i = self.builds.pick(list(queue), idle)
        if i is None:
            return None
        job = queue[i]
        del queue[i]
        self.builds.claim(job)
        return job

    def _receive(self, slot: _Slot, queue: deque[Job], tries: Counter[str], plan: OptimizePlan | None,
                 lost: Callable[[_Slot, int | None], Outcome]) -> Iterator[tuple[Job, Outcome]]:
        """The outcome a slot sent; or, when the slot died, its jobs back in the queue (lost twice: an error)."""
        assert slot.conn is not None
        try:
            outcome = slot.conn.recv()
        except (EOFError, OSError):
            code = _reap(slot)
            for job in reversed(slot.held):
                tries[job.key] += 1
                if tries[job.key] >= TRIES:
                    yield job, lost(slot, code)
                else:
                    queue.appendleft(job)
            slot.held.clear()
            self._start(slot, plan)
            return
        yield slot.held.popleft(), outcome

    def _stop(self, graceful: bool) -> None:
        for slot in self.slots:
            if slot.conn is not None and graceful:
                try:
                    slot.conn.send(None)  # no more jobs: finish and exit
                except OSError:
                    pass
        for slot in self.slots:
            if slot.proc is None:
                continue
            if graceful:
                slot.proc.join(STOP_WAIT_S)
            if slot.proc.is_alive():
                # An interrupt: its sandboxed workers die with it (they are killed with their judge).
                slot.proc.terminate()
                slot.proc.join(10)
            if slot.conn is not None:
                slot.conn.close()


def _reap(slot: _Slot) -> int | None:
    slot.proc.join(10)
    if slot.conn is not None:
        slot.conn.close()
    return slot.proc.exitcode


def _lost_message(slot: _Slot, code: int | None, what: str) -> str:
    return (f"local judging slot {slot.index} died on both tries (exit code {code}); not the candidate's fault, "
            f"{what} again when the bench runs again")


def _lost(slot: _Slot, code: int | None) -> JudgeOutcome:
    return JudgeOutcome(None, 0.0, error=_lost_message(slot, code, "judged"), error_check=ErrorCheck.INFRASTRUCTURE)


def _lost_search(slot: _Slot, code: int | None) -> SearchOutcome:
    return SearchOutcome(None, None, "", 0.0, error=_lost_message(slot, code, "searched"),
                         error_check=ErrorCheck.INFRASTRUCTURE)


def _slot_main(conn: Connection, gpu: str | None, cores: list[int] | None, device: str, opts: VerifyOptions,
               plan: OptimizePlan | None = None, build_ahead: bool = True) -> None:
    """A slot process: pin it, then judge (or, given a plan, search) what the driver sends until told to stop;
    `build_ahead`: build the next slow-building job ahead (False: the driver builds them)."""
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu  # nothing here has started CUDA yet
    if cores:
        os.sched_setaffinity(0, cores)
    try:
        if plan is None:
            _serve(conn, device, opts, build_ahead)
        else:
            _serve_searches(conn, device, opts, plan)
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        pass  # the driver was interrupted or is gone: nothing to send to


def _serve_searches(conn: Connection, device: str, opts: VerifyOptions, plan: OptimizePlan) -> None:
    # The scratch folder is under the bench's OUT, on this machine: the search runs in it, and
    # the driver merges the private store from there.
    while (job := conn.recv()) is not None:
        conn.send(search_here(job, device, plan, opts, job.scratch, job.task.path))


def _serve(conn: Connection, device: str, opts: VerifyOptions, build_ahead: bool) -> None:
    from kernelwright.executor._local import Prebuilder
    from kernelwright.judge.pairs import PairPool
    from kernelwright.judge.verify import pair_spec

    inbox: deque[JudgeJob] = deque()
    more, built = True, set()
    with PairPool() as pool, Prebuilder(device) as ahead:
        while True:
            while more and (not inbox or conn.poll()):
                job = conn.recv()
                if job is None:
                    more = False
                else:
                    inbox.append(job)
            if not inbox:
                return
            job = inbox.popleft()
            if build_ahead and inbox and inbox[0].key not in built:
                built.add(inbox[0].key)
                ahead.build(inbox[0].source, inbox[0].candidate.name)
            pool.refill(pair_spec(opts, device))  # nothing of this slot is timed now
            conn.send(judge_here(job.task.path, job.candidate, opts, pool))
