"""Builds ahead of verdicts, off the judging slots: the local executor's build pool.

With several local slots the driver builds every slow-building candidate (a `load_inline`
form, forms.Form.fast False) before its verdict, in a few threads of its own, each running
judge.prebuild: the candidate's import in a sandboxed worker, registered as background work
(sandbox.quiet), so it stands still while anything on the node times. The build lands in the
content-addressed build cache (keyed by source and toolchain), where the verdict finds it.

A build is never a verdict: one that fails here is built (and fails) again in the verdict,
which gives the `compile` rejection and its compiler output as it always did. And no verdict
waits for the pool indefinitely: jobs already built (or with nothing to build) are handed out
first; a slot that would otherwise idle takes a job whose build is under way (its verdict waits
for that build on the build directory's lock, so nothing is built twice), else a job whose build
has not started, which is dropped from the pool and built in the verdict, as before.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from enum import IntEnum
from typing import Sequence

from kernelwright import constants as C
from kernelwright import forms
from kernelwright.executor._base import JudgeJob
from kernelwright.judge.prebuild import PrebuildResult, prebuild


def slow_to_build(source: str) -> bool:
    """Whether `source` is in a form slow to build, worth building ahead of its verdict."""
    form = forms.detect(source)
    return form is not None and not form.fast


class BuildState(IntEnum):
    """Where a job's build ahead stands; lower is readier to judge."""

    READY = 0  # built (or failed: the verdict builds and fails itself), or nothing to build
    RUNNING = 1  # being built: its verdict would wait for this build on the directory's lock
    QUEUED = 2  # not started: its verdict would build it itself


def build_workers(slots: int) -> int:
    """How many builds run at once: KERNELWRIGHT_BUILD_JOBS, else one per core the slots leave, at least one.

    Raises InputError when the variable is not a positive integer.
    """
    env = os.environ.get(C.BUILD_JOBS_ENV, "").strip()
    if not env:
        return max(1, len(os.sched_getaffinity(0)) - slots)
    if not env.isdigit() or int(env) < 1:
        from kernelwright.task.loader import InputError

        raise InputError(f"{C.BUILD_JOBS_ENV}={env!r}: the number of builds at once must be a positive integer")
    return int(env)


class BuildPool:
    """`workers` threads of the driver building slow-building candidates ahead, in the order submitted."""

    def __init__(self, device: str, workers: int) -> None:
        self.device = device
        self.ex = ThreadPoolExecutor(workers, thread_name_prefix="kw-build")
        self.builds: dict[str, Future[PrebuildResult]] = {}  # by source: one build serves equal sources

    def submit(self, jobs: Sequence[JudgeJob]) -> None:
        """Queue the build of every slow-building job's candidate not queued yet."""
        for job in jobs:
            if job.source not in self.builds and slow_to_build(job.source):
                self.builds[job.source] = self.ex.submit(prebuild, job.source, job.candidate.name, self.device)

    def state(self, job: JudgeJob) -> BuildState:
        """How ready `job` is to judge."""
        build = self.builds.get(job.source)
        if build is None or build.done():
            return BuildState.READY
        return BuildState.RUNNING if build.running() else BuildState.QUEUED

    def pick(self, queue: Sequence[JudgeJob], idle: bool) -> int | None:
        """The index in `queue` of the job a slot gets next: the first ready one; for an `idle` slot,
        else the first being built, else the first; None when the slot may wait for builds."""
        if not queue:
            return None
        best = min(range(len(queue)), key=lambda i: (self.state(queue[i]), i))
        return best if idle or self.state(queue[best]) == BuildState.READY else None

    def claim(self, job: JudgeJob) -> None:
        """`job` goes to a slot now: its build, if not started, is dropped (the verdict builds it)."""
        build = self.builds.get(job.source)
        if build is not None:
            build.cancel()  # a no-op once it runs: the verdict then waits for it on the lock

    def __enter__(self) -> BuildPool:
        return self

    def __exit__(self, *exc: object) -> None:
        # Every verdict is in: a build still queued is of no use; one in flight is waited for
        # (its worker must not outlive the bench), except on an interrupt, where it dies with us.
        self.ex.shutdown(wait=exc[0] is None, cancel_futures=True)
