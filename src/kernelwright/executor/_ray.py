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

A slow-building candidate (a `load_inline` form) is built first, by a Ray task of its own that
holds one CPU and no GPU and runs the same sandboxed prebuild (judge.prebuild) on a node; its
verdict is submitted once that task has ended, however it ended, preferring the node that built
it (the build cache is per node: a build on another node does not help). The build only puts
the candidate into that node's cache: a build that failed or was lost is built (and fails)
again in the verdict, which gives the `compile` rejection as it always did. On CUDA a judging
slot leaves one of its GPU's CPUs to these builds.

`bench --optimize` makes each task's whole search one Ray task on such a slot (a search always
times). Where the node sees the driver's folders (this machine's local cluster, or a shared
file system: a token the driver leaves in the bench's scratch folder is read back), the search
runs in the task's scratch folder under the bench's OUT, as a local slot's does, so that a
search cut short (its worker lost, the driver killed) resumes there on Ray's retry or the next
bench. Elsewhere it runs into a private store in a fresh folder of the node; the store and the
run's files (best.py, best.json) come back as bytes, and a lost one starts again from scratch.
Either way the driver merges the run into the bench's store.
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
from kernelwright.executor._builds import slow_to_build
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


def _on_this_node(opts: VerifyOptions) -> VerifyOptions:
    """Runs in a Ray worker: `opts` with the worker memory limit of this node, not the driver's.

    A node's RAM is shared by the judging slots it can hold at once: one per GPU on CUDA (each
    slot holds one), one on the CPU (a slot holds the whole node).
    """
    from kernelwright.judge.verify import resolve_device
    from kernelwright.sandbox import limits

    slots = 1
    if resolve_device(opts.device) == "cuda":
        import ray

        node = ray.get_runtime_context().get_node_id()
        slots = max(1, int(next((n.get("Resources", {}).get("GPU", 0) for n in ray.nodes()
                                 if n.get("NodeID") == node), 1)))
    return replace(opts, memory_bytes=limits.default_worker_memory(slots))


def _judge_in_slot(task_name: str, task_source: str, sidecars: dict[str, str], cand_name: str, cand_source: str,
                   opts: VerifyOptions) -> dict[str, Any]:
    """Runs in a Ray worker: write the files into a fresh folder, judge, return the outcome's fields."""
    opts = _on_this_node(opts)
    with tempfile.TemporaryDirectory(prefix="kw-ray-") as tmp:
        root = Path(tmp)
        task = _write_task(root, task_name, task_source, sidecars)
        cand = root / "cand" / Path(cand_name).name
        cand.parent.mkdir()
        cand.write_text(cand_source)
        out = judge_here(task, cand, opts)
    return {"verdict": out.verdict, "seconds": out.seconds, "error": out.error,
            "error_check": out.error_check.value if out.error_check else None}


def _build_on_node(cand_name: str, cand_source: str, device: str) -> str:
    """Runs in a Ray worker holding one CPU: the candidate's sandboxed build into this node's build
    cache (its outcome is the verdict's to find); the node's id, for the verdict to run there."""
    import ray

    from kernelwright.judge.prebuild import prebuild

    prebuild(cand_source, Path(cand_name).name, device)
    return str(ray.get_runtime_context().get_node_id())


SCRATCH_TOKEN = ".kw-ray-token"  # the driver's, in the bench's scratch folder: seen from a node, it shares the folder


def leave_token(jobs: list[SearchJob]) -> str:
    """Write a fresh token into the scratch folders' parents of `jobs`; return it."""
    import secrets

    token = secrets.token_hex(8)
    for parent in {j.scratch.parent for j in jobs}:
        parent.mkdir(parents=True, exist_ok=True)
        (parent / SCRATCH_TOKEN).write_text(token)
    return token


def shares_scratch(job: SearchJob, token: str) -> bool:
    """Whether this process sees the driver's scratch folder of `job` (its token) and task file."""
    try:
        return ((job.scratch.parent / SCRATCH_TOKEN).read_text() == token
                and job.task.path.read_text(errors="replace") == job.task_source)
    except OSError:
        return False


