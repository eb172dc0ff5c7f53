"""`result.module`: the verified kernel as a drop-in nn.Module, guarded by what was verified."""

from __future__ import annotations

import hashlib
import os
import sys
import types
import warnings
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn

from kernelwright.api._errors import KernelFallbackWarning, UnverifiedInputError
from kernelwright.api._results import Fallback
from kernelwright.api._signature import InputSignature, signature_of

FALLBACKS = ("error", "original")


class VerifiedModule(nn.Module):
    """Runs the verified kernel on inputs like those the judge checked; elsewhere falls back or raises.

    A call is within what was verified when its positional arguments have one of the
    verified signatures (every tensor's shape, dtype and device type; every plain value's
    type and value), no keyword arguments are given, and no gradient is needed (grad mode
    off, or no tensor argument that requires grad): the judge checks forward values only,
    never a backward. Such a call runs the kernel under `torch.no_grad()` on contiguous
    arguments, as the judge did. Any other call raises UnverifiedInputError
    (`fallback="error"`) or runs the original module (`fallback="original"`, with a
    KernelFallbackWarning once per new signature, counted in `fallback_calls`).

    The kernel holds a copy of the original's weights taken when this module was built;
    the original module is kept (unregistered, so `.to()` and `state_dict()` see only the
    kernel) for fallback calls.
    """

    original: nn.Module | None  # the caller's module, or the task's Model; not a submodule

    def __init__(self, kernel: nn.Module, original: nn.Module | None, signatures: Sequence[InputSignature],
                 fallback: Fallback = "error", kernel_path: str | None = None) -> None:
        super().__init__()
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {FALLBACKS}, not {fallback!r}")
        if fallback == "original" and original is None:
            raise ValueError("fallback='original' needs the original module")
        self.kernel = kernel
        # Not a submodule: its parameters are the caller's, not part of this module's state.
        object.__setattr__(self, "original", original)
        self.signatures: tuple[InputSignature, ...] = tuple(signatures)
        self.fallback: Fallback = fallback
        self.kernel_path = kernel_path
        self.fallback_calls = 0
        self._warned: set[str] = set()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The kernel's output on verified inputs; otherwise the original's, or UnverifiedInputError."""
        problem = self.unverified(args, kwargs)
        if problem is None:
            staged = tuple(a.contiguous() if isinstance(a, torch.Tensor) else a for a in args)
            with torch.no_grad():
                return self.kernel(*staged)
        if self.fallback == "original" and self.original is not None:
            self.fallback_calls += 1
            if problem not in self._warned:
                self._warned.add(problem)
                warnings.warn(f"{problem}; running the original module instead of the verified kernel",
                              KernelFallbackWarning, stacklevel=2)
            return self.original(*args, **kwargs)
        raise UnverifiedInputError(
            f"{problem}. The kernel{f' ({self.kernel_path})' if self.kernel_path else ''} was verified only "
            f"on {self._verified_text()}, without gradients; pass fallback='original' to run the original "
            "module on other inputs, or verify the kernel on these.")

    def unverified(self, args: Sequence[Any], kwargs: dict[str, Any] | None = None) -> str | None:
        """Why a call with these arguments is outside what was verified, or None when it is inside."""
        if kwargs:
            return f"keyword arguments ({', '.join(kwargs)}) were not verified: the judge passes positional ones"
        sig = signature_of(args)
        if sig is None:
            bad = next(type(a).__name__ for a in args if signature_of([a]) is None)
            return f"an argument of type {bad} was not verified (only tensors and plain values are)"
        if sig not in self.signatures:
            return f"inputs {sig.describe()} were not verified"
        if torch.is_grad_enabled() and any(isinstance(a, torch.Tensor) and a.requires_grad for a in args):
            return ("an input requires grad: the kernel's gradients were not verified (call it under "
                    "torch.no_grad() or torch.inference_mode())")
        return None

    def _verified_text(self) -> str:
        shown = [s.describe() for s in self.signatures[:4]]
        more = len(self.signatures) - len(shown)
        return ", ".join(shown) + (f" and {more} more" if more > 0 else "")

    def extra_repr(self) -> str:
        """Where the kernel came from and how unverified calls are handled."""
        return f"kernel_path={self.kernel_path!r}, fallback={self.fallback!r}, signatures={len(self.signatures)}"


def build_kernel(source: str, filename: str, device: str, init_inputs: Sequence[Any],
                 state: dict[str, torch.Tensor], seed: int, eval_mode: bool) -> nn.Module:
    """ModelNew built in this process as the judge builds it: same seed, eval mode, device, weights by name.

    The candidate's code runs here, in the caller's process: it was verified by the judge,
    but it is code. Its compiled extensions are looked up in the judge's build cache for
    this source first, so what the judge built is reused rather than rebuilt.
    """
    module = _import_candidate(source, filename, device)
    cls = getattr(module, "ModelNew", None)
    if cls is None:
        raise ValueError(f"{filename} does not define ModelNew")
    with forked_rng(device):
        seed_all(seed)
        model = cls(*init_inputs)
    if not isinstance(model, nn.Module):
        raise TypeError(f"ModelNew(...) returned a {type(model).__name__}, not an nn.Module")
    if eval_mode:
        model.eval()
    model = model.to(device)
    own = model.state_dict()
    with torch.no_grad():
        for name, value in state.items():
            if name in own and own[name].shape == value.shape:
                own[name].copy_(value)
    for p in model.parameters():
        p.requires_grad_(False)  # inference only: gradients were never verified
    return model


def _import_candidate(source: str, filename: str, device: str) -> types.ModuleType:
    """The candidate as a module, imported once per source in this process."""
    from kernelwright.sandbox import buildcache
    from kernelwright.sandbox.limits import build_env

    name = "kernelwright_kernel_" + hashlib.sha256(source.encode()).hexdigest()[:16]
    if name in sys.modules:
        return sys.modules[name]
    build = buildcache.build_dir(source, device)
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module  # pickle and dataclasses look classes up there
    try:
        with buildcache.exclusive(build), _environ(build_env(build)):
            exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - the verified kernel
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


@contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def seed_all(seed: int) -> None:
    """Seed torch and Python's random as the judge does before building a model."""
    import random

    torch.manual_seed(seed)
    random.seed(seed)


@contextmanager
def forked_rng(device: str) -> Iterator[None]:
    """Seed for construction without moving the caller's random number generators."""
    import random

    initialized: Any = torch.cuda.is_initialized  # untyped in torch's stubs
    cuda = device.startswith("cuda") and torch.cuda.is_available() and bool(initialized())
    state = random.getstate()
    with torch.random.fork_rng(devices=[torch.cuda.current_device()] if cuda else []):
        try:
            yield
        finally:
            random.setstate(state)
