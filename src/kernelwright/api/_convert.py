"""Turn an nn.Module and example inputs into a KernelBench task the judge can rebuild.

The judge never imports the caller's objects: it runs the task file in its own
processes. So the module is exported with `torch.export` (parameters, buffers and
constants included; non-tensor arguments specialised to their example values), saved
as `program.pt2`, and a generated `task.py` beside it describes that program. What the
task's Model runs, which is what the judge times as eager and torch.compile, is the
caller's module itself whenever it can be shipped (`module.pt`), else the exported graph
without torch.export's call wrapper (`graph.pt`): see `_baseline`. All live in a
content-addressed directory under the cache, so the same module and inputs always give
the same task path (and the same task hash in the store). The task file is named after the
module's class (`ScaleShift` -> `scale_shift.py`), which names the search's runs.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import keyword
import math
import os
import re
import secrets
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from kernelwright.api._baseline import Baseline, choose_baseline
from kernelwright.api._errors import ConversionError
from kernelwright.api._signature import InputSignature, is_plain_value, signature_of
from kernelwright.paths import cache_dir

# What the judge can move between processes (its codec) and make fresh random values of.
_DTYPES = {torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.int32,
           torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128}
# Metadata a converted module may carry; the rest contradicts how it was exported.
_META_KEYS = {"rtol", "atol", "distributions", "exclude_distributions", "perturb_timing_inputs"}
_MAX_LISTING_LINES = 400  # per section of the task's description: prompts have limits
_AGREEMENT_RTOL = 1e-3  # exported program vs module on the example, relative to the output's RMS


@dataclass(frozen=True)
class ConvertedTask:
    """A generated task: its file, the input signature it was exported for, its device type.

    `baseline` is what its Model runs ("module", "graph" or "program", see `_baseline`) and
    `baseline_note` a sentence saying so, for the result's findings.
    """

    path: Path
    signature: InputSignature
    device: str
    baseline: str = "program"
    baseline_note: str = ""


def normalize_inputs(example_inputs: Any) -> tuple[Any, ...]:
    """The example as a tuple of positional arguments (a lone tensor is a one-element tuple)."""
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    if not isinstance(example_inputs, (tuple, list)):
        raise ConversionError(
            f"example_inputs must be a tuple of the module's positional arguments (tensors, and plain "
            f"numbers, bools, strings or None), not {type(example_inputs).__name__}; keyword arguments "
            "are not supported: the judge calls forward with positional arguments only.")
    out = []
    for i, x in enumerate(example_inputs):
        if isinstance(x, torch.Tensor):
            if type(x) not in (torch.Tensor, nn.Parameter):
                raise ConversionError(f"example input {i} is a {type(x).__name__}, a tensor subclass; the judge "
                                      "only sends plain torch.Tensor values between processes. Pass a plain "
                                      "tensor.")
            if x.layout != torch.strided:
                raise ConversionError(f"example input {i} has layout {x.layout}; only dense (strided) tensors "
                                      "can be generated and sent to the candidate. Pass x.to_dense().")
            if x.dtype not in _DTYPES:
                raise ConversionError(f"example input {i} has dtype {x.dtype}, which the judge cannot send "
                                      f"between processes; supported: {_names(_DTYPES)}.")
            out.append(x.detach())
        elif is_plain_value(x):
            out.append(x)
        else:
            raise ConversionError(
                f"example input {i} is a {type(x).__name__}; a converted module's arguments must be tensors or "
                "plain values (None, bool, int, float, str, or tuples and lists of them), which are fixed to "
                "their example values. Wrap the module so that forward takes tensors, or write a KernelBench "
                "task file by hand and pass its path.")
    return tuple(out)


def module_device(module: nn.Module, args: Sequence[Any]) -> str:
    """The one device type of the module's weights and the example's tensors: 'cpu' or 'cuda'."""
    kinds = {t.device.type for t in list(module.parameters()) + list(module.buffers())}
    kinds |= {a.device.type for a in args if isinstance(a, torch.Tensor)}
    if len(kinds) > 1:
        raise ConversionError(f"the module's weights and the example inputs are on different devices "
                              f"({', '.join(sorted(kinds))}); move them to one device first.")
    kind = kinds.pop() if kinds else "cpu"
    if kind not in ("cpu", "cuda"):
        raise ConversionError(f"the module is on {kind}; the judge runs on cpu or cuda only.")
    return kind


def module_task(module: nn.Module, example_inputs: Any, metadata: Mapping[str, Any] | None = None) -> ConvertedTask:
    """Export `module` on the example, check the export, and write (or reuse) its task directory.

    Raises ConversionError, with one paragraph saying why and what to do, when the module
    cannot become a task: torch.export fails (data-dependent control flow, unsupported
    operators), the outputs are not a tensor or a tuple or list of tensors, the module
    changes its inputs or its own buffers, or the exported program does not reproduce the
    module on the example (randomness such as dropout in training mode).
    """
    if not isinstance(module, nn.Module):
        raise ConversionError(f"expected an nn.Module instance (or a task file path), got {type(module).__name__}.")
    args = normalize_inputs(example_inputs)
    device = module_device(module, args)
    meta = _metadata(metadata)
    name = type(module).__name__
    ep = _export(module, args, name)
    buf = io.BytesIO()
    torch.export.save(ep, buf)
    data = buf.getvalue()
    program = torch.export.load(io.BytesIO(data)).module()
    _check_behaviour(module, program, args, name)
    signature = signature_of(args)
    assert signature is not None  # normalize_inputs admitted only what has a spec
    baseline = choose_baseline(module, program, args, name, _disagreement)
    text = _task_text(module, ep, program, args, meta, device, baseline)
    # The text names the baseline's files, import paths and source digests; the weights it
    # does not show are hashed here (module.pt and graph.pt hold the same ones as the program).
    key = hashlib.sha256(text.encode())
    for value in _weights(ep):
        key.update(value)
    directory = cache_dir() / "modules" / key.hexdigest()[:24]
    text = text.replace(_DIR_PLACEHOLDER, repr(str(directory)))
    # Named after the module: the search names a run after its task file.
    filename = _snake(name) + ".py"
    _write_task_dir(directory, {"program.pt2": data, **baseline.files, filename: text.encode()})
    return ConvertedTask(directory / filename, signature, device, baseline.kind, baseline.note)


# -- export and its checks ----------------------------------------------------


def _export(module: nn.Module, args: tuple[Any, ...], name: str) -> Any:
    try:
        return torch.export.export(module, args, strict=False)
    except Exception as exc:  # torch.export raises many types: any failure is the same answer
        raise ConversionError(
            f"torch.export could not capture {name} on the example inputs ({_first_line(exc)}). A module "
            "becomes a task by exporting it to one graph, which rules out Python control flow that depends "
            "on tensor values (if x.sum() > 0, .item(), .tolist(), data-dependent shapes), operators without "
            "export support, and arguments other than tensors and plain values. Rewrite those parts with "
            "tensor operations (torch.where, torch.cond), or write a KernelBench task file by hand and pass "
            "its path instead.") from exc


def _check_behaviour(module: nn.Module, program: nn.Module, args: tuple[Any, ...], name: str) -> None:
    """Run the exported program, then the module, on copies of the example; both must agree."""
    state_before = _state_digests(program)
    copies = _clone(args)
    with torch.no_grad():
        try:
            out_p = program(*copies)
        except Exception as exc:
            raise ConversionError(f"the exported program of {name} failed on the example inputs "
                                  f"({_first_line(exc)}); the module cannot be judged from its export.") from exc
    changed = [i for i, (a, b) in enumerate(zip(copies, args))
               if isinstance(a, torch.Tensor) and _digest(a) != _digest(b)]
    if changed:
        raise ConversionError(
            f"{name} changes its input{'s' if len(changed) > 1 else ''} {', '.join(map(str, changed))} in place. "
            "A converted module must not mutate its arguments: the judge runs every candidate on copies "
            "and checks that inputs are unchanged. Return the new value instead (x = x + 1, not x.add_(1)), "
            "or write a task file declaring mutates_inputs.")
    moved = sorted(k for k, v in _state_digests(program).items() if state_before.get(k) != v)
    if moved:
        raise ConversionError(
            f"{name} changes its own parameters or buffers when called ({', '.join(moved[:5])}), as BatchNorm "
            "does in training mode; a kernel cannot be checked against a module whose state moves between "
            "calls. Call module.eval() before converting it, or remove the state update.")
    _check_outputs(out_p, name)
    with torch.no_grad():
        out_m = module(*_clone(args))
    worst = _disagreement(out_p, out_m)
    if worst is not None:
        raise ConversionError(
            f"the exported program of {name} does not reproduce the module on the example inputs ({worst}). "
            "The module is probably random (dropout in training mode, torch.rand in forward: call .eval() "
            "or remove the randomness) or depends on Python state that torch.export fixed at export time; a "
            "kernel judged against the export would not be a drop-in for the module.")


def _check_outputs(out: Any, name: str) -> None:
    leaves = list(out) if type(out) in (tuple, list) else [out]
    bad = [type(x).__name__ for x in leaves if type(x) is not torch.Tensor]
    if bad:
        got = type(out).__name__ + (f" holding {', '.join(sorted(set(bad)))}" if type(out) in (tuple, list) else "")
        raise ConversionError(
            f"{name} returns a {got}; the judge compares an output that is a tensor or a flat tuple or list of "
            "tensors (numbers, None, dicts and nested containers are not compared). Wrap the module so "
            "that forward returns only tensors.")


def _disagreement(a: Any, b: Any) -> str | None:
    """None when the two outputs agree; else a short description of the worst difference."""
    la = list(a) if isinstance(a, (tuple, list)) else [a]
    lb = list(b) if isinstance(b, (tuple, list)) else [b]
    if len(la) != len(lb) or not all(isinstance(y, torch.Tensor) for y in lb):
        return "different output structure"
    for i, (x, y) in enumerate(zip(la, lb)):
        if x.shape != y.shape or x.dtype != y.dtype:
            return f"output {i}: {tuple(x.shape)} {x.dtype} vs {tuple(y.shape)} {y.dtype}"
        if x.numel() == 0:
            continue
        x, y = x.detach().cpu(), y.detach().cpu()
        if not (x.is_floating_point() or x.is_complex()):
            if not torch.equal(x, y):
                return f"output {i} differs exactly"
            continue
        x, y = x.to(torch.complex128 if x.is_complex() else torch.float64), y.to(
            torch.complex128 if y.is_complex() else torch.float64)
        if not torch.equal(torch.isnan(x), torch.isnan(y)):
            return f"output {i}: NaN in different places"
        finite = torch.isfinite(x) & torch.isfinite(y)
        if not torch.equal(x[~finite].nan_to_num(), y[~finite].nan_to_num()):
            return f"output {i}: infinities differ"
        diff = (x[finite] - y[finite]).abs()
        scale = float(y[finite].abs().pow(2).mean().sqrt()) if finite.any() else 0.0
        worst = float(diff.max()) if diff.numel() else 0.0
        if worst > _AGREEMENT_RTOL * max(scale, 1e-30):
            return f"output {i}: max difference {worst:.3g} at an output scale of {scale:.3g}"
    return None


def _clone(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def _digest(t: torch.Tensor) -> str:
    h = hashlib.sha256(f"{t.dtype}{tuple(t.shape)}".encode())
    c = t.detach().to("cpu").contiguous()
    if c.numel():
        h.update(c.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _state_digests(module: nn.Module) -> dict[str, str]:
    items = list(module.named_parameters(remove_duplicate=False)) + list(module.named_buffers(remove_duplicate=False))
    return {k: _digest(v) for k, v in items}


def _weights(ep: Any) -> list[bytes]:
    """What of the program the task text does not show: every weight and constant, as bytes."""
    out = []
    for group in (ep.state_dict, ep.constants):
        for k in sorted(group):
            v = group[k]
            out.append(k.encode() + (_digest(v) if isinstance(v, torch.Tensor) else repr(v)).encode())
    return out


# -- the task file ------------------------------------------------------------

_DIR_PLACEHOLDER = "__KERNELWRIGHT_TASK_DIR__"

_TEMPLATE = '''"""{name}, converted from an nn.Module instance by kernelwright's Python API.