def _search_in_slot(job: SearchJob, sidecars: dict[str, str], device: str, plan: OptimizePlan,
                    opts: VerifyOptions, token: str = "") -> SearchOutcome:
    """Runs in a Ray worker: one task's search, in the driver's scratch folder where this node shares
    it (its outcome then names the store there, as a local slot's does), else in a fresh folder, its
    outcome with the private store (one file, the WAL folded in) and the run's files as bytes."""
    import sqlite3

    opts = _on_this_node(opts)
    if token and shares_scratch(job, token):
        return search_here(job, device, plan, opts, job.scratch, job.task.path)
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
        with self._session(ray):
            remote = ray.remote(max_retries=1, retry_exceptions=False)(_judge_in_slot)
            slot = self._slot(ray, device, opts.timing)

            def submit(j: JudgeJob, node: str | None = None) -> Any:
                where = {"scheduling_strategy": _on_node(node)} if node else {}
                return remote.options(**slot, **where).remote(j.task.name, j.task_source, j.sidecars(),
                                                              j.candidate.name, j.source, opts)

            yield from _judge_after_builds(ray, jobs, device, submit)

    def search(self, jobs: list[SearchJob], device: str, plan: OptimizePlan,
               opts: VerifyOptions) -> Iterator[tuple[SearchJob, SearchOutcome]]:
        """Submit each job's search as a Ray task (a slot that times: a search always does), then yield
        outcomes as they end; pending ones are cancelled if the caller stops early."""
        import ray

        token = leave_token(jobs) if jobs else ""

        def submit(remote: Any, slot: dict[str, Any], j: SearchJob) -> Any:
            return remote.options(**slot).remote(j, task_sidecars(j.task.path), device, plan, opts, token)

        with contextlib.redirect_stdout(sys.stderr):
            yield from self._each(ray, _search_in_slot, jobs, device, True, submit, _search_outcome)

    def _each(self, ray: Any, fn: Callable[..., Any], jobs: list[Job], device: str, timing: bool,
              submit: Callable[[Any, dict[str, Any], Job], Any],
              outcome: Callable[[Any, Any], Outcome]) -> Iterator[tuple[Job, Outcome]]:
        """Run `fn` as one Ray task per job on a judging slot of `device` (`timing`: one that times),
        yielding (job, outcome) as each finishes."""
        with self._session(ray):
            remote = ray.remote(max_retries=1, retry_exceptions=False)(fn)
            slot = self._slot(ray, device, timing)
            refs = {submit(remote, slot, j): j for j in jobs}
            try:
                while refs:
                    ready, _ = ray.wait(list(refs), num_returns=1)
                    job = refs.pop(ready[0])
                    yield job, outcome(ray, ready[0])
            finally:
                _cancel(ray, refs)

    @contextlib.contextmanager
    def _session(self, ray: Any) -> Iterator[None]:
        """Ray connected for the block: to the cluster already joined, else one started (and stopped) here."""
        started_here = not ray.is_initialized()
        if started_here:
            self._connect(ray)
        try:
            yield
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
            # One CPU of each GPU's share is left to the builds ahead (_build_on_node).
            return {"num_gpus": 1, "num_cpus": max(1.0, float(int(share) - 1))}
        if not timing:
            return {"num_gpus": 0, "num_cpus": 1.0}
        return {"num_gpus": 0, "num_cpus": min(cpus) if cpus else 1.0}


def _judge_after_builds(ray: Any, jobs: list[JudgeJob], device: str,
                        submit: Callable[[JudgeJob, str | None], Any]) -> Iterator[tuple[JudgeJob, JudgeOutcome]]:
    """Submit each slow-building job's build (one per source) as a CPU-only task, and each job's
    verdict through `submit`: at once when there is nothing to build, else once its build has
    ended, on the node that built it; yield (job, outcome) as each verdict finishes."""
    build = ray.remote(max_retries=1, retry_exceptions=False, num_cpus=1, num_gpus=0)(_build_on_node)
    waiting: dict[Any, list[JudgeJob]] = {}  # a build's ref -> the jobs whose verdicts wait for it
    by_source: dict[str, Any] = {}
    judging: dict[Any, JudgeJob] = {}
    for job in jobs:
        if not slow_to_build(job.source):
            judging[submit(job, None)] = job
            continue
        if job.source not in by_source:
            by_source[job.source] = build.remote(job.candidate.name, job.source, device)
        waiting.setdefault(by_source[job.source], []).append(job)
    try:
        while waiting or judging:
            ready = ray.wait([*waiting, *judging], num_returns=1)[0][0]
            if ready in waiting:
                node = _built_on(ray, ready)
                judging.update((submit(j, node), j) for j in waiting.pop(ready))
            else:
                job = judging.pop(ready)
                yield job, _outcome(ray, ready)
    finally:
        _cancel(ray, [*waiting, *judging])


def _built_on(ray: Any, ref: Any) -> str | None:
    """The node a finished build ran on; None when its task was lost (the verdict builds anywhere)."""
    try:
        return str(ray.get(ref))
    except Exception:  # noqa: BLE001 - a lost build is no verdict: the verdict builds it itself
        return None


def _on_node(node: str) -> Any:
    """Run on `node` (whose build cache holds the candidate) while it is alive, else anywhere."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=node, soft=True)


def _cancel(ray: Any, refs: Any) -> None:
    """Cancel the tasks still pending when the caller stops early (an interrupt)."""
    for ref in refs:
        ray.cancel(ref, force=True)


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
