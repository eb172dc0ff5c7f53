"""Phase 3: the candidate's import (its build) and its first, unchecked call (trusted side)."""

from __future__ import annotations

from concurrent.futures import Future
from contextlib import nullcontext
from typing import Any

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright.judge._support import InputSet
from kernelwright.judge.phases.state import JudgementState, Rejected
from kernelwright.judge.result import Check
from kernelwright.sandbox import buildcache, pch, quiet
from kernelwright.sandbox.limits import pch_root
from kernelwright.sandbox.process import Worker


class CandidatePhase(JudgementState):
    """Load ModelNew with the reference's weights; stage the warm-up set and call it once."""

    def _load_candidate(self, cand: Worker, init: tuple[dict[str, Any], list[bytes]], weight_seed: int) -> None:
        reply0, blobs = init
        header = P.LoadCandidateRequest(op=P.Op.LOAD, source=self.cand.source, filename=self.cand.path.name,
                                        build_dir=str(self.build_dir) if self.build_dir else None,
                                        init_inputs=reply0["init_inputs"], state=reply0["state"],
                                        weight_seed=weight_seed, eval_mode=self.meta.eval_mode)
        if self.opts.timing and self.opts.process_control:
            state_bytes = sum(len(b) for b in blobs)
            if state_bytes <= C.CONTROL_MAX_STATE_BYTES:
                header.update(control_source=self.task.source, control_path=self.task.path.name)
            else:
                self.findings.append(f"process control skipped: the model's {state_bytes / 2**30:.1f} GiB of "
                                     "weights are not built a second time in the candidate's process")
        if self.opts.confine and "load_inline" in self.cand.source:
            # A confined candidate only reads the shared precompiled header: the judge builds it.
            pch.prebuild(pch_root(), self.device, self.cand.source)
        header["cpp_prefix_pch"] = pch.inductor_include_soon(pch_root(), self.cand.source)
        lock = buildcache.exclusive(self.build_dir) if self.build_dir else nullcontext()
        self.candidate_ran = True
        # The import builds a candidate not built ahead (a search's pool, a Ray build task): a
        # compiler that must stand still while any process on this machine times, as a build
        # ahead does, whichever slot or executor it belongs to.
        with lock, quiet.background(cand):
            reply, _, _ = cand.request(header, blobs, timeout=self.opts.import_timeout_s)
        status = reply.get("status")
        if status == P.Status.IMPORT_FAILED:
            check = Check.COMPILE if reply.get("compile_error") else Check.IMPORT
            raise Rejected(check, S.import_sentence(reply.get("error", ""), check))
        if status in (P.Status.CONSTRUCT_FAILED, P.Status.ERROR):
            raise Rejected(Check.SIGNATURE, "ModelNew(*get_init_inputs()) failed: "
                           + S.tail(reply.get("error", ""), 600))
        self.phases["import"] = float(reply.get("import_s", 0.0))
        if reply.get("state_keys"):
            self.findings.append(f"weights: copied {reply.get('copied')} of {reply.get('state_keys')} "
                                 "reference parameters and buffers into ModelNew by name")
        self._integrity(reply.get("integrity"), "after import")
        if header.get("control_source"):
            why = reply.get("control_error")
            self.control_ready = why == ""
            if why:
                # Built before the candidate's code ran: the task's or the sandbox's failure (a
                # task reading files the confined process may not), not the candidate's.
                self.findings.append("process control skipped: the task's own Model could not be built in the "
                                     "candidate's confined process before its code ran: " + S.tail(str(why), 300))

    def _first_call(self, cand: Worker, loaded: Future[None], s: InputSet,
                    got: tuple[dict[str, Any], list[bytes]] | None) -> None:
        """Stage the warm-up set in the candidate and call it once, unchecked (after its load).

        `got` None: the candidate's worker makes the set itself; where that fails, the set is
        left to the relay (this thread must not use the reference's channel) and the warm-up
        call is skipped."""
        if loaded.exception() is not None:
            return  # the load's own failure is the verdict
        if got is not None:
            self._stage(cand, s, *got)
        elif not self._candidate_makes(cand, s):
            return
        self.prestaged.add(s.set_id)
        reply, _, _ = cand.request(P.SetRequest(op=P.Op.WARM, set_id=s.set_id), timeout=self.opts.call_timeout_s)
        if reply.get("status") != P.Status.OK:
            raise Rejected(Check.CRASH, f"the candidate raised on its first call ({s.distribution} inputs, "
                           "an unchecked warm-up): " + S.tail(reply.get("error", ""), 800))
