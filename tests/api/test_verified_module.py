"""VerifiedModule runs the kernel only where it was verified; elsewhere it raises or falls back."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn

from kernelwright.api import (
    KernelFallbackWarning,
    KernelRejectedError,
    KernelResult,
    UnverifiedInputError,
    VerifiedModule,
)
from kernelwright.api._results import Fallback
from kernelwright.api._signature import signature_of
from kernelwright.judge.result import Reason


class Kernel(nn.Module):
    """Stands in for a verified kernel: records what it was called with."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x, alpha):
        self.calls.append((x.is_contiguous(), torch.is_grad_enabled()))
        return x * alpha


class Original(nn.Module):
    def forward(self, x, alpha):
        return x * alpha + 1000.0


def _module(fallback: Fallback) -> VerifiedModule:
    sigs = [signature_of((torch.randn(4, 6), 0.5)), signature_of((torch.randn(2, 6), 0.5))]
    return VerifiedModule(Kernel(), Original(), [s for s in sigs if s is not None], fallback, "kernel.py")


def test_verified_inputs_run_the_kernel_without_grad_on_contiguous_tensors():
    m = _module("error")
    x = torch.randn(6, 4).t()  # verified shape, not contiguous
    assert torch.equal(m(x, 0.5), x * 0.5)
    assert torch.equal(m(torch.ones(2, 6), 0.5), torch.full((2, 6), 0.5))
    assert m.kernel.calls == [(True, False), (True, False)]
    assert "fallback='error'" in repr(m) and m.original is not None
    assert all(not k.startswith("original") for k in m.state_dict())  # the caller's module is not ours


@pytest.mark.parametrize("args, kwargs, words", [
    ((torch.randn(4, 6, dtype=torch.float64), 0.5), {}, "float64[4, 6] on cpu, 0.5) were not verified"),
    ((torch.randn(3, 6), 0.5), {}, "float32[3, 6]"),
    ((torch.randn(4, 6, 1), 0.5), {}, "float32[4, 6, 1]"),
    ((torch.randn(4, 6), 0.25), {}, "0.25) were not verified"),
    ((torch.randn(4, 6), 1), {}, "1) were not verified"),  # an int where a float was verified
    ((torch.randn(4, 6),), {"alpha": 0.5}, "keyword arguments (alpha)"),
    ((torch.randn(4, 6), object()), {}, "an argument of type object"),
    ((torch.randn(4, 6, requires_grad=True), 0.5), {}, "gradients were not verified"),
])
def test_unverified_calls_raise(args, kwargs, words):
    m = _module("error")
    with pytest.raises(UnverifiedInputError) as info:
        m(*args, **kwargs)
    assert words in str(info.value) and "verified only on (float32[4, 6] on cpu, 0.5)" in str(info.value)
    assert isinstance(info.value, ValueError) and m.kernel.calls == []


def test_grad_free_calls_on_grad_inputs_are_verified():
    m = _module("error")
    with torch.no_grad():
        m(torch.randn(4, 6, requires_grad=True), 0.5)
    assert len(m.kernel.calls) == 1


def test_fallback_runs_the_original_and_warns_once_per_kind_of_call():
    m = _module("original")
    x = torch.randn(4, 6, dtype=torch.float64)
    with pytest.warns(KernelFallbackWarning, match="running the original module"):
        assert torch.equal(m(x, 0.5), x * 0.5 + 1000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same kind of call again: no second warning
        m(x, 0.5)
        assert torch.equal(m(torch.ones(4, 6), 0.5), torch.full((4, 6), 0.5))  # verified: the kernel
    assert m.fallback_calls == 2 and len(m.kernel.calls) == 1


def test_bad_fallback_choices():
    with pytest.raises(ValueError, match="fallback"):
        VerifiedModule(Kernel(), Original(), [], "maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="original module"):
        VerifiedModule(Kernel(), None, [], "original")


def test_a_rejected_result_has_no_module_and_serialises():
    import json

    result = KernelResult(verdict="rejected", reasons=(Reason("mismatch", "trial 0: off by 1%"),))
    with pytest.raises(KernelRejectedError, match="mismatch: trial 0: off by 1%"):
        result.module  # noqa: B018
    with pytest.raises(KernelRejectedError):
        result.build_module(fallback="original")
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["reasons"][0]["check"] == "mismatch"