Model computes what torch.export captured of the module (program.pt2 in the folder named
below; the exported graph is printed further down) with the module's own weights. It runs
{runs}
when it can (see _load_module at the end), so that the judge's eager and torch.compile
baselines cost what the module costs when called. Its state_dict uses the module's own
names: the judge copies every parameter and buffer into ModelNew by name and shape, so
ModelNew should declare the same ones (listed below) and compute with them, not with
values of its own. Non-tensor arguments were fixed to the example's values when the
module was exported: forward always receives exactly these. get_inputs() makes fresh
random tensors with the example's shapes, dtypes and devices on every call (how, for each
input, is in its comment).
"""

import os

import torch
import torch.nn as nn
{meta}
_DIR = {directory}
_PROGRAM = os.path.join(_DIR, "program.pt2")

# Parameters and buffers (state_dict names, as in the module):
{state}
#
# The module, as printed by repr():
{repr}
#
# The module's class source:
{source}
#
# The exported graph, the computation the judge checks against (ATen operators;
# p_* are parameters, b_* buffers, c_* tensor constants of the module):
{graph}


def _module_names(module, state_dict, prefix, local_metadata):
    # Drop the "module." level: state_dict names are the module's own.
    inner = prefix + "module."
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner):]] = state_dict.pop(key)


def _wrapped_names(module, state_dict, prefix, *args):
    inner = prefix + "module."
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + key[len(prefix):]] = state_dict.pop(key)


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.module, direct = _load_module()
        # Bound once, here: a call of Model then costs what a call of the module costs (one
        # pass through nn.Module's dispatch, then its forward), with no second dispatch and
        # no attribute lookups on the way.
        self.call = self.module.forward if direct else self.module.__call__
        self.register_state_dict_post_hook(_module_names)
        self.register_load_state_dict_pre_hook(_wrapped_names)

    def forward(self{params}):
        return self.call({call})


def get_inputs():
    return [
{inputs}
    ]


def get_init_inputs():
    return []


# -- what Model runs -----------------------------------------------------------------
# The judge times Model itself as eager (and compiles it for torch.compile), so Model runs
# the cheapest faithful form of the module: the module itself, unpickled from module.pt,
# its classes imported from the source files recorded here (only while they are unchanged)
# or, for classes of the script that made the task, from its definitions in script.py;
# else the exported graph's operators without torch.export's call wrapper (graph.pt);
# else the exported program, whose wrapper costs tens of microseconds a call.
_MODULE = {module_file}
_DIRECT = {direct}
_SCRIPT = {script}  # script.py is imported under this name
_IMPORT_PATHS = {import_paths}
_SOURCES = {sources}
_GRAPH = {graph_file}
_GRAPH_CONSTANTS = {graph_constants}  # buffers of graph.pt that the module's state_dict leaves out


def _sha256(path):
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


def _import_script():
    import importlib.util
    import sys

    if _SCRIPT in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(_SCRIPT, os.path.join(_DIR, "script.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[_SCRIPT] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[_SCRIPT]
        raise


def _load_module():
    """(module, whether to call its forward directly): the first of module.pt, graph.pt and
    program.pt2 that loads (a module with forward hooks of its own is called whole)."""
    import sys

    if _MODULE and all(_sha256(path) == digest for path, digest in _SOURCES.items()):
        for path in reversed(_IMPORT_PATHS):
            if path not in sys.path:
                sys.path.insert(0, path)  # ahead, as in the process that made the task
        try:
            if _SCRIPT:
                _import_script()
            return torch.load(os.path.join(_DIR, _MODULE), weights_only=False), _DIRECT
        except Exception:
            pass  # the graph below computes the same, with the same weights
    if _GRAPH:
        try:
            graph = torch.load(os.path.join(_DIR, _GRAPH), weights_only=False)
            for name in _GRAPH_CONSTANTS:
                owner_name, _, leaf = name.rpartition(".")
                owner = graph.get_submodule(owner_name)
                owner.register_buffer(leaf, getattr(owner, leaf), persistent=False)
            return graph, True
        except Exception:
            pass
    return torch.export.load(_PROGRAM).module(), False
'''

_RUNS = {  # a line of the task's docstring
    "module": "the module itself (module.pt, its classes imported from their source files)",
    "graph": "the exported graph's operators without torch.export's call wrapper (graph.pt)",
    "program": "the exported program (program.pt2)",
}


def _task_text(module: nn.Module, ep: Any, program: nn.Module, args: tuple[Any, ...],
               meta: dict[str, Any] | None, device: str, baseline: Baseline) -> str:
    names = _arg_names(module, len(args))
    state = [f"#   {k}: {_tensor_text(v)}" for k, v in program.state_dict().items()] or ["#   (none)"]
    try:
        source = inspect.getsource(type(module))
    except (OSError, TypeError):
        source = f"(not available: {type(module).__qualname__} has no source file)"
    return _TEMPLATE.format(
        name=type(module).__name__,
        meta=f"\nKERNELWRIGHT = {meta!r}\n" if meta else "",
        directory=_DIR_PLACEHOLDER,
        runs=_RUNS[baseline.kind],
        module_file=repr("module.pt" if "module.pt" in baseline.files else None),
        direct=repr(baseline.direct),
        script=repr(baseline.script),
        import_paths=_listing([repr(p) for p in baseline.import_paths], "[]"),
        sources=_listing([f"{p!r}: {d!r}" for p, d in baseline.sources.items()], "{}"),
        graph_file=repr("graph.pt" if "graph.pt" in baseline.files else None),
        graph_constants=_listing([repr(c) for c in baseline.graph_constants], "[]"),
        state="\n".join(state),
        repr=_comment(repr(module)),
        source=_comment(textwrap.dedent(source)),
        graph=_comment(ep.graph_module.code.strip("\n")),
        params="".join(f", {n}" for n in names),
        call=", ".join(names),
        inputs="\n".join(f"        {_generator(a, device)},  # {n}: {_about(a)}" for n, a in zip(names, args)),
    )


def _generator(x: Any, device: str) -> str:
    """A Python expression making a fresh value like `x` under torch's RNG (or `x` itself)."""
    if not isinstance(x, torch.Tensor):
        return _literal(x)
    dims = [str(s) for s in x.shape]
    shape = f"({dims[0]},)" if len(dims) == 1 else "(" + ", ".join(dims) + ")"
    opts = f"dtype=torch.{str(x.dtype).removeprefix('torch.')}, device={device!r}"
    if x.dtype == torch.bool:
        frac = float(x.float().mean()) if x.numel() else 0.5
        return f"torch.rand({shape}, device={device!r}) < {frac:.6g}"
    if x.is_complex():
        return f"torch.randn({shape}, {opts})"
    if not x.is_floating_point():
        ilo, ihi = (int(x.min()), int(x.max())) if x.numel() else (0, 0)
        # randint's bound is exclusive and must fit the dtype: the dtype's maximum is never drawn.
        return f"torch.randint({ilo}, {min(ihi + 1, torch.iinfo(x.dtype).max)}, {shape}, {opts})"
    lo, hi, mean, std = _float_stats(x)
    if lo >= 0 and hi > lo:
        return f"torch.rand({shape}, {opts}) * {hi - lo:.6g} + {lo:.6g}"
    return f"torch.randn({shape}, {opts}) * {std:.6g} + {mean:.6g}"


