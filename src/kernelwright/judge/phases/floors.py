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
from kernelwright.judge.timing import host_factor, idle_share
from kernelwright.sandbox.process import Worker

_FLOPS: dict[tuple[str, str], int] = {}  # (task source hash, device) -> FLOPs of one call


class FloorsPhase(JudgementState):
    """Bytes and FLOP floors against the measured ceilings; the profile's findings."""

    def _ceilings(self, ref: Worker) -> dict:
        """This device's measured ceilings (bandwidth, matmul rates), measured once and cached."""
        key = roofline.cache_key(self.env)
        ceilings = self.ceilings.get(key)
        if ceilings is None:
            ceilings, _ = self._ref_request(ref, P.BareRequest(op=P.Op.CEILINGS), timeout=600)
            ceilings = {k: v for k, v in ceilings.items() if not k.startswith("_") and k != "status"}
            self.ceilings.put(key, ceilings)
        return ceilings

    def _warm_outputs(self) -> tuple[list[torch.Tensor], str]:
        """The warm-up set's output tensors (shapes only) and the first one's dtype name."""
        s0 = self.sets[self._warm_set()]
        out_leaves = [t for t in cmp.leaves(s0.outputs) if isinstance(t, torch.Tensor)]
        return out_leaves, str(out_leaves[0].dtype).removeprefix("torch.") if out_leaves else "float32"

    def _warm_bytes(self) -> int:
        """Bytes of one call's inputs and outputs (the warm-up set's)."""
        out_leaves, _ = self._warm_outputs()
        return self.sets[self._warm_set()].nbytes + sum(t.numel() * t.element_size() for t in out_leaves)

    def _floor(self, ref: Worker) -> float | None:
        """The bytes floor in ms: the warm-up set's inputs and outputs over the measured bandwidth."""
        _, dtype = self._warm_outputs()
        return roofline.floor_ms(self._warm_bytes(), 0, dtype, self._ceilings(ref), self.cuda)[0]

    def _flop_floor(self, ref: Worker) -> float | None:
        """The FLOP floor in ms: the reference's FLOPs (counted on meta copies, once per task and
        device in this process: a search judges one task many times) over the matmul rate."""
        key = (hashlib.sha256(self.task.source.encode()).hexdigest(), self.device)
        if key not in _FLOPS:
            reply, _ = self._ref_request(ref, P.SetRequest(op=P.Op.FLOPS, set_id=self._warm_set()))
            _FLOPS[key] = int(reply.get("flops", 0))
        _, dtype = self._warm_outputs()
        return roofline.floor_ms(0, _FLOPS[key], dtype, self._ceilings(ref), self.cuda)[1]

    def _profile(self, cand: Worker) -> None:
        reply, _, _ = cand.request(P.SetRequest(op=P.Op.PROFILE, set_id=self._warm_set()),
                                   timeout=self.opts.call_timeout_s)
        if reply.get("status") == P.Status.OK:
            rows = reply.get("rows", [])
            self.findings += kernels.findings(rows, self.cuda)
            if self.cuda:
                self.profiled_kernel_ms, self.profiled_kernels = busy_of(rows)
        else:
            self.findings.append("profiling failed: " + S.tail(reply.get("error", ""), 200))

    def _host_factor(self, ref: Worker, cand_ms: float, eager_ms: float) -> tuple[float, float]:
        """CUDA: how much further the intervals would widen because either side's calls are
        host-bound (`timing.host_factor`), and the larger idle share it came from.

        The eager call is profiled here, in the reference's worker (trusted); the candidate's
        busy time is its own profile's, and a candidate that overstated it past its charged
        time would be rejected by the profile bound, so it can at most hide its own idle share.
        """
        shares = [idle_share(cand_ms, self.profiled_kernel_ms, self.profiled_kernels)]
        reply, _, _ = ref.request(P.SetRequest(op=P.Op.PROFILE, set_id=self._warm_set()),
                                  timeout=self.opts.call_timeout_s)
        if reply.get("status") == P.Status.OK:
            busy, count = busy_of(reply.get("rows", []))
            shares.append(idle_share(eager_ms, busy, count))
        return host_factor(shares), max(shares)


def busy_of(rows: list) -> tuple[float | None, int]:
    """From a CUDA profile's rows: ms the device was busy in the call, and how many kernels ran.

    The union of the kernels' intervals: honest work on streams that run side by side is not
    charged twice. Without interval data, the per-kernel sums.
    """
    rows = [r for r in rows if isinstance(r, dict)]
    kernels = [r for r in rows if r.get("kind") == "kernel"]
    busy = [float(r.get("self_us", 0.0)) for r in rows if r.get("kind") == "busy"]
    total = busy[0] if busy else sum(float(r.get("self_us", 0.0)) for r in kernels)
    return (total / 1e3 if kernels or busy else None), sum(int(r.get("count", 1)) for r in kernels)
