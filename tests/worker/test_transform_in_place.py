"""A set's distribution transform writes into the set's own tensors on the GPU when nothing else
refers to them: a transformed copy would double a 16 GiB set's footprint while it is made
(KernelBench's level1/45), in both workers at once. Anything a task could still see gets a copy.

The CPU stands in for the GPU here (`is_cuda` patched): CPU tensors are never written in place,
as one may share memory with a NumPy array that no reference count shows."""

from __future__ import annotations

import pytest
import torch

from kernelwright.worker import inputs as I

DISTS = ["shifted", "scaled", "positive"]


@pytest.fixture
def gpu_like(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))


@pytest.mark.parametrize("dist", DISTS)
def test_a_fresh_set_is_transformed_in_place_to_the_same_bits(gpu_like: None, dist: str) -> None:
    made: list[int] = []

    def get_inputs() -> list[torch.Tensor]:
        x = torch.randn(64, 33)
        made.append(x.data_ptr())
        return [x, torch.randint(0, 9, (5,))]

    got = I.make_inputs(get_inputs, {}, 3, dist, None)
    assert got[0].data_ptr() == made[0]  # written into the set's own tensor
    torch.manual_seed(3)
    want = I.transform(torch.randn(64, 33), dist)
    assert torch.equal(got[0].view(torch.int32), want.view(torch.int32))  # bit for bit


def test_nothing_a_task_can_still_see_is_written(gpu_like: None) -> None:
    kept = torch.ones(8)
    base = torch.ones(16)
    shared_list = [torch.ones(8)]
    twice = torch.ones(8)
    cases = {
        "a module-level tensor": lambda: [kept],
        "a view of one": lambda: [base[:8]],
        "a module-level list": lambda: shared_list,
        "one tensor twice": lambda: [twice, twice],
        "a tensor that needs grad": lambda: [torch.ones(8, requires_grad=True)],
    }
    for name, get_inputs in cases.items():
        got = I.make_inputs(get_inputs, {}, 1, "shifted", None)
        assert all(torch.equal(t.detach(), torch.ones(8) + I.C.SHIFT) for t in got), name
    assert torch.equal(kept, torch.ones(8)) and torch.equal(base, torch.ones(16))
    assert torch.equal(shared_list[0], torch.ones(8)) and torch.equal(twice, torch.ones(8))
    # The same task asked again makes the same set: nothing compounded.
    assert torch.equal(I.make_inputs(cases["a module-level tensor"], {}, 1, "shifted", None)[0],
                       torch.ones(8) + I.C.SHIFT)


def test_cpu_tensors_are_copied() -> None:
    made: list[int] = []

    def get_inputs() -> list[torch.Tensor]:
        x = torch.randn(32)
        made.append(x.data_ptr())
        return [x]

    assert I.make_inputs(get_inputs, {}, 2, "scaled", None)[0].data_ptr() != made[0]
