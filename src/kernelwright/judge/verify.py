"""The judge: decides whether a candidate is correct and honest, and how fast it really is.

The process running this module is the trusted side. It never imports the task
or the candidate: the task runs in a reference worker, the candidate in its own
worker, and only tensors, numbers and strings come back over authenticated
channels. Reference outputs live here and nowhere else.
"""

from __future__ import annotations

import platform
import time
from contextlib import ExitStack
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from kernelwright import forms
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright.judge import baselines, roofline, scan
from kernelwright.judge._support import InputSet, fresh_seed
from kernelwright.judge.pairs import PairPool, pair_spec
from kernelwright.judge.options import VerifyOptions
from kernelwright.judge.phases.candidate import CandidatePhase
from kernelwright.judge.phases.correctness import CorrectnessPhase
from kernelwright.judge.phases.reference import ReferencePhase
from kernelwright.judge.phases.state import Rejected
from kernelwright.judge.phases.timed import TimedPhase
from kernelwright.judge.phases.workers import WorkersPhase
from kernelwright.judge.result import Check, JudgeResult, Reason
from kernelwright.sandbox import limits, quiet
from kernelwright.sandbox.process import Worker, WorkerFailure
from kernelwright.task.loader import InputError, load_candidate, load_task
from kernelwright.task.metadata import TaskError

__all__ = ["Rejected", "VerifyOptions", "pair_spec", "resolve_device", "verify_files"]


