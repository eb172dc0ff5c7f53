"""The Ray executor: each verdict a Ray task on a cluster's judging slots.

A judging slot is a Ray task holding one GPU (`num_gpus=1`: Ray pins CUDA_VISIBLE_DEVICES,
and the sandboxed workers the verdict starts inherit it) or, on the CPU, every CPU of the
smallest node (so that no two verdicts time on one machine at once). Inside the task the
verdict is the same `verify_files` as the local executor's, with the candidate in its own
sandboxed process: a crashing candidate is that verdict's `crash`, never a Ray failure, and
Ray never retries it. A task whose worker or node is lost (Ray's system failures) is
rescheduled once by Ray (`max_retries=1`), then recorded as an infrastructure failure.

Every node needs kernelwright and the same torch installed (the driver's environment is not
shipped); the files a verdict needs (the task, its metadata sidecars, the candidate) travel
with the task, so nodes share no file system with the driver.

`bench --optimize` makes each task's whole search one Ray task on such a slot (a search always
times), into a private store in a fresh folder of the node; the store and the run's files
(best.py, best.json) come back as bytes, and the driver merges the run into the bench's store.
A search whose worker is lost is run again from scratch by Ray's one retry.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, TypeVar

from kernelwright.bench.records import ErrorCheck
from kernelwright.executor._base import STORE_FILE, JudgeJob, JudgeOutcome, SearchJob, SearchOutcome
from kernelwright.executor._base import judge_here, search_here, task_sidecars
from kernelwright.judge.verify import VerifyOptions

if TYPE_CHECKING:
    from kernelwright.bench.run import OptimizePlan

Job = TypeVar("Job", JudgeJob, SearchJob)
Outcome = TypeVar("Outcome", JudgeOutcome, SearchOutcome)

# Ray's own failures of a task that ran our code: a process or node gone, not a verdict.
_LOST = ("WorkerCrashedError", "NodeDiedError", "OwnerDiedError", "ObjectLostError", "ActorDiedError",
         "LocalRayletDiedError", "RaySystemError", "TaskUnschedulableError", "OutOfMemoryError")


def _write_task(root: Path, task_name: str, task_source: str, sidecars: dict[str, str]) -> Path:
    """The task file and its metadata sidecars, written under `root`; the task's path."""
    task = root / "task" / Path(task_name).name
    task.parent.mkdir()
    task.write_text(task_source)
    for name, text in sidecars.items():
        (task.parent / name).write_text(text)
    return task


def _judge_in_slot(task_name: str, task_source: str, sidecars: dict[str, str], cand_name: str, cand_source: str,
                   opts: VerifyOptions) -> dict[str, Any]:
    """Runs in a Ray worker: write the files into a fresh folder, judge, return the outcome's fields."""
    with tempfile.TemporaryDirectory(prefix="kw-ray-") as tmp:
        root = Path(tmp)
        task = _write_task(root, task_name, task_source, sidecars)
        cand = root / "cand" / Path(cand_name).name
        cand.parent.mkdir()
        cand.write_text(cand_source)
        out = judge_here(task, cand, opts)
    return {"verdict": out.verdict, "seconds": out.seconds, "error": out.error,
            "error_check": out.error_check.value if out.error_check else None}


def _search_in_slot(job: SearchJob, sidecars: dict[str, str], device: str, plan: OptimizePlan,
                    opts: VerifyOptions) -> SearchOutcome:
    """Runs in a Ray worker: one task's search in a fresh folder; its outcome with the private store
    (one file, the WAL folded in) and the run's files as bytes, since the folder goes with the task."""
    import sqlite3

    with tempfile.TemporaryDirectory(prefix="kw-ray-search-") as tmp:
        root = Path(tmp)
        task = _write_task(root, job.task.name, job.task_source, sidecars)
        scratch = root / "scratch"
        out = search_here(job, device, plan, opts, scratch, task)
        if out.run_id is None:
            return out
        whole = root / "whole.db"
        conn = sqlite3.connect(scratch / STORE_FILE)
        try:
            conn.execute("VACUUM INTO ?", (str(whole),))
        finally:
            conn.close()
        files = {str(p.relative_to(scratch)): p.read_bytes() for p in sorted((scratch / "runs").rglob("*"))
                 if p.is_file()} if (scratch / "runs").is_dir() else {}
        return replace(out, db=whole.read_bytes(), files=files)


