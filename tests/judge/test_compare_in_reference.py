"""The comparison runs in the reference worker (Op.COMPARE): no reference output crosses to the
judge, and what a comparison finds comes back as a CompareReply under the judge's tolerance."""

from __future__ import annotations

import torch

from kernelwright import protocol as P
from kernelwright.sandbox import codec
from kernelwright.sandbox.process import SandboxConfig, Worker
from kernelwright.worker.harness import sample_tree
from tests.conftest import TASKS

TASK = TASKS / "gelu_mul.py"


def _reference() -> Worker:
    w = Worker(P.Role.REFERENCE, SandboxConfig(threads=1))
    reply, _, _ = w.request(P.SetupRequest(op=P.Op.SETUP, device="cpu", threads=1), timeout=120)
    assert reply["status"] == P.Status.OK
    reply, _, _ = w.request(P.LoadReferenceRequest(op=P.Op.LOAD, source=TASK.read_text(), path=str(TASK),
                                                   weight_seed=1, eval_mode=False), timeout=120)
    assert reply["status"] == P.Status.OK, reply
    return w


def _make_set(w: Worker, set_id: int) -> tuple[dict, list[bytes]]:
    return w.request(P.MakeSetRequest(op=P.Op.MAKE_SET, set_id=set_id, seed=1234 + set_id, distribution="task",
                                      variant=None, reference=True, float64=True, hold_bytes=0, memory_bytes=0,
                                      fingerprint=False, rtol=None, atol=None, degenerate=True), timeout=120)[:2]


def _compare(w: Worker, set_id: int, out: object, drop: bool = False, **extra: object) -> dict:
    blobs: list[bytes] = []
    spec = codec.encode(out, blobs)
    req = P.CompareRequest(op=P.Op.COMPARE, set_id=set_id, out=spec, rtol=None, atol=None, slack=[1.0],
                           device="cpu", drop=drop)
    req.update(extra)  # type: ignore[typeddict-item]
    return w.request(req, blobs, timeout=120)[0]


def _true_output(w: Worker, set_id: int) -> torch.Tensor:
    reply, blobs, _ = w.request(P.DropSetRequest(op=P.Op.INPUTS, set_id=set_id, drop=False), timeout=120)
    (x,) = codec.decode(reply["inputs"], blobs)
    return torch.nn.functional.gelu(x * 2 + 1) * torch.sigmoid(x)


def test_a_set_is_made_without_sending_any_reference_output():
    w = _reference()
    try:
        reply, blobs = _make_set(w, 0)
        assert reply["status"] == P.Status.OK, reply
        assert blobs == []  # no byte of any output crossed
        outs = codec.decode_meta(reply["outputs"])
        assert outs.is_meta and tuple(outs.shape) == (61, 1531) and outs.dtype == torch.float32
        assert reply["has_ref64"] and reply["out_bytes"] == 61 * 1531 * 4
        # Folded: the float64 reference alone is held, the native copy's NaN/Inf written into it.
        assert reply["held_bytes"] == 61 * 1531 * 8
        assert reply["slack"] and reply["slack"][0] >= 1.0 and reply["zeros_pass"] is False
    finally:
        w.close()


def test_the_reference_worker_compares_and_names_what_it_found():
    w = _reference()
    try:
        for i in range(2):
            assert _make_set(w, i)[0]["status"] == P.Status.OK
        good = _true_output(w, 0)
        ok = _compare(w, 0, good)
        assert ok["status"] == P.Status.OK and ok["passed"] and ok["check"] is None, ok
        assert ok["max_rel_error"] < 1e-6
        wrong = good.clone()
        wrong[7, 9] += 1.0
        bad = _compare(w, 0, wrong)
        assert not bad["passed"] and bad["check"] == P.Check.MISMATCH and "first at (7, 9)" in bad["detail"], bad
        shape = _compare(w, 0, good[:60])
        assert not shape["passed"] and shape["check"] == P.Check.SHAPE, shape
        dtype = _compare(w, 0, good.double())
        assert not dtype["passed"] and dtype["check"] == P.Check.DTYPE, dtype
        # Data from the adversary is decoded without pickle: a malformed tree is named, not raised.
        garbled = w.request(P.CompareRequest(op=P.Op.COMPARE, set_id=0, out={"k": "tensor", "dtype": "float32",
                                                                             "shape": [61, 1531], "blob": 5},
                                             rtol=None, atol=None, slack=[1.0], device="cpu", drop=False), [],
                            timeout=60)[0]
        assert not garbled["passed"] and garbled["check"] == P.Check.PROTOCOL, garbled
        # The degenerate-task check asks the worker how much two sets' references differ.
        dep = w.request(P.DependenceRequest(op=P.Op.DEPENDENCE, set_ids=[0, 1]), timeout=60)[0]
        assert dep["change"] > 0.1
        # Dropped once compared: the set's references are gone from the worker.
        assert _compare(w, 1, _true_output(w, 1), drop=True)["passed"]
        assert _compare(w, 1, _true_output(w, 1))["status"] == P.Status.ERROR
        # Forgotten: the references go, the inputs stay staged.
        assert w.request(P.ForgetRequest(op=P.Op.FORGET, set_ids=[0]), timeout=60)[0]["status"] == P.Status.OK
        assert _compare(w, 0, good)["status"] == P.Status.ERROR
        assert _true_output(w, 0).shape == good.shape
    finally:
        w.close()


