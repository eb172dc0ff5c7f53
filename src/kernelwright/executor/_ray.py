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
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from kernelwright.bench.records import ErrorCheck
from kernelwright.executor._base import JudgeJob, JudgeOutcome, judge_here
from kernelwright.judge.verify import VerifyOptions

# Ray's own failures of a task that ran our code: a process or node gone, not a verdict.
_LOST = ("WorkerCrashedError", "NodeDiedError", "OwnerDiedError", "ObjectLostError", "ActorDiedError",
         "LocalRayletDiedError", "RaySystemError", "TaskUnschedulableError", "OutOfMemoryError")


def _judge_in_slot(task_name: str, task_source: str, sidecars: dict[str, str], cand_name: str, cand_source: str,
                   opts: VerifyOptions) -> dict[str, Any]:
    """Runs in a Ray worker: write the files into a fresh folder, judge, return the outcome's fields."""
    with tempfile.TemporaryDirectory(prefix="kw-ray-") as tmp:
        root = Path(tmp)
        task = root / "task" / Path(task_name).name
        task.parent.mkdir()
        task.write_text(task_source)
        for name, text in sidecars.items():
            (task.parent / name).write_text(text)
        cand = root / "cand" / Path(cand_name).name
        cand.parent.mkdir()
        cand.write_text(cand_source)
        out = judge_here(task, cand, opts)
    return {"verdict": out.verdict, "seconds": out.seconds, "error": out.error,
            "error_check": out.error_check.value if out.error_check else None}


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
        started_here = not ray.is_initialized()
        if started_here:
            self._connect(ray)
        try:
            remote = ray.remote(max_retries=1, retry_exceptions=False)(_judge_in_slot)
            slot = self._slot(ray, device, opts.timing)
            refs = {remote.options(**slot).remote(j.task.name, j.task_source, j.sidecars(), j.candidate.name,
                                                  j.source, opts): j for j in jobs}
            try:
                while refs:
                    ready, _ = ray.wait(list(refs), num_returns=1)
                    job = refs.pop(ready[0])
                    yield job, _outcome(ray, ready[0])
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
    """The outcome of a finished task: its verdict, or what went wrong with the slot."""
    try:
        got = ray.get(ref)
    except Exception as exc:  # noqa: BLE001 - Ray's error classes differ between versions
        kinds = {type(exc).__name__} | {type(c).__name__ for c in (getattr(exc, "cause", None), exc.__cause__) if c}
        if kinds & set(_LOST):
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            return JudgeOutcome(None, 0.0, error=f"the judging slot was lost on both tries ({type(exc).__name__}: "
                                f"{first}); not the candidate's fault, judged again when the bench runs again",
                                error_check=ErrorCheck.INFRASTRUCTURE)
        return JudgeOutcome(None, 0.0, error=f"kernelwright failed in a Ray task ({type(exc).__name__}: "
                            f"{str(exc)[-600:]}); please report it", error_check=ErrorCheck.INTERNAL)
    check = got.get("error_check")
    return JudgeOutcome(got["verdict"], float(got["seconds"]), error=got["error"],
                        error_check=ErrorCheck(check) if check else None)