def resolve_device(device: str | None) -> str:
    """'cuda' when available and not told otherwise; InputError for cuda without a GPU."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}: use cpu or cuda")
    return device


def verify_files(task_path: str | Path, candidate_path: str | Path,
                 options: VerifyOptions | None = None, pool: PairPool | None = None) -> JudgeResult:
    """Judge the candidate file against the task file.

    With `pool`, the verdict takes its workers from it when a pair is ready and
    starts the next pair once nothing of it is timed or measured any more (see judge.pairs).
    Raises TaskError or InputError (exit code 2) for a bad task, file or option;
    every problem of the candidate is a rejected verdict instead.
    """
    options = options or VerifyOptions()
    task = load_task(task_path)
    candidate = load_candidate(candidate_path, task)
    return _Judgement(task, candidate, options, resolve_device(options.device), pool).run()


class _Judgement(WorkersPhase, ReferencePhase, CandidatePhase, CorrectnessPhase, TimedPhase):
    """One verdict: the phases (judge/phases/) in order, every candidate failure a rejection."""

    # -- top level -----------------------------------------------------------

    def run(self) -> JudgeResult:
        """Judge once; every candidate failure becomes a rejected verdict."""
        form = forms.detect(self.cand.source)
        self.findings.append(f"form: {form.language if form else 'plain PyTorch or unrecognised'}")
        self.findings += scan.summarize(scan.scan_source(self.cand.source))
        if self.cand.problem:
            check = Check.SIGNATURE if "ModelNew" in self.cand.problem else Check.IMPORT
            return self._result([Reason(check, self.cand.problem)])
        limits.become_subreaper()
        limits.protect_self()
        self.ceilings = roofline.CeilingCache()  # before any candidate code exists
        self.ratios = roofline.JsonCache(baselines.FILE)
        ref = cand = None
        settled = False  # the verdict ended as a verdict (not a task error or an interrupt)
        try:
            ref, cand = self._start_workers()
            self.cand_worker = cand
            cand.limit_messages(self.frame_cap)
            self._judge(ref, cand)
            reasons: list[Reason] = []
            settled = True
        except Rejected as r:
            reasons = [r.reason]
            settled = True
        except WorkerFailure as f:
            if ref is not None and f is ref.failure:
                if "frame too large" in f.detail:
                    # The reference's own message (an input set or output) is larger than this
                    # machine lets a frame be: the task's size, whatever the candidate did. (Only
                    # an unconfined candidate could reach the reference's pipe to forge one, and
                    # it would gain an error, never an acceptance.)
                    raise TaskError("the task does not fit this machine: one of its input sets or outputs "
                                    f"is too large to pass between processes here ({f.detail})") from None
                if not self.candidate_ran or (f.kind in (Check.MEMORY, Check.TIMEOUT) and not ref.external_stops):
                    raise TaskError(f"the reference worker failed while running the task: {f}") from None
                # Once candidate code has run, it may have killed or stopped the
                # reference (same user): that is the candidate's failure, not the task's.
                reasons = [Reason(Check.CRASH, "the reference worker died while the candidate's "
                                  f"code was running ({f.detail}); a candidate must leave other "
                                  "processes alone (if the task itself crashes, run it alone to check)")]
            else:
                reasons = [Reason(f.kind, S.failure_sentence(f))]
                settled = True
        finally:
            if cand is not None:
                cand.close()  # first: nothing of the candidate runs while its reference is looked at
            kept = ref if ref is not None and settled and self._reference_keepable(ref) else None
            if ref is not None and kept is None:
                ref.close()
            if self.pool is not None:
                self.pool.give_back(kept, self.ref_environment, pair_spec(self.opts, self.device), self._task_key())
            self._untimed_from_now()  # a no-op when the timed phase already let it start
            if self.ceilings.restore_if_changed():
                self.findings.append("something changed the device-ceilings cache during this judgement; "
                                     "it was put back")
            if self.ratios.restore_if_changed():
                self.findings.append("something changed the torch.compile ratio cache during this judgement; "
                                     "it was put back")
        if ref is not None and ref.external_stops and self.candidate_ran:
            # Whatever else happened, the reference was frozen by a process that is not the
            # judge while candidate code existed: its timings and failures prove nothing.
            reasons = [Reason(Check.TAMPER, f"the reference worker was stopped {ref.external_stops} time(s) by "
                              "a process other than the judge while the candidate's code was running (the "
                              "judge resumed it); a candidate must leave other processes alone")]
        return self._result(reasons)

    def _result(self, reasons: list[Reason]) -> JudgeResult:
        # Set even when no worker started (no ModelNew, a syntax error): the verdict says where.
        self.env.setdefault("device", self.device)
        self.env.setdefault("python", platform.python_version())
        self.env.setdefault("compiler", S.compiler_version(self.cuda))
        self.env["task_metadata"] = self.meta.to_dict()
        if self.cuda and self.trials:
            # How checked outputs reached the reference worker (worker/cuda_ipc.py): "cuda ipc" or "bytes".
            self.env["output_handover"] = "cuda ipc" if self.ipc else "bytes"
        return JudgeResult(verdict="rejected" if reasons else "accepted", reasons=reasons,
                           correctness=self.trials, timing=self.timing, findings=self.findings,
                           environment=self.env, phases_s={k: round(v, 3) for k, v in self.phases.items()})

    def _judge(self, ref: Worker, cand: Worker) -> None:
        t0 = time.perf_counter()
        weight_seed = fresh_seed()
        init = self._load_reference(ref, weight_seed)
        with ThreadPoolExecutor(1) as ex:
            loaded = ex.submit(self._load_candidate, cand, init, weight_seed)
            first: list[Future[None]] = []  # at most one: the warm-up set's first call

            def first_call(s: InputSet) -> None:
                # The warm-up set goes to the candidate as soon as it exists, and its first
                # (unchecked) call runs while the reference makes the other sets: a JIT
                # compile at first launch (NVRTC, Triton) overlaps the reference's work. With
                # local inputs the candidate's worker makes the set itself (_first_call).
                got = None if self.local_inputs else self._ref_request(
                    ref, P.DropSetRequest(op=P.Op.INPUTS, set_id=s.set_id, drop=False))
                first.append(ex.submit(self._first_call, cand, loaded, s, got))

            try:
                self._make_sets(ref, first_call)
            except BaseException:
                cand.kill()  # a bad task must not wait for the candidate's build to finish
                raise
            t_ref = time.perf_counter() - t0
            loaded.result()
            for f in first:
                f.result()
        self.phases["reference"] = t_ref
        self._phase("compile", t0)
        self._check_degenerate(ref)
        self._forget_timing_references(ref)
        t0 = time.perf_counter()
        self._correctness(ref, cand)
        self._phase("correctness", t0)
        t0 = time.perf_counter()
        with ExitStack() as period:
            # Background builds (and a pool's next pair) stand still while anything is timed or
            # measured; _untimed_from_now ends the period early, once nothing more is.
            period.enter_context(quiet.quiet(self.device))
            self.quiet_period = period
            self._timing_phase(ref, cand, t0)