def _float_stats(x: torch.Tensor) -> tuple[float, float, float, float]:
    """(min, max, mean, std) of the finite values; a standard normal's when there are none."""
    v = x.detach().to("cpu", torch.float64).reshape(-1)
    v = v[torch.isfinite(v)]
    if v.numel() == 0:
        return -1.0, 1.0, 0.0, 1.0
    std = float(v.std()) if v.numel() > 1 else 0.0
    return float(v.min()), float(v.max()), float(v.mean()), std if std > 0 and math.isfinite(std) else 1.0


def _about(x: Any) -> str:
    if not isinstance(x, torch.Tensor):
        return "fixed at export"
    kind = "like the example"
    if x.dtype == torch.bool:
        kind = "random bools, True as often as in the example"
    elif x.is_complex():
        kind = "complex standard normal"
    elif not x.is_floating_point():
        kind = "uniform integers over the example's [min, max]"
    else:
        lo, hi, _, _ = _float_stats(x)
        kind = ("uniform over the example's [min, max]" if lo >= 0 and hi > lo
                else "normal with the example's mean and standard deviation")
    return f"{_tensor_text(x)}, {kind}"


def _tensor_text(t: torch.Tensor) -> str:
    return f"{str(t.dtype).removeprefix('torch.')}[{', '.join(map(str, t.shape))}]"


