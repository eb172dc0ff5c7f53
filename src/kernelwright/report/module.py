"""The winning kernels as an importable package: `kernelwright export SOURCE --as-module DIR`.

One module per task, each with one `nn.Module` class named after the task. It builds the
kernel once (the kernel's own module, imported once), and before every call checks the
device, dtypes and shapes against what the judge verified. Inputs outside that fall back to
the task's own Model, with the same weights, or raise `UnverifiedInputs` with
`fallback=False`: a kernel is only ever run where it was checked.

The package holds each kernel's source as judged and the task's source (its Model is the
fallback); it needs torch, and whatever the kernel itself needs to build, never kernelwright.
"""

from __future__ import annotations

import keyword
import pprint
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from kernelwright.store import Store
from kernelwright.store.records import CandidateRecord, RunRecord
from kernelwright.task.loader import InputError


@dataclass(frozen=True)
class Winner:
    """One task's kernel to package."""

    run: RunRecord
    candidate: CandidateRecord
    speedup_vs_eager: float | None  # the figure that made it the winner (the re-judged one when crowned)
    how: str  # "re-judged in a fresh process" (a crowned search) or "best accepted in the bench"


def winners(store: Store, run_ids: list[str]) -> list[Winner]:
    """Per run: its crowned kernel, or else its fastest accepted candidate; runs with neither are left out."""
    out = []
    for rid in run_ids:
        run = store.get_run(rid)
        crowned = store.crowning(rid)
        if crowned is not None and crowned.candidate_id:
            out.append(Winner(run, store.candidate(crowned.candidate_id), crowned.speedup_vs_eager,
                              "re-judged in a fresh process"))
            continue
        accepted = [c for c in store.candidates(rid) if c.verdict == "accepted" and c.source]
        if accepted:
            best = max(accepted, key=lambda c: c.speedup_vs_eager or 0.0)
            out.append(Winner(run, best, best.speedup_vs_eager, "best accepted in the bench"))
    return out


def input_signature(task_source: str) -> list[dict[str, Any]]:
    """Each input of the task's get_inputs(): a tensor's dtype and shape, or another value's type.

    Made on the `meta` device where the task allows it: no memory, whatever its size
    (KernelBench's level 1 makes 6-16 GiB sets); else on the CPU (a task that samples a
    distribution or reads a value back). Raises InputError when the task's code cannot say."""
    ns: dict[str, Any] = {"__name__": "kw_export_task"}
    try:
        exec(compile(task_source, "<task>", "exec"), ns)  # noqa: S102 - the task is trusted (threat model)
        try:
            with torch.device("meta"):
                inputs = ns["get_inputs"]()
        except Exception:  # noqa: BLE001 - not every task can run there
            inputs = ns["get_inputs"]()
    except Exception as exc:  # noqa: BLE001 - any failure: say which task and why
        raise InputError(f"the task's get_inputs() failed: {type(exc).__name__}: {exc}") from None
    sig = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            sig.append({"kind": "tensor", "dtype": str(x.dtype).removeprefix("torch."), "shape": list(x.shape)})
        else:
            sig.append({"kind": type(x).__name__})
    return sig


def write_package(items: list[Winner], folder: Path) -> list[tuple[str, str]]:
    """Write the package; (module, class) per task. Raises InputError when there is nothing to write
    or the folder holds something other than an earlier export."""
    if not items:
        raise InputError("no task has an accepted kernel to export")
    if folder.exists() and any(folder.iterdir()) and not (folder / _MARK).exists():
        raise InputError(f"{folder} is not empty and not an earlier kernelwright module export: choose another")
    (folder / "_kernels").mkdir(parents=True, exist_ok=True)
    (folder / "_tasks").mkdir(exist_ok=True)
    names: list[tuple[str, str]] = []
    taken: set[str] = set()
    for w in items:
        mod = _unique(_identifier(w.run.task_name).lower(), taken)
        cls = _class_name(w.run.task_name)
        (folder / "_kernels" / f"{mod}.py").write_text(w.candidate.source or "")
        (folder / "_tasks" / f"{mod}.py").write_text(w.run.task_source)
        verified = {"task": w.run.task_name, "device": w.run.device, "inputs": input_signature(w.run.task_source),
                    "run_id": w.run.id, "candidate_id": w.candidate.id, "proposer": w.candidate.proposer,
                    "speedup_vs_eager": w.speedup_vs_eager, "how": w.how}
        (folder / f"{mod}.py").write_text(_WRAPPER.format(task=w.run.task_name, mod=mod, cls=cls,
                                                          verified=pprint.pformat(verified, sort_dicts=False)))
        names.append((mod, cls))
    for sub in ("_kernels", "_tasks"):
        (folder / sub / "__init__.py").write_text("")
    exports = "\n".join(f"from .{m} import {c}" for m, c in names)
    (folder / "__init__.py").write_text(
        f'"""Kernels verified by kernelwright, one nn.Module per task (see each module\'s VERIFIED)."""\n\n'
        f"from ._check import UnverifiedInputs\n{exports}\n\n"
        f"__all__ = {['UnverifiedInputs'] + [c for _, c in names]!r}\n")
    (folder / "_check.py").write_text(_CHECK)
    (folder / _MARK).write_text("written by kernelwright export --as-module\n")
    return names


