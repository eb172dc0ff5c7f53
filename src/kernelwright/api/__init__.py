"""The Python API: judge a kernel for an `nn.Module`, or search for one, from your own code.

```python
import torch
import kernelwright

model = MyBlock().eval()
x = torch.randn(64, 1024)

result = kernelwright.verify(model, "my_kernel.py", (x, 0.5))   # or the source text
print(result.verdict, result.speedup_vs_eager, result.reasons)
fast = result.module            # a drop-in nn.Module running the verified kernel
y = fast(x, 0.5)

best = kernelwright.optimize(model, (x, 0.5), models=["openai:gpt-5"], budget=20)
if best.accepted:
    y = best.module(x, 0.5)
```

`verify(reference, candidate, example_inputs)` and `optimize(module, example_inputs)`
use the same judge, with the same guarantees (docs/judge.md), and the same SQLite store as
`kernelwright verify` and `kernelwright optimize`. `reference`/`module` is an `nn.Module`
instance or the path of a KernelBench task file (then `example_inputs` is left out: the
task makes its own). Both return a frozen result (`KernelResult`, `OptimizeResult`) with
the verdict, the reasons, the timings, the kernel's path and source, the input signatures
it was verified on, `to_dict()` for JSON, and `.module`. A rejected candidate is a result,
not an exception; a module, task, candidate or option that cannot be used raises a
`ValueError` subclass (`ConversionError`, `InputError`, `TaskError`).

## How a module becomes a task

The judge never imports the caller's objects: it rebuilds the task in its own sandboxed
processes. So the module is exported with `torch.export.export(module, example_inputs)`
and saved with `torch.export.save` as `program.pt2`; beside it, a generated task file in
KernelBench format, named after the module's class (`ScaleShift` -> `scale_shift.py`,
which also names the search's runs), describes it (the export is the computation the task
states and checks against). They sit in a content-addressed directory under
kernelwright's cache (`$KERNELWRIGHT_CACHE/modules/<hash>/`, by default
`~/.cache/kernelwright/modules/<hash>/`; the hash covers the task text, which includes the
graph and the input generators, and every weight): the same module and inputs give the
same task path, and so the same task hash in the store.

- `Model()` holds the module's real parameters and buffers, whose `state_dict` names are
  the module's own (a state-dict hook drops the wrapper's level). The judge copies every
  same-named, same-shaped parameter and buffer from the reference into `ModelNew`, so a
  candidate that declares the module's parameters under the module's names computes with
  the real weights, and one that invents its own is rejected as wrong.
  `get_init_inputs()` returns `[]`.
- What `Model` runs is what the judge times as eager and compiles for the torch.compile
  baseline, so it is the module itself whenever that can be shipped: the module is saved
  with `torch.save` (`module.pt`) and the judge's processes import its classes from their
  source files, as your process does, and call it as you call it (`module(x, 0.5)`: one
  pass through `nn.Module`'s dispatch, then its forward). A speedup then means "faster
  than my module". Its source files are recorded with their SHA-256 (part of the task, so
  an edited file makes a new task); a class defined in the script being run (`__main__`)
  is shipped with a copy of the script's imports, classes, functions and literal
  constants (`script.py`; nothing the script runs is copied). Otherwise (a notebook or
  `python -c`, a class defined inside a function, a module that cannot be pickled or whose
  reloaded copy differs) `Model` runs the exported graph's ATen operators without
  torch.export's call wrapper (`graph.pt`): within a few microseconds of the module (each
  operator called through `torch.ops` costs about 0.5 us more on a CPU; the module's own
  Python is left out), where the wrapper of `torch.export.load(...).module()` costs tens
  of microseconds a call, which would have counted against eager alone. The result's
  `findings` say which was timed. The reference outputs that candidates are checked
  against come from the same `Model` (the export agrees with the module on the example,
  see the last point). Timing the export on both sides instead was rejected:
  its fixed cost would be added to every kernel's time too, squeezing real speedups
  over a small module towards 1x.
- Non-tensor arguments (floats, ints, bools, strings, None, tuples and lists of them)
  are specialised as constants by the export; `get_inputs()` passes them unchanged.
- `get_inputs()` makes fresh tensors with each example tensor's shape, dtype and device,
  under torch's random number generator (so every seed the judge uses gives new values):
  floating-point tensors are normal with the example's mean and standard deviation
  (of its finite values; standard normal when it has none, unit spread when it is
  constant), or uniform over the example's [min, max] when every example value is
  non-negative, so a non-negative domain stays non-negative; integer tensors are uniform
  over the example's [min, max]; bool tensors are True as often as in the example;
  complex tensors are complex standard normal. The judge then applies its input
  distributions (shifted by +3, scaled by 16, positive) on top: a module defined only on
  part of the real line says so with `metadata={"exclude_distributions": ["shifted"]}`.
- The task's comments show what it computes, for LLM proposers: the parameter and buffer
  names and shapes, `repr(module)`, the class source (`inspect.getsource`, when
  available) and the exported graph's code (ATen operators).
- Before anything is written, the program is checked on copies of the example: it runs
  after a save/load round trip, leaves its inputs and its own parameters and buffers
  unchanged, returns a tensor or a flat tuple or list of tensors, and agrees with the
  module itself (within 1e-3 of the output's RMS).

`metadata` may set `rtol`, `atol`, `distributions`, `exclude_distributions` and
`perturb_timing_inputs` (docs/task-metadata.md).

## What cannot be handled

Each raises `ConversionError` (a `ValueError`) with one paragraph saying why and what to do:

- anything `torch.export` cannot capture as one graph: Python control flow on tensor
  values (`if x.sum() > 0`, `.item()`, `.tolist()`), data-dependent output shapes,
  operators without export support;
- outputs that are not a tensor or a flat tuple or list of tensors (numbers, None,
  dicts, nested containers);
- in-place changes to the inputs, and modules that change their own parameters or
  buffers when called (BatchNorm in training mode: call `.eval()` first);
- randomness in forward (dropout in training mode), or other behaviour the export does
  not reproduce;
- arguments other than dense tensors of the judge's dtypes (float64/32/16, bfloat16,
  int64/32/16/8, uint8, bool, complex64/128) and plain values; keyword arguments;
  tensor subclasses; weights and inputs on different devices, or on a device other than
  cpu and cuda (a CUDA module is judged on the judge's default CUDA device).

Also worth knowing: the task is exported for the example's exact shapes and non-tensor
values (the export guards on them), so the kernel is verified on that one signature;
metadata `shapes`, `mutates_inputs` and `eval_mode` are refused for a module. Tensors that
are plain attributes (neither parameters nor buffers) and non-persistent buffers are baked
into the program, so `ModelNew` cannot receive them by name: register them as buffers.
For a task file, nothing is converted: the file is judged as `kernelwright verify` would.

## `result.module` and the fallback

For an accepted kernel, `result.module` (built once; `result.build_module(fallback=...)`
builds another) is a `VerifiedModule`: the candidate's `ModelNew` imported in this
process (its compiled extension reused from the judge's build cache), built as the judge
builds it (`ModelNew(*get_init_inputs())` under a fixed seed, in eval mode when the task
says so, on the judged device), with the original module's current weights copied in by
name and shape, as the judge does, and `requires_grad` off. The candidate's code runs in
your process: it was verified, but it is code.

It runs the kernel only on calls within what was verified: positional arguments whose
signature (each tensor's shape, dtype and device type; each plain value's type and repr)
is one of `result.signatures` (the example's for a module; for a task file, its default
shapes plus the metadata's `shapes`, on the judged device), and no gradient needed (grad
mode off, or no tensor argument requiring grad: the judge never checks a backward). Those
calls run under `torch.no_grad()` on contiguous copies of non-contiguous arguments, as the
judge staged them. Any other call (another dtype, device, rank or shape, another
non-tensor value, keyword arguments, a gradient) either raises `UnverifiedInputError`
(`fallback="error"`, the default) or runs the original module
(`fallback="original"`, with a `KernelFallbackWarning` once per new kind of call and a
count in `fallback_calls`). For a module the original is your instance; for a task file
it is `Model(*get_init_inputs())` built here under the same seed as the kernel.

`result.module` on a rejected result (or an `OptimizeResult` without a kernel) raises
`KernelRejectedError`: it never returns unverified code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernelwright.api._calls import optimize, verify
from kernelwright.api._errors import (
    ConversionError,
    KernelFallbackWarning,
    KernelRejectedError,
    UnverifiedInputError,
)
from kernelwright.api._results import KernelResult, OptimizeResult
from kernelwright.api._signature import ArgSpec, InputSignature

if TYPE_CHECKING:
    from kernelwright.api._verified_module import VerifiedModule

__all__ = [
    "ArgSpec", "ConversionError", "InputSignature", "KernelFallbackWarning", "KernelRejectedError",
    "KernelResult", "OptimizeResult", "UnverifiedInputError", "VerifiedModule", "optimize", "verify",
]


def __getattr__(name: str) -> Any:
    # VerifiedModule subclasses nn.Module: importing it imports torch, so only on first use.
    if name == "VerifiedModule":
        from kernelwright.api._verified_module import VerifiedModule

        return VerifiedModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
