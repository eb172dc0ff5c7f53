"""The judge: decides whether a candidate is correct and honest, and how fast it really is.

The process running this module is the trusted side. It never imports the task
or the candidate: the task runs in a reference worker, the candidate in its own
worker, and only tensors, numbers and strings come back over authenticated
channels. Reference outputs live here and nowhere else.
"""

from __future__ import annotations

import hashlib
import platform
import signal
import random
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from kernelwright import constants as C
from kernelwright import forms
from kernelwright.judge import compare as cmp
from kernelwright.judge import _support as S
from kernelwright.judge import kernels, roofline, scan, timing
from kernelwright.judge._support import InputSet
from kernelwright.judge.inputs import fresh_seed, input_bytes
from kernelwright.judge.pairs import PairPool, PairSpec, start_pair
from kernelwright.judge.result import Check, JudgeResult, Reason, Timing, TrialResult
from kernelwright.sandbox import buildcache, limits, quiet
from kernelwright.sandbox.codec import decode, describe
from kernelwright.sandbox.process import Worker, WorkerFailure
from kernelwright.task.loader import CandidateSource, InputError, TaskSource, load_candidate, load_task
from kernelwright.task.metadata import TaskError


@dataclass(frozen=True)
class VerifyOptions:
    """How to judge. Defaults are the strict ones; tests may skip the slow baselines."""

    device: str | None = None  # None: cuda when available, else cpu
    trials: int = C.MIN_TRIALS
    compile_baseline: bool = True
    timing: bool = True
    strict_task: bool = False
    threads: int | None = None
    build_cache: bool = True
    memory_bytes: int = C.WORKER_MEMORY_BYTES
    import_timeout_s: float = C.IMPORT_TIMEOUT_S
    call_timeout_s: float = C.CALL_TIMEOUT_S


class Rejected(Exception):
    """Stop judging: the candidate failed a check."""

    def __init__(self, check: Check | str, detail: str) -> None:
        super().__init__(detail)
        self.reason = Reason(check.value if isinstance(check, Check) else check, detail)