_MARK = ".kernelwright-export"


def _identifier(task_name: str) -> str:
    stem = Path(task_name).name.removesuffix(".py")
    level = re.search(r"level(\d+)", task_name)
    s = re.sub(r"\W+", "_", (f"level{level.group(1)}_" if level else "") + stem).strip("_") or "task"
    return f"t_{s}" if s[0].isdigit() or keyword.iskeyword(s) else s


def _class_name(task_name: str) -> str:
    stem = re.sub(r"^\d+_", "", Path(task_name).name.removesuffix(".py"))
    parts = [p for p in re.split(r"\W+|_", stem) if p]
    name = "".join(p[:1].upper() + p[1:] for p in parts) or "Task"
    level = re.search(r"level(\d+)/(\d+)_", task_name)
    return (f"L{level.group(1)}P{level.group(2)}" if level else "") + (name if name[0].isalpha() else f"K{name}")


def _unique(name: str, taken: set[str]) -> str:
    n, i = name, 2
    while n in taken:
        n, i = f"{name}_{i}", i + 1
    taken.add(n)
    return n


_CHECK = '''"""What every exported kernel checks before it runs (no kernelwright needed)."""

from typing import Any

import torch


class UnverifiedInputs(ValueError):
    """The inputs differ from what the judge verified the kernel on."""


def mismatch(inputs: tuple, verified: dict) -> str:
    """Why these inputs are not the verified ones ("" when they are)."""
    want = verified["inputs"]
    if len(inputs) != len(want):
        return f"{len(inputs)} inputs, verified with {len(want)}"
    for i, (x, w) in enumerate(zip(inputs, want)):
        if w["kind"] != "tensor":
            continue
        if not isinstance(x, torch.Tensor):
            return f"input {i} is {type(x).__name__}, verified as a tensor"
        if str(x.dtype).removeprefix("torch.") != w["dtype"]:
            return f"input {i} is {x.dtype}, verified as {w['dtype']}"
        if list(x.shape) != w["shape"]:
            return f"input {i} has shape {list(x.shape)}, verified as {w['shape']}"
        if x.device.type != verified["device"]:
            return f"input {i} is on {x.device.type}, verified on {verified['device']}"
    return ""
'''

_WRAPPER = '''"""{task}: the kernel kernelwright verified, behind the checks it was verified under."""

import torch

from ._check import UnverifiedInputs, mismatch

VERIFIED = {verified}


class {cls}(torch.nn.Module):
    """The task's Model with the verified kernel inside: same constructor, same weights by name.

    Inputs that are not what the judge verified (device, dtype, shape) run the task's own
    Model instead, or raise UnverifiedInputs with fallback=False.
    """

    def __init__(self, *args, fallback: bool = True, **kwargs):
        super().__init__()
        from ._kernels import {mod} as kernel
        from ._tasks import {mod} as task

        self.kernel = kernel.ModelNew(*args, **kwargs)
        self.fallback = fallback
        self._task, self._args, self._kwargs = task, args, kwargs
        self._reference = None

    def forward(self, *inputs):
        why = mismatch(inputs, VERIFIED)
        if not why:
            return self.kernel(*inputs)
        if not self.fallback:
            raise UnverifiedInputs(f"{task}: {{why}}; the kernel was not verified for these inputs")
        if self._reference is None:
            ref = self._task.Model(*self._args, **self._kwargs)
            ref.load_state_dict(self.kernel.state_dict(), strict=False)
            self._reference = ref.to(next((t.device for t in inputs if isinstance(t, torch.Tensor)), "cpu"))
        return self._reference(*inputs)
'''
