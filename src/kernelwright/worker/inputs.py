"""Input sets as the reference worker makes them: the task's own generator under a seed, shape
variants and distribution transforms. The seeds are secret: the judge draws them
(`judge._support.fresh_seed`) and sends them only to the trusted reference worker.
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch

from kernelwright import constants as C


def seed_everything(seed: int) -> None:
    """Seed torch, Python and (if present) NumPy from one value."""
    torch.manual_seed(seed)
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # pragma: no cover
        pass


def transform(x: Any, distribution: str) -> Any:
    """Apply a named distribution to a floating-point tensor; other values pass through.

    'shifted' and 'scaled' break kernels that assume zero-mean, unit-scale data
    (a softmax without max-subtraction, a hard-coded epsilon); 'positive' keeps
    log/sqrt-style tasks valid while changing the data.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return x
    if distribution == "task":
        return x
    if distribution == "shifted":
        return x + C.SHIFT
    if distribution == "scaled":
        return x * C.SCALE
    if distribution == "positive":
        return x.abs() + 0.1
    raise ValueError(f"unknown distribution {distribution!r}")


@contextmanager
def shape_globals(module_globals: dict[str, Any], variant: dict[str, Any] | None) -> Iterator[None]:
    """Override a task's module globals (batch_size, dim, ...) for one shape variant, then restore."""
    saved: dict[str, Any] = {}
    missing = object()
    try:
        for key, value in (variant or {}).items():
            saved[key] = module_globals.get(key, missing)
            module_globals[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is missing:
                module_globals.pop(key, None)
            else:
                module_globals[key] = value


def make_inputs(get_inputs: Callable[[], Any], module_globals: dict[str, Any], seed: int,
                distribution: str, variant: dict[str, Any] | None, device: str | None = None) -> list[Any]:
    """Call the task's get_inputs under a seed, with module globals overridden for a shape variant.

    With `device`, tensors the task makes without naming a device are made there (a
    `torch.device` context): KernelBench's level-1 sets are 6-13 GB of `torch.rand` that the
    CPU makes at about a GiB a second and then copies over. The same seed gives the same
    inputs on the same device, so a set made again from its seed is the same set.
    """
    with shape_globals(module_globals, variant):
        seed_everything(seed)
        if device is None:
            inputs = get_inputs()
        else:
            with torch.device(device):
                inputs = get_inputs()
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f"get_inputs() must return a list or tuple, not {type(inputs).__name__}")
    return [transform(x, distribution) for x in inputs]


def input_bytes(inputs: Any) -> int:
    """Bytes held by the tensors of an input set."""
    if isinstance(inputs, torch.Tensor):
        return inputs.numel() * inputs.element_size()
    if isinstance(inputs, (list, tuple)):
        return sum(input_bytes(x) for x in inputs)
    return 0


def to_double(x: Any, copy: bool = False) -> Any:
    """Upcast floating-point tensors of a tree to float64 for the reference run.

    `copy`: every tensor of the result is new (the others cloned), so a run that changes
    its inputs cannot change `x`; the floating-point ones are new anyway, and nothing is
    copied twice.
    """
    if isinstance(x, torch.Tensor):
        if x.is_floating_point():
            return x.to(torch.float64, copy=True)
        return x.clone() if copy else x
    if isinstance(x, (list, tuple)):
        return type(x)(to_double(v, copy) for v in x)
    return x


_SUM_CHUNK = 1 << 24  # elements widened at a time (128 MiB in float64)


def wide_sum(t: torch.Tensor) -> torch.Tensor:
    """The sum of a tensor's elements in float64 (complex128, int64 for integers), a chunk at a time.

    A sum in another dtype than the tensor's widens a whole copy first (ATen's make_reduction):
    16 GiB at once for KernelBench's 8 GiB matrix-vector input.
    """
    wide = torch.complex128 if t.is_complex() else torch.float64 if t.is_floating_point() else torch.int64
    flat = t.detach().reshape(-1)
    total = torch.zeros((), dtype=wide, device=flat.device)
    for i in range(0, flat.numel(), _SUM_CHUNK):
        total += flat[i:i + _SUM_CHUNK].sum(dtype=wide)
    return total


def fingerprint(inputs: Any) -> list[Any]:
    """What tells two input sets apart, cheaply and on their own device: per leaf its type, and for
    a tensor its dtype, shape, sum (in float64, or int64 for integers, without a widened copy)
    and 64 elements spread across it; other values as they are when JSON can say them.

    Equal fingerprints from two processes mean the same set to any honest purpose (the
    candidate's own worker reports its side, so this guards honest tasks, not against cheats).
    """
    out: list[Any] = []
    for x in inputs if isinstance(inputs, (list, tuple)) else [inputs]:
        if isinstance(x, torch.Tensor):
            flat = x.detach().reshape(-1)
            n = flat.numel()
            if x.dtype == torch.bool:
                total = flat.sum()
            else:
                total = wide_sum(flat)
            picks = flat[:: max(1, n // 64)][:64] if n else flat
            out.append([str(x.dtype), list(x.shape), repr(total.item()), repr(picks.cpu().tolist())])
        elif isinstance(x, (int, float, str, bool)) or x is None:
            out.append(repr(x))
        elif isinstance(x, (list, tuple)):
            out.append(fingerprint(list(x)))
        else:
            out.append(type(x).__name__)
    return out
