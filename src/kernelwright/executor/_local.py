"""The local executor: this machine's judging slots.

One slot (the default on the CPU and on a one-GPU machine) judges in this process, in job
order: the next verdict's workers start while the current one wraps up (a PairPool), and the
slow-building candidates build ahead in the driver's build pool (executor._builds: one build
per core the slot leaves, each in a background worker that stands still while anything is
timed, sandbox.quiet). A `load_inline` candidate takes 55-60 s to build on the H200 against
about 40 s for a verdict, so one build at a time ahead would leave the slot waiting on builds.
Several slots (`--slots N`; on CUDA, one per visible GPU by default) are processes of their
own (executor._slots), served by the same pool, which hands out built jobs first.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Iterator

from kernelwright.executor._base import JudgeJob, JudgeOutcome, SearchJob, SearchOutcome, judge_here
from kernelwright.executor._builds import BuildPool, build_workers, slow_to_build
from kernelwright.judge.pairs import PairPool, task_key
from kernelwright.judge.prebuild import prebuild
from kernelwright.judge.verify import VerifyOptions, pair_spec

if TYPE_CHECKING:
    from kernelwright.bench.run import OptimizePlan


class LocalExecutor:
    """`slots` judging slots on this machine (None: one per visible GPU on CUDA, one on the CPU)."""

    name = "local"

    def __init__(self, slots: int | None = None) -> None:
        self.slots = slots

    def judge(self, jobs: list[JudgeJob], device: str, opts: VerifyOptions) -> Iterator[tuple[JudgeJob, JudgeOutcome]]:
        """Judge `jobs`; yield each outcome as it is reached (in job order with one slot)."""
        from kernelwright.executor import _slots

        n = self.slots or _slots.default_slots(device)
        if n == 1:
            yield from judge_in_order(jobs, device, opts)
        else:
            with BuildPool(device, build_workers(n)) as builds:
                builds.submit(jobs)
                yield from _slots.SlotPool(n, device, opts, builds=builds).judge(jobs)

    def search(self, jobs: list[SearchJob], device: str, plan: OptimizePlan,
               opts: VerifyOptions) -> Iterator[tuple[SearchJob, SearchOutcome]]:
        """Run each job's search on a slot process, in the job's scratch folder; yield each outcome as it
        ends. The slots time: each gets cores of its own. (With one slot, bench runs its searches in
        its own process, into its store, and does not call this.)"""
        from kernelwright.executor import _slots

        n = self.slots or _slots.default_slots(device)
        yield from _slots.SlotPool(n, device, opts, timed=True).search(jobs, plan)


def judge_in_order(jobs: list[JudgeJob], device: str, opts: VerifyOptions) -> Iterator[tuple[JudgeJob, JudgeOutcome]]:
    """One slot: judge `jobs` in this process, in order, the slow-building ones built ahead in the pool."""
    # Consecutive candidates of one task share its reference worker (judge.pairs, keep_reference);
    # the pool is told each next job's task, so a new task's pair still starts ahead whole.
    keys = [task_key(job.task_source, job.task.path) for job in jobs]
    with PairPool(keep_reference=True) as pool, BuildPool(device, build_workers(1)) as builds:
        builds.submit(jobs)
        for i, job in enumerate(jobs):
            # A build not started yet is the verdict's own; one under way is waited for on the
            # build directory's lock, so nothing is built twice.
            builds.claim(job)
            pool.expect(keys[i + 1] if i + 1 < len(jobs) else keys[i])
            pool.refill(pair_spec(opts, device))  # nothing is being timed now; a no-op when a pair is ready
            yield job, judge_here(job.task.path, job.candidate, opts, pool)



class Prebuilder:
    """Builds one candidate at a time in a background thread: a slot process whose driver does
    not build ahead (executor._slots) builds the job after the one it judges."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.ex = ThreadPoolExecutor(1, thread_name_prefix="kw-prebuild")

    def build(self, source: str, filename: str) -> None:
        """Build `source` in the background if its form is slow to build (a no-op otherwise)."""
        if slow_to_build(source):
            self.ex.submit(prebuild, source, filename, self.device)

    def __enter__(self) -> Prebuilder:
        return self

    def __exit__(self, *exc: object) -> None:
        # Once the last verdict is in, a build still queued is of no use; one in flight is
        # waited for (its worker must not outlive the bench), except on an interrupt, where it
        # dies with the judge.
        self.ex.shutdown(wait=exc[0] is None, cancel_futures=True)
