"""Input signatures: what a verified kernel was checked on, and whether a call matches it.

A signature is one argument list as the judge handed it to the candidate: for each
positional argument, either a tensor (shape, dtype, device type) or a plain value (its
type and `repr`). Strides are not part of it: the judge always stages contiguous
tensors, so a verified module makes a non-contiguous argument contiguous before calling
the kernel, which changes nothing about the values it computes on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

# Plain values the judge can hand to a worker (its codec's closed set), nested in tuples/lists.
_VALUE_TYPES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class ArgSpec:
    """One positional argument: a tensor's shape, dtype and device type, or a plain value."""

    kind: str  # "tensor" | "value"
    shape: tuple[int, ...] | None = None
    dtype: str | None = None  # "float32"
    device: str | None = None  # device type: "cpu" | "cuda"
    value: str | None = None  # repr() of a plain value: 0.5 and 0.5000001 differ, so do 1 and True
    type: str | None = None  # "float", "int", "bool", "str", "NoneType", "tuple", "list"

    def describe(self) -> str:
        """`float32[3, 8] on cpu` or `0.5`."""
        if self.kind == "tensor":
            return f"{self.dtype}[{', '.join(map(str, self.shape or ()))}] on {self.device}"
        return str(self.value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields of this kind of argument."""
        if self.kind == "tensor":
            return {"kind": "tensor", "shape": list(self.shape or ()), "dtype": self.dtype, "device": self.device}
        return {"kind": "value", "type": self.type, "value": self.value}


@dataclass(frozen=True)
class InputSignature:
    """A whole positional argument list, as verified (or as a call presents it)."""

    args: tuple[ArgSpec, ...]

    def describe(self) -> str:
        """`(float32[3, 8] on cpu, 0.5)`."""
        return "(" + ", ".join(a.describe() for a in self.args) + ")"

    def to_dict(self) -> list[dict[str, Any]]:
        """One dict per argument."""
        return [a.to_dict() for a in self.args]


def is_plain_value(value: Any) -> bool:
    """True for None, bool, int, float, str, and tuples or lists of them (no subclasses)."""
    if type(value) in (tuple, list):
        return all(is_plain_value(v) for v in value)
    return type(value) in _VALUE_TYPES


def arg_spec(value: Any) -> ArgSpec | None:
    """The spec of one argument, or None when it is neither a tensor nor a plain value."""
    import torch

    if isinstance(value, torch.Tensor):
        return ArgSpec("tensor", tuple(int(s) for s in value.shape), str(value.dtype).removeprefix("torch."),
                       value.device.type)
    if is_plain_value(value):
        return ArgSpec("value", value=repr(value), type=type(value).__name__)
    return None


def signature_of(args: Sequence[Any]) -> InputSignature | None:
    """The signature of an argument list; None when some argument has no spec."""
    specs = [arg_spec(a) for a in args]
    if any(s is None for s in specs):
        return None
    return InputSignature(tuple(s for s in specs if s is not None))


def tensor_device_types(args: Sequence[Any]) -> set[str]:
    """Device types of the tensors among the arguments."""
    import torch

    return {a.device.type for a in args if isinstance(a, torch.Tensor)}


def task_signatures(module: Any, shapes: Sequence[dict[str, Any]], device: str) -> tuple[InputSignature, ...]:
    """The signatures of a loaded task module's inputs on `device`: default shape, then `shapes`.

    Calls get_inputs() once per shape with the module globals overridden, as the judge
    does, and leaves this process's random number generators as they were.
    """
    import random

    import torch

    found: list[InputSignature] = []
    state = random.getstate()
    np_state = _numpy_state()
    try:
        with torch.random.fork_rng(devices=[]):
            for variant in (None, *shapes):
                specs = [arg_spec(x) for x in _inputs_for(module, variant)]
                if any(s is None for s in specs):
                    continue  # a value the judge cannot send either: it rejects such a task itself
                # The judge moves CPU-made inputs to its device: the candidate saw them there.
                sig = InputSignature(tuple(replace(s, device=device.split(":")[0]) if s.kind == "tensor" else s
                                           for s in specs if s is not None))
                if sig not in found:
                    found.append(sig)
    finally:
        random.setstate(state)
        _set_numpy_state(np_state)
    return tuple(found)


def _numpy_state() -> Any:
    import sys

    np = sys.modules.get("numpy")
    return None if np is None else np.random.get_state()


def _set_numpy_state(state: Any) -> None:
    import sys

    np = sys.modules.get("numpy")
    if np is not None and state is not None:
        np.random.set_state(state)


def _inputs_for(module: Any, variant: dict[str, Any] | None) -> list[Any]:
    from kernelwright.worker.inputs import shape_globals  # imports torch: only when needed

    with shape_globals(module.__dict__, variant):
        return list(module.get_inputs())
