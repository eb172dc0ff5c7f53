"""Phase 4: correctness trials, each set relayed from the reference (or made by the candidate's worker)
and every output compared in the reference worker (trusted side)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from typing import Any, Iterator

from kernelwright import compare as cmp
from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright.judge._support import InputSet
from kernelwright.judge.phases.state import IpcFailed, JudgementState, Rejected
from kernelwright.judge.result import Check, TrialResult
from kernelwright.sandbox.process import Worker


class CorrectnessPhase(JudgementState):
    """Relay the trial sets to the candidate, run each once, compare with the float64 references."""

    def _relay(self, ref: Worker, cand: Worker, plan: list[tuple[InputSet, bool]]) -> Iterator[InputSet]:
        """Stage each (set, keep it in the reference) in order, yielding each once the candidate has it.

        The reference sends the next set's inputs while the candidate takes (and runs) the
        current one, so at most two sets are in the judge's memory at a time.
        """
        def fetch(s: InputSet, keep_in_ref: bool) -> tuple[dict[str, Any], list[bytes]] | None:
            if s.deferred:  # made now, one set ahead of the trial that uses it
                self._make_deferred(ref, s)
            if self.local_inputs:
                return None  # the candidate's worker makes it from its seed (no bytes to relay)
            return self._ref_request(ref, P.DropSetRequest(op=P.Op.INPUTS, set_id=s.set_id, drop=not keep_in_ref))

        todo = [(s, keep) for s, keep in plan if s.set_id not in self.prestaged]
        # Large sets go one at a time: fetching the next while the candidate runs, or while its
        # output is compared, would hold a third set's inputs and references in the reference
        # worker at once.
        ahead_ok = not any(s.deferred for s in self.sets.values())
        with ThreadPoolExecutor(1, thread_name_prefix="kw-relay") as ex:
            ahead = ex.submit(fetch, *todo[0]) if todo else None
            done = 0
            for s, keep in plan:
                if s.set_id in self.prestaged:  # the candidate has it already (its warm-up set)
                    yield s
                    continue
                if ahead is None:  # a large set: made only now, the last trial compared and its references gone
                    ahead = ex.submit(fetch, *todo[done])
                got = ahead.result()
                done += 1
                nxt = todo[done] if done < len(todo) else None
                if got is None and self._candidate_makes(cand, s):
                    if not keep:
                        self._ref_request(ref, P.DropOnlyRequest(op=P.Op.INPUTS, set_id=s.set_id, drop=True,
                                                                 send=False))
                elif got is None:  # the candidate's set came out different: relayed after all
                    got = self._ref_request(ref, P.DropSetRequest(op=P.Op.INPUTS, set_id=s.set_id, drop=not keep))
                ahead = ex.submit(fetch, *nxt) if nxt is not None and ahead_ok else None
                if got is not None:
                    self._stage(cand, s, *got)
                del got
                yield s

    def _correctness(self, ref: Worker, cand: Worker) -> None:
        # The reference keeps what baselines need (the warm-up set, timing sets);
        # the candidate keeps the warm-up set and timing sets; trial sets are
        # dropped after use so large tasks fit in memory.
        warm = self._warm_set()
        bar = S.RaceBars.of(self.task_pending, self.task_probe).host_ms
        if bar - C.RACE_PENDING_MS > C.RACE_TASK_FINDING_MS:
            self.findings.append(
                f"race check: GPU work pending past {bar:.3f} ms after return is a race here, {C.RACE_PENDING_MS:g} ms "
                f"above the {bar - C.RACE_PENDING_MS:.3f} ms the task's own calls left pending on this device "
                f"(median of {len(self.task_pending)} sets)")
        timing_sets = [s for s in self.sets.values() if s.variant == "timing"]
        # In random order, the sets made ahead first: each is dropped from the reference worker
        # once relayed, so a set made only now (deferred) is never staged beside all of them.
        made = [s for s in self.sets.values() if s.variant != "timing" and not s.deferred]
        later = [s for s in self.sets.values() if s.variant != "timing" and s.deferred]
        self.rng.shuffle(made)
        self.rng.shuffle(later)
        trial_sets = made + later
        # The timing sets last: the candidate's worker holds none of them during the trials (a
        # set's worth of GPU memory on a large task).
        plan = [(s, s.set_id == warm) for s in trial_sets] + [(s, True) for s in timing_sets]
        # closing(): a rejection mid-way must wait for the fetch in flight before the judge
        # goes on to close the workers, never leave it reading a closed pipe.
        with closing(self._relay(ref, cand, plan)) as relayed:
            self._run_trials(ref, cand, (s for s in relayed if s.variant != "timing"), warm)

    def _compare_trial(self, ref: Worker, cand: Worker, reply: dict[str, Any], blobs: list[bytes],
                       s: InputSet) -> cmp.Comparison:
        """Compare a trial's output: handed over in GPU memory when it was, else as the bytes sent."""
        plain = bool(reply.get("plain"))
        if reply.get("ipc_error") and self.ipc:
            self._ipc_off(f"the candidate's worker could not export it ({S.tail(str(reply['ipc_error']), 200)})")
        if "ipc" not in reply:
            return self._compare(ref, reply.get("out"), blobs, s, plain=plain)
        try:
            return self._compare(ref, reply.get("out"), [], s, plain=plain, ipc=reply["ipc"])
        except IpcFailed as exc:
            self._ipc_off(f"the reference worker could not read it ({S.tail(str(exc), 200)})")
        # The same snapshot, as bytes; the set's references are still held (nothing was compared).
        got, got_blobs, _ = cand.request(P.FetchRequest(op=P.Op.FETCH), timeout=self.opts.call_timeout_s)
        if got.get("status") != P.Status.OK:
            raise Rejected(Check.CRASH, "sending a checked output failed: " + S.tail(got.get("error", ""), 300))
        return self._compare(ref, got.get("out"), got_blobs, s, plain=plain)

    def _ipc_off(self, why: str) -> None:
        self.ipc = False
        self.findings.append(f"outputs handed over as bytes, not in GPU memory: {why}")

    def _run_trials(self, ref: Worker, cand: Worker, trials: Iterator[InputSet], warm: int) -> None:
        bars = S.RaceBars.of(self.task_pending, self.task_probe)
        for i, s in enumerate(trials):
            t0 = time.perf_counter()
            run = P.RunRequest(op=P.Op.RUN, set_id=s.set_id, drop=s.set_id != warm, race_bar_ms=bars.host_ms,
                               ipc=self.ipc, in_place=self.crowded and s.set_id != warm)
            if bars.probe_ms is not None:
                run["probe_bar_ms"] = bars.probe_ms
            reply, blobs, _ = cand.request(run, timeout=self.opts.call_timeout_s)
            if reply.get("status") != P.Status.OK:
                raise Rejected(Check.CRASH, f"the candidate raised on trial {i} ({s.distribution} inputs): "
                               + S.tail(reply.get("error", ""), 800))
            out_spec = reply.get("out")
            # Whatever the worker says here can only reject: the output it sent is still compared.
            late = bars.over(S.finite_or_none(reply.get("pending_ms")), S.finite_or_none(reply.get("probe_ms")))
            if reply.get("race") or late:
                raise Rejected(Check.RACE, f"trial {i} ({s.distribution} inputs): the output was not "
                               "complete when forward returned: " + S.tail(str(reply.get("race") or late), 400))
            t1 = time.perf_counter()
            c = self._compare_trial(ref, cand, reply, blobs, s)
            del blobs
            held = reply.get("gpu_reserved")
            S.trace(f"trial {i}: run and output back {t1 - t0:.2f} s, relayed and compared in "
                    f"{time.perf_counter() - t1:.2f} s" + (f", the candidate's worker says it holds "
                                                          f"{held / 2**30:.1f} GiB on the GPU"
                                                          if isinstance(held, int) else ""))
            self.trials.append(TrialResult(i, s.distribution, s.variant, c.max_abs_error, c.max_rel_error,
                                           c.scale, c.passed, S.finite_or_none(reply.get("pending_ms")),
                                           S.finite_or_none(reply.get("probe_ms"))))
            if not c.passed:
                raise Rejected(c.check or Check.MISMATCH,
                               f"trial {i} ({s.distribution} inputs, {s.variant} shape): {c.detail}")
            if reply.get("mutated") and not self.meta.mutates_inputs:
                raise Rejected(Check.INPUT_MUTATION, f"trial {i}: the candidate changed its inputs, "
                               "which the task does not declare")
            # Its references were dropped in the reference worker once compared (a deferred set's
            # are made again if it is ever needed again); its shapes stay here for the floors.
