"""The roofline floors and the kernel profile: what the device allows, and what ran (trusted side)."""

from __future__ import annotations

import hashlib

import torch

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright import compare as cmp
from kernelwright.judge import kernels, roofline
from kernelwright.judge.phases.state import JudgementState
from kernelwright.sandbox.process import Worker

_FLOPS: dict[tuple[str, str], int] = {}  # (task source hash, device) -> FLOPs of one call


class FloorsPhase(JudgementState):
    """Bytes and FLOP floors against the measured ceilings; the profile's findings."""

    def _floor(self, ref: Worker, speedup: float | None) -> tuple[float | None, float | None]:
        """(bytes floor, FLOP floor) in ms. Counting FLOPs costs seconds (the FLOP counter's
        imports) and only feeds a finding, so it runs only for clearly faster candidates."""
        s0 = self.sets[self._warm_set()]
        key = roofline.cache_key(self.env)
        ceilings = self.ceilings.get(key)
        if ceilings is None:
            ceilings, _ = self._ref_request(ref, P.BareRequest(op=P.Op.CEILINGS), timeout=600)
            ceilings = {k: v for k, v in ceilings.items() if not k.startswith("_") and k != "status"}
            self.ceilings.put(key, ceilings)
        flops = 0
        if speedup is not None and speedup >= C.FLOP_CHECK_MIN_SPEEDUP:
            # A property of the task at its default shapes, not of the candidate: counted once
            # per task and device in this process (a search judges one task many times).
            key = (hashlib.sha256(self.task.source.encode()).hexdigest(), self.device)
            if key not in _FLOPS:
                reply, _ = self._ref_request(ref, P.SetRequest(op=P.Op.FLOPS, set_id=s0.set_id))
                _FLOPS[key] = int(reply.get("flops", 0))
            flops = _FLOPS[key]
        out_leaves = [t for t in cmp.leaves(s0.outputs) if isinstance(t, torch.Tensor)]
        moved = s0.nbytes + sum(t.numel() * t.element_size() for t in out_leaves)
        dtype = str(out_leaves[0].dtype).removeprefix("torch.") if out_leaves else "float32"
        return roofline.floor_ms(moved, flops, dtype, ceilings, self.cuda)

    def _profile(self, cand: Worker) -> None:
        reply, _, _ = cand.request(P.SetRequest(op=P.Op.PROFILE, set_id=self._warm_set()),
                                   timeout=self.opts.call_timeout_s)
        if reply.get("status") == P.Status.OK:
            rows = reply.get("rows", [])
            self.findings += kernels.findings(rows, self.cuda)
            if self.cuda:
                rows = [r for r in rows if isinstance(r, dict)]
                busy = [float(r.get("self_us", 0.0)) for r in rows if r.get("kind") == "busy"]
                # The union of the kernels' intervals: honest work on streams that run side by
                # side is not charged twice. Without interval data, the per-kernel sums.
                self.profiled_kernel_ms = (busy[0] if busy else sum(
                    float(r.get("self_us", 0.0)) for r in rows if r.get("kind") == "kernel")) / 1e3
        else:
            self.findings.append("profiling failed: " + S.tail(reply.get("error", ""), 200))