class RayExecutor:
    """Verdicts as Ray tasks on the cluster at `address` (else RAY_ADDRESS, else a local one)."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            from kernelwright.task.loader import InputError

            raise InputError("the ray executor needs Ray: pip install 'kernelwright[ray]'") from None
        self.address = address or os.environ.get("RAY_ADDRESS") or None

    def judge(self, jobs: list[JudgeJob], device: str, opts: VerifyOptions) -> Iterator[tuple[JudgeJob, JudgeOutcome]]:
        """Submit every job, then yield outcomes as they finish; pending tasks are cancelled if the
        caller stops early (an interrupt)."""
        import ray

        # Ray prints its cluster's messages ("a worker died ...") on the driver's stdout, which
        # `bench --json` keeps for its one object: they go to stderr while Ray runs.
        with contextlib.redirect_stdout(sys.stderr):
            yield from self._judge(ray, jobs, device, opts)

    def _judge(self, ray: Any, jobs: list[JudgeJob], device: str,
               opts: VerifyOptions) -> Iterator[tuple[JudgeJob, JudgeOutcome]]:
        def submit(remote: Any, slot: dict[str, Any], j: JudgeJob) -> Any:
            return remote.options(**slot).remote(j.task.name, j.task_source, j.sidecars(), j.candidate.name,
                                                 j.source, opts)

        yield from self._each(ray, _judge_in_slot, jobs, device, opts.timing, submit, _outcome)

    def search(self, jobs: list[SearchJob], device: str, plan: OptimizePlan,
               opts: VerifyOptions) -> Iterator[tuple[SearchJob, SearchOutcome]]:
        """Submit each job's search as a Ray task (a slot that times: a search always does), then yield
        outcomes as they end; pending ones are cancelled if the caller stops early."""
        import ray

        def submit(remote: Any, slot: dict[str, Any], j: SearchJob) -> Any:
            return remote.options(**slot).remote(j, task_sidecars(j.task.path), device, plan, opts)

        with contextlib.redirect_stdout(sys.stderr):
            yield from self._each(ray, _search_in_slot, jobs, device, True, submit, _search_outcome)

    def _each(self, ray: Any, fn: Callable[..., Any], jobs: list[Job], device: str, timing: bool,
              submit: Callable[[Any, dict[str, Any], Job], Any],
              outcome: Callable[[Any, Any], Outcome]) -> Iterator[tuple[Job, Outcome]]:
        """Run `fn` as one Ray task per job on a judging slot of `device` (`timing`: one that times),
        yielding (job, outcome) as each finishes."""
        started_here = not ray.is_initialized()
        if started_here:
            self._connect(ray)
        try:
            remote = ray.remote(max_retries=1, retry_exceptions=False)(fn)
            slot = self._slot(ray, device, timing)
            refs = {submit(remote, slot, j): j for j in jobs}
            try:
                while refs:
                    ready, _ = ray.wait(list(refs), num_returns=1)
                    job = refs.pop(ready[0])
                    yield job, outcome(ray, ready[0])
            finally:
                for ref in refs:
                    ray.cancel(ref, force=True)
        finally:
            if started_here:
                ray.shutdown()

    def _connect(self, ray: Any) -> None:
        from kernelwright.task.loader import InputError

        try:
            if self.address:
                ray.init(address=self.address, logging_level="WARNING", log_to_driver=False)
            else:
                ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - any failure to reach a cluster is the user's to fix
            raise InputError(f"could not start or reach a Ray cluster{' at ' + self.address if self.address else ''}: "
                             f"{type(exc).__name__}: {exc}") from None

    @staticmethod
    def _slot(ray: Any, device: str, timing: bool = True) -> dict[str, Any]:
        """What one verdict holds: one GPU and its share of CPUs; on the CPU every CPU of the
        smallest node, or, when nothing is timed (`--no-timing`), one CPU."""
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        cpus = [float(r.get("CPU", 0)) for r in nodes if r.get("CPU")]
        if device.startswith("cuda"):
            gpus = [(float(r.get("CPU", 0)), float(r.get("GPU", 0))) for r in nodes if r.get("GPU")]
            share = min((c / g for c, g in gpus if g), default=1.0)
            return {"num_gpus": 1, "num_cpus": max(1.0, float(int(share)))}
        if not timing:
            return {"num_gpus": 0, "num_cpus": 1.0}
        return {"num_gpus": 0, "num_cpus": min(cpus) if cpus else 1.0}


def _outcome(ray: Any, ref: Any) -> JudgeOutcome:
    """The outcome of a finished verdict task: its verdict, or what went wrong with the slot."""
    try:
        got = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - Ray's error classes differ between versions
        error, check = _failure(exc, "judged")
        return JudgeOutcome(None, 0.0, error=error, error_check=check)
    check = got.get("error_check")
    return JudgeOutcome(got["verdict"], float(got["seconds"]), error=got["error"],
                        error_check=ErrorCheck(check) if check else None)


def _search_outcome(ray: Any, ref: Any) -> SearchOutcome:
    """The outcome of a finished search task, or what went wrong with its slot."""
    try:
        got: SearchOutcome = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - Ray's error classes differ between versions
        error, check = _failure(exc, "searched")
        return SearchOutcome(None, None, "", 0.0, error=error, error_check=check)
    return got


def _failure(exc: BaseException, what: str) -> tuple[str, ErrorCheck]:
    """Why a Ray task gave no outcome: its slot lost on both tries (infrastructure), or a bug of ours."""
    kinds = {type(exc).__name__} | {type(c).__name__ for c in (getattr(exc, "cause", None), exc.__cause__) if c}
    if kinds & set(_LOST):
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        return (f"the judging slot was lost on both tries ({type(exc).__name__}: {first}); not the candidate's "
                f"fault, {what} again when the bench runs again", ErrorCheck.INFRASTRUCTURE)
    return (f"kernelwright failed in a Ray task ({type(exc).__name__}: {str(exc)[-600:]}); please report it",
            ErrorCheck.INTERNAL)