def resolve_device(device: str | None) -> str:
    """'cuda' when available and not told otherwise; InputError for cuda without a GPU."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda was asked for, but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise InputError(f"unknown device {device!r}: use cpu or cuda")
    return device


_FLOPS: dict[tuple[str, str], int] = {}  # (task source hash, device) -> FLOPs of one call


def pair_spec(options: VerifyOptions, device: str) -> PairSpec:
    """The workers a verdict with these options needs (what a PairPool must hold for it)."""
    threads = options.threads or (None if device == "cuda" else max(1, S.cpu_count()))
    return PairSpec(device, threads, options.memory_bytes)


def verify_files(task_path: str | Path, candidate_path: str | Path,
                 options: VerifyOptions | None = None, pool: PairPool | None = None) -> JudgeResult:
    """Judge the candidate file against the task file.

    With `pool`, the verdict takes its workers from it when a pair is ready and
    starts the next pair once its timed calls are over (see judge.pairs).
    Raises TaskError or InputError (exit code 2) for a bad task, file or option;
    every problem of the candidate is a rejected verdict instead.
    """
    options = options or VerifyOptions()
    task = load_task(task_path)
    candidate = load_candidate(candidate_path, task)
    return _Judgement(task, candidate, options, resolve_device(options.device), pool).run()


class _Judgement:
    def __init__(self, task: TaskSource, cand: CandidateSource, opts: VerifyOptions, device: str,
                 pool: PairPool | None = None) -> None:
        self.task, self.cand, self.opts, self.device = task, cand, opts, device
        self.pool = pool
        self.cuda = device == "cuda"
        self.meta = task.meta
        self.findings: list[str] = []
        self.trials: list[TrialResult] = []
        self.phases: dict[str, float] = {}
        self.env: dict[str, Any] = {}
        self.sets: dict[int, InputSet] = {}
        self.rng = random.Random(secrets.randbits(64))
        self.timing: Timing | None = None
        self.candidate_ran = False
        self.prestaged: set[int] = set()  # sets the candidate got before the relay

    # -- top level -----------------------------------------------------------

    def run(self) -> JudgeResult:
        """Judge once; every candidate failure becomes a rejected verdict."""
        form = forms.detect(self.cand.source)
        self.findings.append(f"form: {form.language if form else 'plain PyTorch or unrecognised'}")
        self.findings += scan.summarize(scan.scan_source(self.cand.source))
        if self.cand.problem:
            check = Check.SIGNATURE if "ModelNew" in self.cand.problem else Check.IMPORT
            return self._result([Reason(check.value, self.cand.problem)])
        limits.become_subreaper()
        limits.protect_self()
        self.ceilings = roofline.CeilingCache()  # before any candidate code exists
        ref = cand = None
        try:
            ref, cand = self._start_workers()
            self._judge(ref, cand)
            reasons: list[Reason] = []
        except Rejected as r:
            reasons = [r.reason]
        except WorkerFailure as f:
            if ref is not None and f is ref.failure:
                if not self.candidate_ran or f.kind in ("memory", "timeout"):
                    raise TaskError(f"the reference worker failed while running the task: {f}") from None
                # Once candidate code has run, it may have killed or stopped the
                # reference (same user): that is the candidate's failure, not the task's.
                reasons = [Reason(Check.CRASH.value, "the reference worker died while the candidate's "
                                  f"code was running ({f.detail}); a candidate must leave other "
                                  "processes alone (if the task itself crashes, run it alone to check)")]
            else:
                reasons = [Reason(f.kind, S.failure_sentence(f))]
        finally:
            for w in (cand, ref):
                if w is not None:
                    w.close()
            if self.pool is not None:
                # Nothing of this verdict is timed any more: the next pair may start.
                self.pool.refill(pair_spec(self.opts, self.device))
            if self.ceilings.restore_if_changed():
                self.findings.append("something changed the device-ceilings cache during this judgement; "
                                     "it was put back")
        return self._result(reasons)

    def _result(self, reasons: list[Reason]) -> JudgeResult:
        # Set even when no worker started (no ModelNew, a syntax error): the verdict says where.
        self.env.setdefault("device", self.device)
        self.env.setdefault("python", platform.python_version())
        self.env.setdefault("compiler", S.compiler_version(self.cuda))
        self.env["task_metadata"] = self.meta.to_dict()
        return JudgeResult(verdict="rejected" if reasons else "accepted", reasons=reasons,
                           correctness=self.trials, timing=self.timing, findings=self.findings,
                           environment=self.env, phases_s={k: round(v, 3) for k, v in self.phases.items()})

    def _phase(self, name: str, t0: float) -> None:
        self.phases[name] = self.phases.get(name, 0.0) + time.perf_counter() - t0

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        """Account a sub-step of a phase (reported as phases_s["timing.<name>"] and so on)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._phase(name, t0)

    # -- workers -------------------------------------------------------------

    def _start_workers(self) -> tuple[Worker, Worker]:
        t0 = time.perf_counter()
        self.build_dir = buildcache.build_dir(self.cand.source, self.device) if self.opts.build_cache else None
        pooled = pair_spec(self.opts, self.device)
        pair = self.pool.take(pooled) if self.pool is not None else None
        if pair is None:
            pair = start_pair(replace(pooled, build_cache_dir=str(self.build_dir) if self.build_dir else None))
        else:
            self.findings.append(f"workers: pre-started ({pair.start_s:.1f} s to start, "
                                 "before this verdict and outside any timing)")
        self.env.update(pair.environment)
        self.findings += [f"sandbox: {p}" for p in pair.hardening]
        self._phase("start", t0)
        return pair.ref, pair.cand

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
                # compile at first launch (NVRTC, Triton) overlaps the reference's work.
                reply, blobs = self._ref_request(ref, {"op": "inputs", "set_id": s.set_id, "drop": False})
                first.append(ex.submit(self._first_call, cand, loaded, s, reply, blobs))

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
        self._check_degenerate()
        t0 = time.perf_counter()
        self._correctness(ref, cand)
        self._phase("correctness", t0)
        t0 = time.perf_counter()
        with quiet.quiet():  # background builds stand still while anything is timed
            self._timing_phase(ref, cand, t0)

    def _timing_phase(self, ref: Worker, cand: Worker, t0: float) -> None:
        m_cand, checks = self._time_candidate(ref, cand) if self.opts.timing else (None, [])
        # Integrity before profiling: importing the profiler re-wraps torch functions.
        reply, _, _ = cand.request({"op": "integrity"}, timeout=self.opts.call_timeout_s)
        self._integrity(reply.get("violations") if reply.get("status") == "ok"
                        else ["the integrity check itself failed"], "after the runs")
        violation = cand.check_affinity()
        self._integrity([violation] if violation else [], "while running")
        with self._step("timing.profile"):
            self._profile(cand)
        # The candidate's process is gone before any baseline is timed: work it
        # left queued on the GPU dies with its context, and nothing it started
        # can slow the reference down.
        cand.close()
        if m_cand is not None:
            self._time_baselines(ref, m_cand, checks)
            self._phase("timing", t0)

    # -- reference side ------------------------------------------------------

    def _ref_request(self, ref: Worker, header: dict[str, Any], blobs: list[bytes] | None = None,
                     timeout: float | None = None) -> tuple[dict[str, Any], list[bytes]]:
        reply, rblobs, _ = ref.request(header, blobs, timeout or self.opts.call_timeout_s)
        if reply.get("status") != "ok":
            raise TaskError(f"the task failed in its reference run ({header['op']}): {reply.get('error')}")
        return reply, rblobs

    def _load_reference(self, ref: Worker, weight_seed: int) -> tuple[dict[str, Any], list[bytes]]:
        reply, blobs = self._ref_request(ref, {
            "op": "load", "source": self.task.source, "path": str(self.task.path.resolve()),
            "weight_seed": weight_seed, "eval_mode": self.meta.eval_mode}, timeout=self.opts.import_timeout_s)
        return reply, blobs

    def _plan_sets(self) -> list[tuple[str, str, dict[str, Any] | None, bool]]:
        """(kind, distribution, variant, timing) for every set: trials, extra shapes, timing sets."""
        dists = self.meta.distributions
        n = max(self.opts.trials, C.MIN_TRIALS, len(dists))
        plan = [("trial", dists[i % len(dists)], None, False) for i in range(n)]
        plan += [("trial", "task", shape, False) for shape in self.meta.shapes]
        if self.opts.timing:
            plan += [("timing", "task", None, True)] * C.TIMING_INPUT_SETS
        return plan

    def _make_sets(self, ref: Worker, made_warm: Callable[[InputSet], None] | None = None) -> None:
        """Make every planned set in the reference; `made_warm(set)` once the warm-up set exists."""
        budget = C.TIMING_INPUT_BYTES_CAP
        timing_refs = 0
        for set_id, (kind, dist, variant, is_timing) in enumerate(self._plan_sets()):
            if is_timing and budget <= 0 and sum(1 for s in self.sets.values() if s.variant == "timing") >= 2:
                continue
            # Timed calls run on perturbed inputs, each checked against a reference made for
            # exactly those inputs, so a timing set's own outputs are needed only once (for
            # the degenerate-task check) or when the task turns perturbation off.
            want_ref = not is_timing or not self.meta.perturb_timing_inputs or timing_refs == 0
            timing_refs += is_timing and want_ref
            reply, blobs = self._ref_request(ref, {
                "op": "make_set", "set_id": set_id, "seed": fresh_seed(), "distribution": dist,
                "variant": variant, "reference": want_ref})
            if not want_ref:
                self.sets[set_id] = InputSet(set_id, dist, "timing", int(reply["nbytes"]))
                budget -= int(reply["nbytes"])
                continue
            s = InputSet(set_id, dist, "timing" if is_timing else S.variant_name(variant),
                     int(reply["nbytes"]), decode(reply["native"], blobs))
            if "ref64" in reply:
                s.ref64 = decode(reply["ref64"], blobs)
            elif set_id == 0:
                self.findings.append("no float64 reference (" + reply.get("ref64_error", "?")
                                     + "): compared against the task's own precision")
            if reply.get("mutated") and not self.meta.mutates_inputs and set_id == 0:
                self.findings.append("the reference itself changes its inputs; declare mutates_inputs "
                                     "in the task metadata")
            s.slack = S.slack(s, self.meta.rtol, self.meta.atol)
            budget -= s.nbytes if is_timing else 0
            self.sets[set_id] = s
            if made_warm is not None and s.variant == "default" and self._warm_set() == set_id:
                made_warm(s)

    def _check_degenerate(self) -> None:
        trials = [s for s in self.sets.values() if s.variant in ("default", "timing") and s.native is not None]
        warnings = []
        if trials and all(cmp.zeros_would_pass(s.native, s.ref64, self.meta.rtol, self.meta.atol)
                          for s in trials):
            warnings.append("an all-zero output would pass this task's tolerance")
        same = [s for s in trials if s.distribution == "task"]
        if len(same) >= 2 and cmp.relative_change(same[0].native, same[1].native) < C.DEGENERATE_RELATIVE_CHANGE:
            warnings.append("the reference output barely depends on its inputs")
        if warnings and self.opts.strict_task:
            raise TaskError("degenerate task: " + "; ".join(warnings))
        self.findings += [f"degenerate task: {w}" for w in warnings]

    # -- candidate side ------------------------------------------------------

    def _load_candidate(self, cand: Worker, init: tuple[dict[str, Any], list[bytes]], weight_seed: int) -> None:
        reply0, blobs = init
        header = {"op": "load", "source": self.cand.source, "filename": self.cand.path.name,
                  "build_dir": str(self.build_dir) if self.build_dir else None,
                  "init_inputs": reply0["init_inputs"], "state": reply0["state"],
                  "weight_seed": weight_seed, "eval_mode": self.meta.eval_mode}
        lock = buildcache.exclusive(self.build_dir) if self.build_dir else nullcontext()
        self.candidate_ran = True
        with lock:
            reply, _, _ = cand.request(header, blobs, timeout=self.opts.import_timeout_s)
        status = reply.get("status")
        if status == "import_failed":
            check = Check.COMPILE if reply.get("compile_error") else Check.IMPORT
            raise Rejected(check, S.import_sentence(reply.get("error", ""), check))
        if status in ("construct_failed", "error"):
            raise Rejected(Check.SIGNATURE, "ModelNew(*get_init_inputs()) failed: "
                           + S.tail(reply.get("error", ""), 600))
        self.phases["import"] = float(reply.get("import_s", 0.0))
        if reply.get("state_keys"):
            self.findings.append(f"weights: copied {reply.get('copied')} of {reply.get('state_keys')} "
                                 "reference parameters and buffers into ModelNew by name")
        self._integrity(reply.get("integrity"), "after import")

    def _first_call(self, cand: Worker, loaded: Future[None], s: InputSet, reply: dict[str, Any],
                    blobs: list[bytes]) -> None:
        """Stage the warm-up set in the candidate and call it once, unchecked (after its load)."""
        if loaded.exception() is not None:
            return  # the load's own failure is the verdict
        self._stage(cand, s, reply, blobs)
        self.prestaged.add(s.set_id)
        reply, _, _ = cand.request({"op": "warm", "set_id": s.set_id}, timeout=self.opts.call_timeout_s)
        if reply.get("status") != "ok":
            raise Rejected(Check.CRASH, f"the candidate raised on its first call ({s.distribution} inputs, "
                           "an unchecked warm-up): " + S.tail(reply.get("error", ""), 800))

    def _stage(self, cand: Worker, s: InputSet, reply: dict[str, Any], blobs: list[bytes]) -> None:
        reply, _, _ = cand.request({"op": "stage", "set_id": s.set_id, "inputs": reply["inputs"]}, blobs,
                                   timeout=self.opts.call_timeout_s)
        if reply.get("status") != "ok":
            raise Rejected(Check.CRASH, "staging inputs failed: " + S.tail(reply.get("error", ""), 400))

    def _integrity(self, violations: Any, when: str) -> None:
        if violations:
            raise Rejected(Check.TAMPER, f"{when}: " + "; ".join(str(v) for v in violations[:6]))

    def _relay(self, ref: Worker, cand: Worker, plan: list[tuple[InputSet, bool]]) -> Iterator[InputSet]:
        """Stage each (set, keep it in the reference) in order, yielding each once the candidate has it.

        The reference sends the next set's inputs while the candidate takes (and runs) the
        current one, so at most two sets are in the judge's memory at a time.
        """
        def fetch(s: InputSet, keep_in_ref: bool) -> tuple[dict[str, Any], list[bytes]]:
            return self._ref_request(ref, {"op": "inputs", "set_id": s.set_id, "drop": not keep_in_ref})

        todo = [(s, keep) for s, keep in plan if s.set_id not in self.prestaged]
        with ThreadPoolExecutor(1, thread_name_prefix="kw-relay") as ex:
            ahead = ex.submit(fetch, *todo[0]) if todo else None
            done = 0
            for s, _ in plan:
                if s.set_id in self.prestaged:  # the candidate has it already (its warm-up set)
                    yield s
                    continue
                assert ahead is not None  # submitted for every set before it is reached
                reply, blobs = ahead.result()
                done += 1
                ahead = ex.submit(fetch, *todo[done]) if done < len(todo) else None
                self._stage(cand, s, reply, blobs)
                yield s

    def _correctness(self, ref: Worker, cand: Worker) -> None:
        # The reference keeps what baselines need (the warm-up set, timing sets);
        # the candidate keeps the warm-up set and timing sets; trial sets are
        # dropped after use so large tasks fit in memory.
        warm = self._warm_set()
        timing_sets = [s for s in self.sets.values() if s.variant == "timing"]
        trial_sets = [s for s in self.sets.values() if s.variant != "timing"]
        self.rng.shuffle(trial_sets)
        plan = [(s, True) for s in timing_sets] + [(s, s.set_id == warm) for s in trial_sets]
        # closing(): a rejection mid-way must wait for the fetch in flight before the judge
        # goes on to close the workers, never leave it reading a closed pipe.
        with closing(self._relay(ref, cand, plan)) as relayed:
            self._run_trials(cand, (s for s in relayed if s.variant != "timing"), warm)

    def _run_trials(self, cand: Worker, trials: Iterator[InputSet], warm: int) -> None:
        for i, s in enumerate(trials):
            reply, blobs, _ = cand.request({"op": "run", "set_id": s.set_id, "drop": s.set_id != warm},
                                           timeout=self.opts.call_timeout_s)
            if reply.get("status") != "ok":
                raise Rejected(Check.CRASH, f"the candidate raised on trial {i} ({s.distribution} inputs): "
                               + S.tail(reply.get("error", ""), 800))
            out_spec = reply.get("out")
            c = self._compare(out_spec, blobs, s, plain=bool(reply.get("plain")))
            self.trials.append(TrialResult(i, s.distribution, s.variant, c.max_abs_error,
                                           c.max_rel_error, c.scale, c.passed))
            if not c.passed:
                raise Rejected(c.check or Check.MISMATCH,
                               f"trial {i} ({s.distribution} inputs, {s.variant} shape): {c.detail}")
            if reply.get("mutated") and not self.meta.mutates_inputs:
                raise Rejected(Check.INPUT_MUTATION, f"trial {i}: the candidate changed its inputs, "
                               "which the task does not declare")

    def _compare(self, out_spec: Any, blobs: list[bytes], s: InputSet, plain: bool) -> cmp.Comparison:
        try:
            out = decode(out_spec, blobs)
        except ValueError as exc:
            return cmp.Comparison(False, float("nan"), float("nan"), float("nan"), float("inf"),
                                  Check.PROTOCOL.value, f"undecodable output: {exc}")
        if not plain:
            return cmp.Comparison(False, float("nan"), float("nan"), float("nan"), float("inf"),
                                  Check.OUTPUT_TYPE.value, "the output must be exactly torch.Tensor "
                                  f"(a tensor, or a tuple of them), got {describe(out_spec)}")
        return cmp.compare_tree(out, describe(out_spec), s.native, s.ref64, self.device,
                                self.meta.rtol, self.meta.atol, s.slack)

    # -- timing --------------------------------------------------------------

    def _time_candidate(self, ref: Worker, cand: Worker) -> tuple[timing.Measurement, list[Any]]:
        """Calibrate in the trusted worker, then time the candidate; return what to check later."""
        # The protocol's overhead is measured in the trusted worker (same harness,
        # same pipes) and subtracted from every side alike: the candidate can
        # neither inflate it nor be measured with a different yardstick.
        warm = [self._warm_set()]
        with S.paused(cand, ref), self._step("timing.calibrate"):
            self.cal = timing.calibrate(ref, warm[0], self.meta.perturb_timing_inputs)
        timing_sets = [s.set_id for s in self.sets.values() if s.variant == "timing"]
        checks: list[tuple[int, int, int, Any, list[bytes]]] = []

        def check(set_id: int, seed: int, index: int) -> None:
            reply, blobs, _ = cand.request({"op": "fetch"}, timeout=self.opts.call_timeout_s)
            if reply.get("status") != "ok":
                raise Rejected(Check.TIMED_OUTPUT, "fetching a timed output failed: "
                               + S.tail(reply.get("error", ""), 300))
            checks.append((set_id, seed, index, reply.get("out"), blobs))

        try:
            with S.paused(ref), self._step("timing.candidate"):
                m_cand = timing.measure(cand, "model", self.cal, warm, timing_sets, check, self.rng,
                                        perturb=self.meta.perturb_timing_inputs)
        except timing.TimingError as exc:
            raise Rejected(exc.check, exc.detail) from None
        for verdict in (timing.timer_disagreement(m_cand), timing.memoization(m_cand, self.cal)):
            if verdict:
                raise Rejected(Check.TIMER if "clock" in verdict else Check.MEMOIZATION, verdict)
        return m_cand, checks

    def _time_baselines(self, ref: Worker, m_cand: timing.Measurement, checks: list[Any]) -> None:
        """Eager and compiled baselines, timed outputs, roofline; the candidate has exited."""
        warm = [self._warm_set()]
        timing_sets = [s.set_id for s in self.sets.values() if s.variant == "timing"]
        ref.signal(signal.SIGCONT)
        with self._step("timing.eager"):
            m_eager = timing.measure(ref, "eager", self.cal, warm, timing_sets, None, self.rng,
                                     perturb=self.meta.perturb_timing_inputs)
        with self._step("timing.compile"):
            m_comp = self._compile_baseline(ref, warm, timing_sets)
        with self._step("timing.floor"):
            floor, flop_floor = self._floor(ref, S.ratio(m_eager.stats.median, m_cand.stats.median))
        with self._step("timing.timed_outputs"):
            self._check_timed_outputs(ref, checks)
        cand_ms = m_cand.stats.median
        self.timing = Timing(
            candidate_ms=m_cand.stats, eager_ms=m_eager.stats, compile_ms=m_comp.stats if m_comp else None,
            speedup_vs_eager=S.ratio(m_eager.stats.median, cand_ms),
            speedup_vs_compile=S.ratio(m_comp.stats.median, cand_ms) if m_comp else None, floor_ms=floor)
        if floor is not None and cand_ms < C.ROOFLINE_SAFETY * floor:
            raise Rejected(Check.ROOFLINE, f"{cand_ms:.4f} ms per call is impossible on this device: "
                           f"reading its inputs and writing its outputs takes at least {floor:.4f} ms")
        if flop_floor is not None and cand_ms < C.ROOFLINE_SAFETY * flop_floor:
            self.findings.append(f"faster than the reference's FLOPs allow on this device ({flop_floor:.4f} ms): "
                                 "the kernel does less arithmetic than the reference (an algorithmic change); "
                                 "verified, but worth a human look")
        sp = self.timing.speedup_vs_eager
        if sp is not None and sp > C.LARGE_SPEEDUP:
            self.findings.append(f"large speedup ({sp:.1f}x over eager): verified, but worth a human look")

    def _check_timed_outputs(self, ref: Worker, checks: list[tuple[int, int, int, Any, list[bytes]]]) -> None:
        """Compare each checked timed output with the reference of its perturbed inputs.

        The reference worker makes the next check's reference while this process compares
        the current one (one ahead at most, so large outputs are never all held at once).
        """
        # The slack of the timing set that has its own float64 reference (same shapes and
        # distribution as every timing set), widened: the reference here is native precision.
        base = next((s for s in self.sets.values() if s.variant == "timing" and s.native is not None), None)
        factor = [C.TIMED_OUTPUT_SLACK * f for f in (base.slack if base and base.slack else [])]

        def reference_for(set_id: int, seed: int, index: int) -> InputSet:
            if seed < 0:  # the task turned perturbation off: the set's own reference applies
                return self.sets[set_id]
            reply, rblobs = self._ref_request(ref, {"op": "perturbed_reference", "set_id": set_id,
                                                    "seed": seed, "index": index})
            s = InputSet(set_id, "task", "timing", 0, decode(reply["native"], rblobs))
            s.slack = factor or [C.TIMED_OUTPUT_SLACK] * len(cmp.leaves(s.native))
            return s

        with ThreadPoolExecutor(1, thread_name_prefix="kw-ref") as ex:
            ahead = ex.submit(reference_for, *checks[0][:3]) if checks else None
            for i, (_, _, _, out_spec, blobs) in enumerate(checks):
                assert ahead is not None  # submitted for every check before it is reached
                s = ahead.result()
                ahead = ex.submit(reference_for, *checks[i + 1][:3]) if i + 1 < len(checks) else None
                c = self._compare(out_spec, blobs, s, plain=True)
                if not c.passed:
                    raise Rejected(Check.TIMED_OUTPUT, "the output of a timed call is wrong (results "
                                   f"differ between checked and timed calls): {c.detail}")

    def _compile_baseline(self, ref: Worker, warm: list[int], timing_sets: list[int]) -> timing.Measurement | None:
        if not self.opts.compile_baseline:
            self.findings.append("torch.compile baseline skipped (--no-compile-baseline)")
            return None
        reply, _, _ = ref.request({"op": "compile", "set_id": warm[0]}, timeout=self.opts.import_timeout_s)
        if reply.get("status") != "ok":
            self.findings.append("torch.compile baseline failed: " + S.tail(reply.get("error", ""), 300))
            return None
        return timing.measure(ref, "compiled", self.cal, warm, timing_sets, None, self.rng,
                                       perturb=self.meta.perturb_timing_inputs)

    def _floor(self, ref: Worker, speedup: float | None) -> tuple[float | None, float | None]:
        """(bytes floor, FLOP floor) in ms. Counting FLOPs costs seconds (the FLOP counter's
        imports) and only feeds a finding, so it runs only for clearly faster candidates."""
        s0 = self.sets[self._warm_set()]
        key = roofline.cache_key(self.env)
        ceilings = self.ceilings.get(key)
        if ceilings is None:
            ceilings, _ = self._ref_request(ref, {"op": "ceilings"}, timeout=600)
            ceilings = {k: v for k, v in ceilings.items() if not k.startswith("_") and k != "status"}
            self.ceilings.put(key, ceilings)
        flops = 0
        if speedup is not None and speedup >= C.FLOP_CHECK_MIN_SPEEDUP:
            # A property of the task at its default shapes, not of the candidate: counted once
            # per task and device in this process (a search judges one task many times).
            key = (hashlib.sha256(self.task.source.encode()).hexdigest(), self.device)
            if key not in _FLOPS:
                reply, _ = self._ref_request(ref, {"op": "flops", "set_id": s0.set_id})
                _FLOPS[key] = int(reply.get("flops", 0))
            flops = _FLOPS[key]
        out_leaves = [t for t in cmp.leaves(s0.native) if isinstance(t, torch.Tensor)]
        moved = s0.nbytes + input_bytes(out_leaves)
        dtype = str(out_leaves[0].dtype).removeprefix("torch.") if out_leaves else "float32"
        return roofline.floor_ms(moved, flops, dtype, ceilings, self.cuda)

    def _warm_set(self) -> int:
        """The set used for warm-up, FLOP counting and profiling: the first default-shape trial."""
        return next(s.set_id for s in self.sets.values() if s.variant == "default")

    def _profile(self, cand: Worker) -> None:
        reply, _, _ = cand.request({"op": "profile", "set_id": self._warm_set()}, timeout=self.opts.call_timeout_s)
        if reply.get("status") == "ok":
            self.findings += kernels.findings(reply.get("rows", []), self.cuda)
        else:
            self.findings.append("profiling failed: " + S.tail(reply.get("error", ""), 200))


