"""An nn.Module becomes a task the judge can rebuild; what cannot be converted is a clear error.

None of these start the judge: each takes a second or less.
"""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn

from kernelwright.api import ConversionError
from kernelwright.api._convert import module_task
from kernelwright.task.loader import InputError, load_task
from tests.api.modules import ScaleShift


def _exec(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"kw_api_task_{abs(hash(str(path)))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _inputs(task: types.ModuleType, seed: int) -> list[Any]:
    torch.manual_seed(seed)
    return list(task.get_inputs())


class Mixed(nn.Module):
    """Weights, a buffer, and every kind of argument a converted module takes."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(8, 4)
        self.register_buffer("scale", torch.full((4,), 2.0))

    def forward(self, x, idx, mask, alpha, flag, dims):
        y = self.lin(x) * self.scale * alpha + idx.float().mean() + mask.float().sum()
        return (y.sum(dims) if flag else y), y.abs()


def test_module_with_weights_and_value_arguments_becomes_a_task():
    module = Mixed()
    example = (torch.randn(64, 8) * 5 + 2, torch.randint(3, 9, (64,)), torch.arange(256).reshape(64, 4) % 3 == 0,
               0.5, True, (0,))
    task = module_task(module, example)
    assert task.path.name == "mixed.py" and (task.path.parent / "program.pt2").is_file()
    assert task.device == "cpu"
    assert task.signature.describe() == ("(float32[64, 8] on cpu, int64[64] on cpu, bool[64, 4] on cpu, 0.5, True, (0,))")
    assert module_task(module, example).path == task.path  # content-addressed: same module, same task
    parsed = load_task(task.path)  # what the judge reads statically
    assert parsed.signature.init == () and parsed.signature.forward == ("x", "idx", "mask", "alpha", "flag", "dims")
    text = task.path.read_text()
    assert "class Mixed(nn.Module)" in text and "torch.ops.aten.linear" in text and "lin.weight: float32[4, 8]" in text

    t = _exec(task.path)
    assert t.get_init_inputs() == []
    model = t.Model()
    # The module's own state_dict names, so the judge copies the real weights into ModelNew by name.
    assert set(model.state_dict()) == set(module.state_dict())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in module.state_dict().items())

    a, b, a_again = _inputs(t, 1), _inputs(t, 2), _inputs(t, 1)
    for x, y, z, e in zip(a, b, a_again, example):
        if isinstance(e, torch.Tensor):
            assert (x.shape, x.dtype, x.device) == (e.shape, e.dtype, e.device)
            assert torch.equal(x, z)  # the judge's seeds decide the values
        else:
            assert x == e and y == e  # non-tensor arguments pass unchanged
    assert not torch.equal(a[0], b[0]) and not torch.equal(a[2], b[2])
    both = torch.cat([a[0], b[0]])  # like the example: mean 2, standard deviation 5
    assert 1.0 < float(both.mean()) < 3.0 and 4.0 < float(both.std()) < 6.0
    assert all(3 <= int(v) <= 8 for v in torch.cat([a[1], b[1]]))  # the example's observed range
    with torch.no_grad():
        for got, want in zip(model(*a), module(*a)):
            torch.testing.assert_close(got, want)


def test_nonnegative_inputs_stay_nonnegative_and_weights_change_the_task():
    class Sqrt(nn.Module):
        def forward(self, x):
            return torch.sqrt(x)

    task = module_task(Sqrt(), (torch.rand(64, 64) * 4,))
    t = _exec(task.path)
    x = torch.cat([_inputs(t, s)[0] for s in range(3)])
    assert float(x.min()) >= 0.0 and float(x.max()) <= 4.0

    # Same architecture, other weights: another task (the judge must not reuse the old weights).
    one, two = ScaleShift(), ScaleShift()
    example = (torch.randn(4, 257), 0.5)
    assert module_task(one, example).path != module_task(two, example).path


def test_metadata_is_written_for_the_judge():
    task = module_task(ScaleShift(), (torch.randn(4, 257), 0.5),
                       metadata={"exclude_distributions": ["shifted"], "rtol": 1e-3})
    meta = load_task(task.path).meta
    assert "shifted" not in meta.distributions and meta.rtol == 1e-3


class DataDependent(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x
        return -x


class ReturnsNumber(nn.Module):
    def forward(self, x):
        return x * 2, x.shape[0]


class MutatesInput(nn.Module):
    def forward(self, x):
        x.add_(1)
        return x * 2


class Random(nn.Module):
    def forward(self, x):
        return x + torch.rand_like(x)


@pytest.mark.parametrize("module, example, words", [
    (DataDependent(), (torch.randn(8),), "torch.export could not capture DataDependent"),
    (ReturnsNumber(), (torch.randn(8),), "returns a tuple holding int"),
    (MutatesInput(), (torch.randn(8),), "changes its input 0 in place"),
    (nn.BatchNorm1d(4), (torch.randn(8, 4),), "changes its own parameters or buffers"),
    (nn.Dropout(0.5), (torch.randn(64, 64),), "does not reproduce the module"),
    (Random(), (torch.randn(64),), "does not reproduce the module"),
    (ScaleShift(), (torch.randn(4, 257), {"alpha": 0.5}), "example input 1 is a dict"),
    (ScaleShift(), (torch.randn(4, 257), torch.tensor(0.5).to_sparse()), "layout"),
    (ScaleShift(), {"x": torch.randn(4, 257)}, "must be a tuple"),
])
def test_what_cannot_be_converted_is_a_clear_error(module, example, words):
    with pytest.raises(ConversionError) as info:
        module_task(module, example)
    assert isinstance(info.value, ValueError) and isinstance(info.value, InputError)
    assert words in str(info.value)
    assert "\n" not in str(info.value)  # one paragraph


def test_metadata_that_contradicts_the_export_is_refused():
    with pytest.raises(ConversionError, match="shapes"):
        module_task(ScaleShift(), (torch.randn(4, 257), 0.5), metadata={"shapes": [{"n": 3}]})
    with pytest.raises(ValueError, match="distributions"):
        module_task(ScaleShift(), (torch.randn(4, 257), 0.5), metadata={"distributions": ["nope"]})