def _literal(value: Any) -> str:
    """Python source for a plain value; floats that have no literal are spelled out."""
    if isinstance(value, float) and not math.isfinite(value):
        return f'float("{value}")'
    if type(value) in (tuple, list):
        items = ", ".join(_literal(v) for v in value)
        return f"({items},)" if type(value) is tuple and len(value) == 1 else (
            f"({items})" if type(value) is tuple else f"[{items}]")
    return repr(value)


def _arg_names(module: nn.Module, n: int) -> list[str]:
    """forward's own positional parameter names when they are usable, else x0, x1, ..."""
    try:
        params = list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        params = []
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:n]
    reserved = {"self", "os", "torch", "nn", "Model", "_DIR", "_PROGRAM"}
    if len(names) == n and len(set(names)) == n and all(
            s.isidentifier() and not keyword.iskeyword(s) and s not in reserved for s in names):
        return names
    return [f"x{i}" for i in range(n)]


def _listing(items: list[str], brackets: str) -> str:
    """Python source for a list or dict display of `items`, one a line."""
    if not items:
        return brackets
    return brackets[0] + "\n" + "".join(f"    {item},\n" for item in items) + brackets[1]


def _comment(text: str) -> str:
    lines = text.splitlines() or [""]
    if len(lines) > _MAX_LISTING_LINES:
        lines = lines[:_MAX_LISTING_LINES] + [f"... ({len(lines) - _MAX_LISTING_LINES} more lines)"]
    return "\n".join(("#   " + line).rstrip() for line in lines)


