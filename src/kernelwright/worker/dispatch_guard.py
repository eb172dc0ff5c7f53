"""The routes by which a candidate's code can run inside the harness's own tensor operations.

The harness copies, compares and encodes outputs with ordinary aten operators. A candidate
that registers a kernel for one of them (`torch.library.Library("aten", "IMPL")`, or a
`TORCH_LIBRARY_IMPL(aten, ...)` in an extension), leaves a torch-function or dispatch mode
on the mode stack, switches the Python dispatcher or other dispatch keys on, or installs a
trace or profile function, has its code called by the harness: it can return an empty
output and fill it in only when the checker copies it, so that the timed calls do no work
(tests/exploits/test_copy_hook.py).

Three defenses use this module, all set up before any untrusted code runs (at import, and
`baseline` when the harness is created):

- `Integrity` compares `hook_state()` before the candidate's import with the state after the
  import and after the runs: whatever is still in place then.
- The harness copies outputs with `clone`, which no mode, forced dispatch key or swapped
  `Tensor.clone` can enter, and calls `check_copy_path` after each copy.
- Every kernel registered from Python is checked as it is registered (`_DispatchModule.impl`
  is wrapped): a kernel for a harness operator that is registered inside `forward` and removed
  again, even from inside its own call, is noted the moment it appears.

What is noted is reported by `tripped`, and so by Integrity. All of it lives in the candidate's
process: code that reads this module can erase the notes, and native code can register
kernels without Python. It raises the bar; the judge's own checks do not rest on it alone.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import torch

# The aten operators that the harness, the input perturbation and the codec call on tensors
# a candidate has touched. Names missing from a torch version dump as "" and compare equal.
HARNESS_OPS: tuple[str, ...] = (
    "aten::clone", "aten::copy_", "aten::empty_strided", "aten::empty_like", "aten::empty.memory_format",
    "aten::_to_copy", "aten::to.device", "aten::to.dtype", "aten::to.dtype_layout", "aten::to.other",
    "aten::_copy_from", "aten::_copy_from_and_resize", "aten::detach", "aten::alias", "aten::view",
    "aten::view.dtype", "aten::reshape", "aten::_reshape_alias", "aten::_unsafe_view", "aten::contiguous",
    "aten::view_as_real", "aten::equal", "aten::eq.Tensor", "aten::index.Tensor", "aten::index_put_",
    "aten::_index_put_impl_", "aten::randint.generator", "aten::random_.from", "aten::random_.to",
    "aten::_unique2", "aten::sum", "aten::_local_scalar_dense", "aten::item", "aten::fill_.Scalar",
    "aten::zero_", "aten::zeros", "aten::cat", "aten::stack",
)

# What `Tensor.clone` dispatches to on a dense CPU or CUDA tensor: clone itself, the
# allocation (strided when the layout is kept, empty_like otherwise) and the copy.
COPY_OPS: tuple[str, ...] = (
    "aten::clone", "aten::empty_strided", "aten::empty_like", "aten::empty.memory_format", "aten::copy_",
)

_C: Any = torch._C
_dump: Callable[[str], str] = _C._dispatch_dump
_function_modes: Callable[[], int] = getattr(_C, "_len_torch_function_stack", lambda: 0)
_dispatch_modes: Callable[[], int] = getattr(_C, "_len_torch_dispatch_stack", lambda: 0)
_function_mode_at: Callable[[int], Any] = getattr(_C, "_get_function_stack_at", lambda i: None)
_dispatch_mode_at: Callable[[int], Any] = getattr(_C, "_get_dispatch_stack_at", lambda i: None)
_included: Callable[[], Any] = _C._dispatch_tls_local_include_set
_excluded: Callable[[], Any] = _C._dispatch_tls_local_exclude_set
_no_torch_function: Any = _C.DisableTorchFunction
_force_keys: Any = _C._ForceDispatchKeyGuard
# The C method itself: `torch.Tensor.clone` is looked up on the Python class at each call,
# where a candidate can swap it and swap it back before any identity check looks.
_clone: Callable[[torch.Tensor], torch.Tensor] = _C.TensorBase.clone
_copy_: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = _C.TensorBase.copy_
_empty_like: Callable[[torch.Tensor], torch.Tensor] = torch.empty_like
_Module: Any = _C._DispatchModule  # what torch.library.Library registers through
_gettrace = sys.gettrace
_getprofile = sys.getprofile
_str = str
_type = type

# Harness operators by base name ("copy_" for aten::copy_), to check only those a
# registration can have touched: its name may carry a namespace and an overload.
_BY_BASE: dict[str, tuple[str, ...]] = {}
for _op in HARNESS_OPS:
    _base = _op.split("::")[-1].split(".")[0]
    _BY_BASE[_base] = _BY_BASE.get(_base, ()) + (_op,)


def registrations(ops: tuple[str, ...]) -> dict[str, str]:
    """Each operator's dispatcher registrations: per key, where its kernel was registered and its form.

    `_dispatch_dump`, not the computed table: a Python kernel shows as "(none) [ boxed ]"
    whatever file and line it claims, so one registered under a forged location still differs.
    """
    return {op: _dump(op) for op in ops}


def hook_state() -> dict[str, Any]:
    """Everything that can route this thread's aten calls into other code, as it stands now.

    The mode stacks, the dispatch keys forced on or off and the trace and profile functions
    are per thread: this is called on the thread that serves requests, where the candidate's
    import and its calls run too.
    """
    return {
        "kernels": registrations(HARNESS_OPS),
        "torch-function modes": _modes(_function_modes, _function_mode_at),
        "dispatch modes": _modes(_dispatch_modes, _dispatch_mode_at),
        "dispatch keys forced on": _str(_included()),
        "dispatch keys forced off": _str(_excluded()),
        "trace function": _gettrace(),
        "profile function": _getprofile(),
        "registration watch": _Module.impl,
    }


def hook_changes(before: dict[str, Any]) -> list[str]:
    """What differs between `before` (a `hook_state()`) and now, one sentence each."""
    now = hook_state()
    found = [f"{op}: {_kernel_change(old, now['kernels'].get(op, ''))}"
             for op, old in before["kernels"].items() if now["kernels"].get(op, "") != old]
    for key in ("torch-function modes", "dispatch modes"):
        if now[key] != before[key]:
            found.append(f"the {key} on the global mode stack changed from {before[key] or 'none'} "
                         f"to {now[key] or 'none'}")
    for key in ("dispatch keys forced on", "dispatch keys forced off"):
        if now[key] != before[key]:
            found.append(f"{key} changed from {before[key]} to {now[key]}")
    for key in ("trace function", "profile function"):
        if now[key] is not before[key]:
            found.append(f"a {key} was installed or replaced: {now[key]!r}"[:300])
    if now["registration watch"] is not before["registration watch"]:
        found.append("torch._C._DispatchModule.impl was replaced (the harness watches kernel registrations there)")
    return found


def _modes(length: Callable[[], int], at: Callable[[int], Any]) -> list[str]:
    """Type names of the modes on one stack, bottom first (`torch.set_default_device` is one too)."""
    return [_type_name(at(i)) for i in range(length())]


def _type_name(obj: Any) -> str:
    t = _type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _kernel_change(before: str, now: str) -> str:
    old, new = set(before.splitlines()), set(now.splitlines())
    added = [line for line in now.splitlines() if line not in old]
    removed = [line for line in before.splitlines() if line not in new]
    if added:
        return f"kernel registered or replaced ({added[0][:200]})"
    return f"kernel removed ({removed[0][:200] if removed else 'registrations reordered'})"


# The reference state of the harness operators, the dispatch keys and the mode stacks: taken
# at import, and again by `baseline` once the harness is set up (after CUDA's initialisation,
# still before the candidate).
_BASE: dict[str, str] = {}
_KEYS_BASE: tuple[Any, Any] = (None, None)
_MODES_BASE: tuple[int, int] = (0, 0)
_TRIPPED: dict[str, None] = {}  # an ordered set: each finding once


def baseline() -> dict[str, Any]:
    """Take the reference state now, forget earlier notes, and return `hook_state()` for Integrity."""
    global _BASE, _KEYS_BASE, _MODES_BASE
    _BASE = registrations(HARNESS_OPS)
    _KEYS_BASE = (_included(), _excluded())
    _MODES_BASE = (_function_modes(), _dispatch_modes())
    _TRIPPED.clear()
    return hook_state()


def _note_kernels(ops: tuple[str, ...], when: str) -> None:
    for op in ops:
        base = _BASE.get(op, "")
        now = _dump(op)
        if now != base:
            _TRIPPED.setdefault(f"{when}: {op}: {_kernel_change(base, now)}", None)


def clone(t: torch.Tensor) -> torch.Tensor:
    """Copy a tensor by the built-in clone with no mode and no forced dispatch key in the way.

    Why not `t.clone()`: every copy torch offers goes through the dispatcher, so the copy
    cannot avoid it (a raw byte copy would need a different path per device and dtype).
    What can be shut out is shut out here: torch-function modes (switched off), dispatch
    modes and the Python dispatcher (their dispatch keys are reset to the ones of
    `baseline`), and a swapped `Tensor.clone` (the C method was captured at import).
    Kernels registered for the copy's operators cannot be bypassed: they are reported.
    """
    with _no_torch_function(), _force_keys(*_KEYS_BASE):
        return _clone(t)


def empty_like(t: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor laid out as `clone` would lay out `t`'s copy, past the same modes."""
    with _no_torch_function(), _force_keys(*_KEYS_BASE):
        return _empty_like(t)


