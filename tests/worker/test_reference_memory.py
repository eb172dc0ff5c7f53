"""What the reference worker holds between its ops (issue 14: KernelBench's level1/38, 39 and 45
ran the H200 out of memory while a deferred set was made). The calibration no-op's output is
kept as shapes until the no-op first runs, not as the task's output; an out-of-memory error
while making a set says what the worker held."""

from __future__ import annotations

import torch

from kernelwright import protocol as P
from kernelwright.worker.reference import ReferenceWorker

TASK = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return torch.relu(x), x.sum()


def get_inputs():
    return [torch.randn(64, 32)]


def get_init_inputs():
    return []
"""


def _loaded(tmp_path, task: str = TASK) -> ReferenceWorker:
    path = tmp_path / "task.py"
    path.write_text(task)
    w = ReferenceWorker([])
    w.op_setup(P.SetupRequest(op=P.Op.SETUP, device="cpu", threads=1), [])
    w.op_load(P.LoadReferenceRequest(op=P.Op.LOAD, source=task, path=str(path), weight_seed=1, eval_mode=False), [])
    return w


def _make(w: ReferenceWorker, set_id: int) -> dict:
    reply, _ = w.op_make_set(P.MakeSetRequest(op=P.Op.MAKE_SET, set_id=set_id, seed=5 + set_id, distribution="task",
                                              variant=None, reference=True, float64=True, hold_bytes=0,
                                              memory_bytes=0, room_bytes=0, fingerprint=False, rtol=None, atol=None,
                                              degenerate=True), [])
    return reply


def test_the_noop_output_is_made_on_its_first_call_not_kept_from_the_first_set(tmp_path):
    w = _loaded(tmp_path)
    _make(w, 0)
    assert w.h.noop_out is None  # no tensor of the task's output size held through the sets
    assert all(t.device.type == "meta" for t in w.h.noop_like)
    out = w.h.noop(*w.h.sets[0])
    assert [t.shape for t in out] == [torch.Size([64, 32]), torch.Size([])]
    assert [t.dtype for t in out] == [torch.float32, torch.float32] and all(t.device.type == "cpu" for t in out)
    assert w.h.noop(*w.h.sets[0]) is out  # made once, then the same object every call


def test_an_out_of_memory_error_while_making_a_set_says_what_the_worker_held(tmp_path, monkeypatch):
    w = _loaded(tmp_path)
    _make(w, 0)
    _make(w, 1)

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB. If reserved but unallocated...")

    monkeypatch.setattr(w, "_references", oom)
    try:
        _make(w, 2)
    except torch.OutOfMemoryError as exc:
        msg = str(exc)
    else:
        raise AssertionError("no error")
    assert msg.startswith("the reference worker held inputs of sets [0, 1, 2]"), msg
    assert "references of sets [0, 1]" in msg and "Tried to allocate 8.00 GiB" in msg, msg
    assert "If reserved" not in msg


def test_an_output_handed_over_in_gpu_memory_is_freed_once_compared_without_the_garbage_collector(monkeypatch):
    # The copies of a candidate's output (made from its IPC handles) must die with the last name
    # for them: a reference cycle kept each compared output alive on the H200 until the collector
    # ran, 8 GiB a trial on KernelBench's level1/38, and the reference ran out of memory.
    import gc
    import weakref

    from kernelwright.sandbox import codec
    from kernelwright.worker import cuda_ipc
    from kernelwright.worker import reference as R

    made: list[weakref.ref] = []

    def copy_in(records, metas):
        out = [torch.zeros(m.shape, dtype=m.dtype) for m in metas]
        made.extend(weakref.ref(t) for t in out)
        return out

    monkeypatch.setattr(cuda_ipc, "copy_in", copy_in)
    blobs: list[bytes] = []
    spec = codec.encode((torch.ones(3, 2), [torch.ones(4), 7]), blobs)
    gc.disable()
    try:
        out = R._handed_over(spec, [{}, {}])
        assert isinstance(out, tuple) and out[0].shape == (3, 2) and out[1][0].shape == (4,) and out[1][1] == 7
        del out
        assert len(made) == 2 and all(r() is None for r in made)
    finally:
        gc.enable()


MATMUL = TASK.replace("return torch.relu(x), x.sum()", "return self.fc(x).relu()").replace(
    "class Model(nn.Module):\n", "class Model(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.fc = nn.Linear(32, 48)\n\n")


def test_flops_are_counted_on_a_real_call_on_a_copy_of_the_set(tmp_path, monkeypatch):
    # The report's roofline needs every accepted kernel's FLOP floor. A real call, not meta
    # copies: meta kernels written in Python import Dynamo on first use (5-7 s on the H200 host).
    w = _loaded(tmp_path, MATMUL)
    _make(w, 0)
    staged = w.h.sets[0][0]
    ran = []
    monkeypatch.setattr(w, "model", _Recording(w.model, ran))
    reply, _ = w.op_flops(P.SetRequest(op=P.Op.FLOPS, set_id=0), [])
    assert reply["flops"] == 2 * 64 * 32 * 48
    assert ran == ["cpu"] and w.h.sets[0][0] is staged


def test_flops_of_a_call_that_fails_here_are_counted_on_meta_copies(tmp_path, monkeypatch):
    w = _loaded(tmp_path, MATMUL)
    _make(w, 0)
    ran = []
    monkeypatch.setattr(w, "model", _Recording(w.model, ran, fail_on="cpu"))
    reply, _ = w.op_flops(P.SetRequest(op=P.Op.FLOPS, set_id=0), [])
    assert reply["flops"] == 2 * 64 * 32 * 48
    assert ran == ["cpu", "meta"]


class _Recording(torch.nn.Module):
    """The model, noting the device of each call's input."""

    def __init__(self, inner: torch.nn.Module, ran: list, fail_on: str = "") -> None:
        super().__init__()
        self.inner = inner
        self.fail_on = fail_on
        type(self).ran = ran  # a class attribute: the judge's deepcopy of the model shares it

    def forward(self, x):
        self.ran.append(x.device.type)
        if x.device.type == self.fail_on:
            raise torch.OutOfMemoryError("no room for the call here")
        return self.inner(x)