def _write_task_dir(directory: Path, files: dict[str, bytes]) -> None:
    """Create the directory with its files atomically; an existing complete one is kept."""
    if all((directory / n).is_file() for n in files):
        return
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.{os.getpid()}.{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for n, data in files.items():
            (tmp / n).write_bytes(data)
        if directory.exists() and not all((directory / n).is_file() for n in files):
            shutil.rmtree(directory, ignore_errors=True)  # left incomplete by hand
        try:
            os.replace(tmp, directory)
        except OSError:
            if not all((directory / n).is_file() for n in files):
                raise  # not a concurrent writer that finished first: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if metadata is None:
        return None
    from kernelwright.task.metadata import parse_metadata

    if not isinstance(metadata, Mapping):
        raise ConversionError(f"metadata must be a mapping like a task's KERNELWRIGHT dict, "
                              f"not {type(metadata).__name__}.")
    bad = sorted(set(metadata) - _META_KEYS)
    if bad:
        raise ConversionError(
            f"metadata keys {bad} do not apply to a converted module; it takes {sorted(_META_KEYS)}. "
            "A module is exported for the example's shapes only (shapes), must not change its inputs "
            "(mutates_inputs), and is judged in the mode it was exported in (call .eval() first "
            "rather than eval_mode).")
    parse_metadata(dict(metadata), "metadata")  # TaskError, a ValueError, for a bad value
    return {k: list(v) if isinstance(v, (tuple, list)) else v for k, v in metadata.items()}


def _snake(name: str) -> str:
    """ScaleShift -> scale_shift; anything but ASCII letters and digits becomes an underscore."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)
    snake = re.sub(r"[^A-Za-z0-9]+", "_", snake).strip("_").lower()
    return snake if snake and snake != "task" else "module"


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _names(dtypes: set[torch.dtype]) -> str:
    return ", ".join(sorted(str(d).removeprefix("torch.") for d in dtypes))
