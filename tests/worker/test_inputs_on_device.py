"""Input sets made where they will be used: on the GPU when the task's get_inputs allows it
(KernelBench's level-1 sets are gigabytes of torch.rand), on the CPU otherwise. The `meta`
device stands in for the GPU here: it shows where tensors were made, and like the GPU it
refuses what only the CPU can do (`.item()`)."""

from __future__ import annotations

import types

import torch

from kernelwright.worker import inputs as I
from kernelwright.worker.reference import ReferenceWorker


def _plain() -> list[torch.Tensor]:
    return [torch.rand(4, 3), torch.randint(0, 5, (6,))]


def _cpu_only() -> list[torch.Tensor]:
    n = int(torch.randint(2, 5, ()).item())  # a data-dependent shape: needs real values
    return [torch.rand(n, 3)]


def test_device_context_makes_the_tasks_tensors_there() -> None:
    made = I.make_inputs(_plain, {}, seed=7, distribution="task", variant=None, device="meta")
    assert all(t.device.type == "meta" for t in made)
    cpu = I.make_inputs(_plain, {}, seed=7, distribution="task", variant=None)
    assert all(t.device.type == "cpu" for t in cpu)
    again = I.make_inputs(_plain, {}, seed=7, distribution="task", variant=None)
    assert all(torch.equal(a, b) for a, b in zip(cpu, again))  # one seed, one set


def _worker(get_inputs) -> ReferenceWorker:
    w = ReferenceWorker.__new__(ReferenceWorker)
    w.h = types.SimpleNamespace(cuda=True, device="meta")
    w.module = types.SimpleNamespace(get_inputs=get_inputs, __dict__={})
    w.inputs_on_device = None
    return w


def test_a_task_the_device_refuses_is_made_on_the_cpu_from_then_on() -> None:
    w = _worker(_cpu_only)
    first, on_device = w._make_inputs(3, "task", None)
    assert first[0].device.type == "cpu" and not on_device and w.inputs_on_device is False
    again, _ = w._make_inputs(3, "task", None)
    assert torch.equal(first[0], again[0])  # the same set from the same seed


def test_a_task_the_device_takes_stays_there() -> None:
    w = _worker(_plain)
    made, on_device = w._make_inputs(3, "task", None)
    assert all(t.device.type == "meta" for t in made) and on_device and w.inputs_on_device is True
