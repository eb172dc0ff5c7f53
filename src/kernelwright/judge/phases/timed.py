"""Phase 5: timing, the candidate's and then the baselines', with the timed-output checks (trusted side)."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright.judge import compare as cmp
from kernelwright.judge import timing
from kernelwright.judge._support import InputSet
from kernelwright.judge.phases.floors import FloorsPhase
from kernelwright.judge.phases.state import Rejected
from kernelwright.judge.result import Check, Timing
from kernelwright.sandbox.codec import decode
from kernelwright.sandbox.process import Worker


class TimedPhase(FloorsPhase):
    """Calibrate, time the candidate, check integrity and profile; the baselines once it is gone."""

    def _timing_phase(self, ref: Worker, cand: Worker, t0: float) -> None:
        m_cand, checks = self._time_candidate(ref, cand) if self.opts.timing else (None, [])
        # Integrity before profiling: importing the profiler re-wraps torch functions.
        reply, _, _ = cand.request(P.BareRequest(op=P.Op.INTEGRITY), timeout=self.opts.call_timeout_s)
        self._integrity(reply.get("violations") if reply.get("status") == P.Status.OK
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
            reply, blobs, _ = cand.request(P.BareRequest(op=P.Op.FETCH), timeout=self.opts.call_timeout_s)
            if reply.get("status") != P.Status.OK:
                raise Rejected(Check.TIMED_OUTPUT, "fetching a timed output failed: "
                               + S.tail(reply.get("error", ""), 300))
            checks.append((set_id, seed, index, reply.get("out"), blobs))

        try:
            with S.paused(ref), self._step("timing.candidate"):
                m_cand = timing.measure(cand, P.Target.MODEL, self.cal, warm, timing_sets, check, self.rng,
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
            m_eager = timing.measure(ref, P.Target.EAGER, self.cal, warm, timing_sets, None, self.rng,
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
            reply, rblobs = self._ref_request(ref, P.PerturbedReferenceRequest(
                op=P.Op.PERTURBED_REFERENCE, set_id=set_id, seed=seed, index=index))
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
        reply, _, _ = ref.request(P.SetRequest(op=P.Op.COMPILE, set_id=warm[0]),
                                  timeout=self.opts.import_timeout_s)
        if reply.get("status") != P.Status.OK:
            self.findings.append("torch.compile baseline failed: " + S.tail(reply.get("error", ""), 300))
            return None
        return timing.measure(ref, P.Target.COMPILED, self.cal, warm, timing_sets, None, self.rng,
                                       perturb=self.meta.perturb_timing_inputs)