THREADS_TASK = """
import torch
import torch.nn as nn


class Model(nn.Module):
    def forward(self, x):
        return x * 0 + torch.get_num_threads()


def get_inputs():
    return [torch.randn(4)]


def get_init_inputs():
    return []
"""


def test_untimed_requests_leave_a_core_to_the_candidates_build_and_timed_ones_do_not(tmp_path):
    """On the CPU, making sets and comparing run with one thread fewer than the verdict's (the
    candidate's worker builds beside them); timed calls keep the verdict's count."""
    before = torch.get_num_threads()
    try:
        path = tmp_path / "task.py"
        path.write_text(THREADS_TASK)
        w = ReferenceWorker([])
        w.handle(P.SetupRequest(op=P.Op.SETUP, device="cpu", threads=2), [])
        w.handle(P.LoadReferenceRequest(op=P.Op.LOAD, source=THREADS_TASK, path=str(path), weight_seed=1,
                                        eval_mode=False), [])
        seen: list[int] = []
        w.targets[P.Target.EAGER] = lambda *a: seen.append(torch.get_num_threads())
        w.handle(P.MakeSetRequest(op=P.Op.MAKE_SET, set_id=0, seed=5, distribution="task", variant=None,
                                  reference=True, float64=False, hold_bytes=0, memory_bytes=0, room_bytes=0,
                                  fingerprint=False, rtol=None, atol=None, degenerate=False), [])
        native, _ = w.refs[0]
        assert float(native[0]) == 1.0  # the set's reference was made with one thread of two
        w.handle(P.TimeRequest(op=P.Op.TIME, target=P.Target.EAGER, set_ids=[0, 0], snap=False, seed=None), [])
        assert seen and set(seen) == {2}  # timed: the verdict's two
        assert torch.get_num_threads() == 2  # put back after every untimed request
    finally:
        torch.set_num_threads(before)


def test_reset_forgets_the_verdict_and_the_next_load_starts_afresh(tmp_path):
    w = _loaded(tmp_path)
    _make(w, 0)
    w.targets[P.Target.COMPILED] = lambda *a: None
    w.handle(P.BareRequest(op=P.Op.RESET), [])
    assert w.refs == {} and set(w.h.sets) == {-1}  # the worker's own set stays
    assert set(w.targets) == {P.Target.NOOP} and not hasattr(w, "model")
    assert w.h.noop_like is None
    w.op_load(P.LoadReferenceRequest(op=P.Op.LOAD, source=TASK, path=str(tmp_path / "task.py"), weight_seed=2,
                                     eval_mode=False), [])
    assert _make(w, 0)["has_ref64"]
