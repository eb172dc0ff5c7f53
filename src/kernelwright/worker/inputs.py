"""Input sets as the reference worker makes them: the task's own generator under a seed, shape
variants and distribution transforms. The seeds are secret: the judge draws them
(`judge._support.fresh_seed`) and sends them only to the trusted reference worker.
"""

from __future__ import annotations

import random
import sys
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


def transform(x: Any, distribution: str, in_place: bool = False) -> Any:
    """Apply a named distribution to a floating-point tensor; other values pass through.

    'shifted' and 'scaled' break kernels that assume zero-mean, unit-scale data
    (a softmax without max-subtraction, a hard-coded epsilon); 'positive' keeps
    log/sqrt-style tasks valid while changing the data. `in_place`: write the result
    into `x` (the same values, bit for bit), for a tensor nothing else refers to.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        return x
    if distribution == "task":
        return x
    if distribution == "shifted":
        return x.add_(C.SHIFT) if in_place else x + C.SHIFT
    if distribution == "scaled":
        return x.mul_(C.SCALE) if in_place else x * C.SCALE
    if distribution == "positive":
        return x.abs_().add_(0.1) if in_place else x.abs() + 0.1
    raise ValueError(f"unknown distribution {distribution!r}")


def _refs_of_a_local() -> int:
    """What sys.getrefcount says of an object only one local name holds (interpreters differ)."""
    v: list[Any] = []
    return sys.getrefcount(v)


def _refs_of_an_item() -> int:
    """What sys.getrefcount says of a container's item that nothing else holds."""
    v = [object()]
    return sys.getrefcount(v[0])


_LOCAL_ONLY, _ITEM_ONLY = _refs_of_a_local(), _refs_of_an_item()


def _transformed(inputs: list[Any] | tuple[Any, ...], shared_set: bool, distribution: str) -> list[Any]:
    """`transform` over a set, in place for each CUDA tensor only the set refers to.

    A transformed copy of a 16 GiB input (KernelBench's level1/45) would double the set's
    footprint on the GPU while it is made, in both workers at once. In place only where no
    one else can see the write: the set's container (`shared_set` False) and the tensor have
    no other referrer (a task handing out a module-level tensor, or the same tensor twice,
    gets copies), the tensor is no view, needs no grad, and lives on the GPU (a CPU tensor
    may share memory with a NumPy array, which no reference count shows).
    """
    out = []
    for i in range(len(inputs)):
        sole = (not shared_set and isinstance(inputs[i], torch.Tensor) and inputs[i].is_cuda
                and inputs[i]._base is None and not inputs[i].requires_grad
                and sys.getrefcount(inputs[i]) <= _ITEM_ONLY)
        out.append(transform(inputs[i], distribution, in_place=sole))
    return out


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
    shared_set = sys.getrefcount(inputs) > _LOCAL_ONLY
    return _transformed(inputs, shared_set, distribution)


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
