"""CUDA: a checked output handed to the reference worker in GPU memory (worker/cuda_ipc.py).

The reference worker takes a handle from the adversary: it must compare what the handle holds,
refuse claims outside the allocation, and report a handle it cannot open as a failed hand-over
(the judge then has the bytes sent), never as an error of the task."""

from __future__ import annotations

import pytest
import torch

from kernelwright import protocol as P
from kernelwright.sandbox import codec
from tests.conftest import CANDIDATES

pytestmark = pytest.mark.gpu


def _reference():
    from tests.judge.test_compare_in_reference import TASK
    from kernelwright.sandbox.process import SandboxConfig, Worker

    w = Worker(P.Role.REFERENCE, SandboxConfig(threads=1, cuda=True, drop_capabilities=False, confine=False))
    assert w.request(P.SetupRequest(op=P.Op.SETUP, device="cuda", threads=1), timeout=120)[0]["status"] == P.Status.OK
    reply = w.request(P.LoadReferenceRequest(op=P.Op.LOAD, source=TASK.read_text(), path=str(TASK), weight_seed=1,
                                             eval_mode=False), timeout=120)[0]
    assert reply["status"] == P.Status.OK and reply["device_free"] > 0, reply
    made = w.request(P.MakeSetRequest(op=P.Op.MAKE_SET, set_id=0, seed=7, distribution="task", variant=None,
                                      reference=True, float64=True, hold_bytes=0, memory_bytes=0, fingerprint=False,
                                      rtol=None, atol=None, degenerate=False), timeout=120)
    assert made[0]["status"] == P.Status.OK and made[1] == [], made[0]
    return w


def _compare(w, out: torch.Tensor, records: list) -> dict:
    return w.request(P.CompareRequest(op=P.Op.COMPARE, set_id=0, out=codec.encode_meta(out), rtol=None, atol=None,
                                      slack=[1.0], device="cuda", drop=False, ipc=records), [], timeout=120)[0]


def test_the_reference_worker_reads_a_handed_over_output_and_refuses_what_lies_outside_it():
    from kernelwright.worker import cuda_ipc

    w = _reference()
    try:
        reply, blobs, _ = w.request(P.DropSetRequest(op=P.Op.INPUTS, set_id=0, drop=False), timeout=60)
        (x,) = codec.decode(reply["inputs"], blobs)
        x = x.cuda()
        good = torch.nn.functional.gelu(x * 2 + 1) * torch.sigmoid(x)
        torch.cuda.synchronize()
        rec = cuda_ipc.export(good)
        ok = _compare(w, good, [rec])
        assert ok["status"] == P.Status.OK and ok["passed"], ok
        wrong = good.clone()
        wrong[3, 4] = 100.0
        torch.cuda.synchronize()
        bad = _compare(w, wrong, [cuda_ipc.export(wrong)])
        assert not bad["passed"] and bad["check"] == P.Check.MISMATCH, bad
        # Claims past the allocation's end: refused before any read.
        beyond = _compare(w, good, [dict(rec, offset=rec["offset"] + (1 << 40))])
        assert beyond["status"] == P.Status.OK and "claims" in beyond.get("ipc_failed", ""), beyond
        # A forged handle: a failed hand-over, not an error of the task.
        forged = _compare(w, good, [{"handle": "ab" * 64, "offset": 0}])
        assert forged["status"] == P.Status.OK and forged.get("ipc_failed"), forged
        short = _compare(w, good, [{"handle": "ab", "offset": 0}])
        assert short["status"] == P.Status.OK and short.get("ipc_failed"), short
        # The worker is still sound after all of that.
        assert _compare(w, good, [cuda_ipc.export(good)])["passed"]
    finally:
        w.close()


def test_a_verdict_on_cuda_hands_outputs_over_in_gpu_memory(judge):
    result = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", device="cuda", timing=False)
    assert result.accepted, result.reasons
    assert result.environment.get("output_handover") == "cuda ipc", (result.environment, result.findings)
    via_bytes = judge("gelu_mul", CANDIDATES / "gelu_mul_torch.py", device="cuda", timing=False, output_ipc=False)
    assert via_bytes.accepted and via_bytes.environment.get("output_handover") == "bytes"
    wrong = judge("gelu_mul", WRONG, device="cuda", timing=False)
    assert not wrong.accepted and wrong.checks == ["mismatch"], wrong.reasons
    assert wrong.environment.get("output_handover") == "cuda ipc"


WRONG = """
import torch
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def forward(self, x):
        y = F.gelu(x * 2 + 1) * torch.sigmoid(x)
        y[0, 0] += 1.0  # one element off
        return y
"""