def copy_into(dst: torch.Tensor, src: torch.Tensor) -> None:
    """Write `src` into `dst` in place, past the same modes and forced keys that `clone` is."""
    with _no_torch_function(), _force_keys(*_KEYS_BASE):
        _copy_(dst, src)


def check_copy_path() -> None:
    """Note any registration on the copy's operators, mode or forced key not there at `baseline`.

    Called right after the harness copies an output, while a hook set up to finish that
    output is normally still in place; this sees hooks registered without Python (native
    code), which the registration watch does not. About 15 us an operator.
    """
    _note_kernels(COPY_OPS, "when the harness copied an output")
    if (_function_modes(), _dispatch_modes()) != _MODES_BASE:
        _TRIPPED.setdefault("when the harness copied an output, a torch-function or dispatch mode was on the "
                            "global mode stack", None)
    if (_included(), _excluded()) != _KEYS_BASE:
        _TRIPPED.setdefault("when the harness copied an output, dispatch keys were forced on or off (the Python "
                            "dispatcher, a mode's keys, autocast)", None)


def tripped() -> list[str]:
    """What the copy checks and the registration watch have noted since `baseline`."""
    return list(_TRIPPED)


_register_impl: Callable[..., Any] = _Module.impl


def _watched_impl(self: Any, name: Any, *args: Any, **kwargs: Any) -> Any:
    """`_DispatchModule.impl`, then a check of the harness operators the name can refer to.

    Only operators of the same base name are dumped (about 15 us each), so the many
    registrations of honest libraries in their own namespaces stay cheap. Backend fallbacks
    (`fallback`) need no watch: on the keys a dense tensor reaches, each harness operator has
    a kernel of its own or a fallback that cannot be registered twice, and a fallback only
    applies where an operator has neither.
    """
    try:
        return _register_impl(self, name, *args, **kwargs)
    finally:
        ops = _BY_BASE.get(_str(name).split("::")[-1].split(".")[0])
        if ops:
            _note_kernels(ops, "as it was registered from Python")


_Module.impl = _watched_impl
baseline()