def test_the_timing_sets_references_are_forgotten_after_the_degenerate_check(monkeypatch, judge):
    """Timed calls are checked against references of their perturbed inputs, made then: the timing
    sets' own references are dropped once the degenerate check has read them."""
    from kernelwright.judge.phases.state import JudgementState

    ops: list[tuple[str, list[int], bool]] = []
    real = JudgementState._ref_request

    def spy(self, ref, header, blobs=None, timeout=None):
        ops.append((str(header["op"]), list(header.get("set_ids") or [header.get("set_id", -1)]),
                    header.get("seed") is not None))
        return real(self, ref, header, blobs, timeout)

    monkeypatch.setattr(JudgementState, "_ref_request", spy)
    result = judge("gelu_mul", (TASKS.parent / "candidates" / "gelu_mul_torch.py").read_text())
    assert result.accepted, result.reasons
    names = [op for op, _, _ in ops]
    at = names.index("forget")
    assert at > names.index("dependence")
    forgotten = set(ops[at][1])
    assert forgotten and forgotten <= {ids[0] for op, ids, _ in ops if op == "make_set"}
    # Checked after that only as timed outputs, against references made for their perturbed inputs.
    later = [seeded for op, ids, seeded in ops[at + 1:] if op == "compare" and ids[0] in forgotten]
    assert all(later)


def test_a_sampled_output_is_compared_at_the_same_positions():
    w = _reference()
    try:
        _make_set(w, 0)
        x = _true_output(w, 0)
        seed = 99
        good = sample_tree(x, seed, 500)
        assert tuple(good.shape) == (500,)
        # Both workers draw the same positions from the seed (a fresh draw, same answer).
        assert torch.equal(good, sample_tree(x.clone(), seed, 500))
        assert not torch.equal(good, sample_tree(x, seed + 1, 500))
        sampled = dict(seed=0, index=0, sample_seed=seed, sample_elements=500, shapes=[[61, 1531]])
        # seed=0, index=0: the reference is made on the set as perturbed for that timed call, so
        # the honest sample is taken from an honest output of those perturbed inputs.
        from kernelwright.worker.harness import perturb

        reply, blobs, _ = w.request(P.DropSetRequest(op=P.Op.INPUTS, set_id=0, drop=False), timeout=60)
        (inp,) = codec.decode(reply["inputs"], blobs)
        inp = inp.clone()
        perturb([inp], 0, 0)
        honest = sample_tree(torch.nn.functional.gelu(inp * 2 + 1) * torch.sigmoid(inp), seed, 500)
        assert _compare(w, 0, honest, **sampled)["passed"]
        # One row of 61 left undone: about 8 of the 500 positions land on it.
        lazy = torch.nn.functional.gelu(inp * 2 + 1) * torch.sigmoid(inp)
        lazy[60] = 0
        found = _compare(w, 0, sample_tree(lazy, seed, 500), **sampled)
        assert not found["passed"] and found["check"] == P.Check.MISMATCH, found
        # The whole output's shape is checked from what the worker says it was.
        lied = _compare(w, 0, honest, **dict(sampled, shapes=[[60, 1531]]))
        assert not lied["passed"] and lied["check"] == P.Check.SHAPE, lied
    finally:
        w.close()


def test_the_race_bar_starts_from_what_the_task_itself_leaves_pending():
    from kernelwright import constants as C
    from kernelwright.judge._support import RaceBars

    assert RaceBars.of([], []) == RaceBars(C.RACE_PENDING_MS, None)  # the CPU, or no reading
    assert RaceBars.of([0.06, 0.053, 0.072], []).host_ms == C.RACE_PENDING_MS + 0.06  # the median, not the largest
    assert RaceBars.of([-1.0], [-1.0]) == RaceBars(C.RACE_PENDING_MS, C.RACE_PROBE_MS)  # never lowered
