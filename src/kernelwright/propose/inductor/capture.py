"""Run torch.compile (Inductor) on a task in a child process and capture what it generated.

The task is user code and Inductor may hang, crash or exhaust memory, so the work runs
in a child Python process (`main` below) with a timeout, in its own session, with a
private TORCHINDUCTOR_CACHE_DIR (and the FX graph cache off), so that runs never share
state. The parent (`capture`) only reads back a JSON file.

How the generated code is found, without relying on logging formats: a dynamo backend
wraps Inductor's `compile_fx`; the wrapper module Inductor writes for the graph is the
one new `.py` file under the private cache dir that defines `call(args)`. The backend
also sees dynamo's example inputs, which are the real parameter and input tensors, so
each argument of `call` is mapped to a parameter path or a forward input by identity.
The child then imports that wrapper itself, calls it with the mapped arguments and
compares with eager: a mapping or output-structure error is found here, not by the
judge. On CUDA, that call also runs Inductor's autotuner, whose chosen Triton configs
(block sizes, warps, stages) are recorded. On the CPU, the compiler command Inductor
ran for its C++ kernels is recorded (the child wraps `subprocess.Popen`, and compiles
run in-process with TORCHINDUCTOR_COMPILE_THREADS=1), because the kernels are only
valid with the same vector-ISA macro (their loops step by the vector width) and flags.

Each extra shape in the task's metadata gets its own compile: Inductor specialises to
shapes (dynamic=False), and so does the candidate, which dispatches on input shapes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelwright import constants as C
from kernelwright.sandbox import buildcache, confine, pch, quiet

# Macros that only make sense for Inductor's own wrapper builds; the candidate builds the
# kernels into a plain shared library of its own, where they would change what torch's headers declare.
_DROPPED_DEFINES = frozenset({"TORCH_INDUCTOR_CPP_WRAPPER", "STANDALONE_TORCH_HEADER",
                              "TORCH_INDUCTOR_PRECOMPILE_HEADERS"})
_KEPT_FLAG_PREFIXES = ("-O", "-f", "-m", "-std=", "-D", "-U")
_DROPPED_FLAGS = frozenset({"-fPIC", "-fpic", "-shared"})


# `python -c` rather than `-m`: runpy would import this module twice (package, then __main__).
_CHILD = "import sys; from kernelwright.propose.inductor.capture import main; sys.exit(main(sys.argv[1:]))"


class InductorError(Exception):
    """Why no standalone candidate could be made; str() is one sentence for the proposal."""


@dataclass(frozen=True)
class LaunchConfig:
    """The Triton config Inductor chose for one kernel (after autotuning, when it ran)."""

    kwargs: dict[str, int]
    num_warps: int
    num_stages: int
    grid_type: str | None


@dataclass(frozen=True)
class Variant:
    """One compiled specialization: the inputs it is for, the wrapper, and how to call it.

    `inputs` holds, per forward argument, ["tensor", shape, dtype] or ["value", repr];
    `args` holds, per argument of `call`, ["attr", "linear.weight"], ["input", 0] or
    ["global", "NAME"]; `output` is "single", "tuple" or "list".
    """

    inputs: list[list[Any]]
    wrapper: str
    args: list[list[Any]]
    output: str
    extern: dict[str, str] = field(default_factory=dict)  # extern_kernels name -> "torch.X" or a helper
    launch: dict[str, LaunchConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class Capture:
    """Everything the standalone writer needs, from one child run."""

    device: str
    torch_version: str
    variants: list[Variant]
    cflags: list[str]
    threads: int
    triton_helpers: str | None = None


def capture(task_source: str, device: str, timeout_s: float = 300.0, threads: int | None = None,
            task_path: Path | None = None) -> Capture:
    """Compile the task with Inductor in a child process; raise InductorError with a sentence.

    `task_path`, when the task is a file, is where its metadata is read from (a sidecar
    TOML beside it may declare the extra shapes that each need their own kernels).
    """
    with tempfile.TemporaryDirectory(prefix="kw-inductor-") as tmp:
        root = Path(tmp)
        copy = root / "task.py"
        copy.write_text(task_source)
        out_path = root / "capture.json"
        env = _child_env(root, device)
        meta_path = task_path.resolve() if task_path is not None else copy
        cmd = [sys.executable, "-c", _CHILD, str(copy), device, str(out_path), str(threads or _cpu_count()),
               str(meta_path)]
        proc = subprocess.Popen(cmd, env=env, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        try:
            with quiet.background(quiet.ProcessGroup(proc.pid)):  # stands still while the judge times
                _, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise InductorError(f"torch.compile did not finish within {timeout_s:.0f} s") from None
        except BaseException:  # Ctrl-C in the caller: no compile left running behind it
            _kill_group(proc)
            raise
        if not out_path.exists():
            tail = " ".join(err.decode(errors="replace").strip().splitlines()[-3:])[-300:]
            raise InductorError(f"the torch.compile process died (exit code {proc.returncode})"
                                + (f": {tail}" if tail else ""))
        return parse_capture(json.loads(out_path.read_text()))


def _child_env(root: Path, device: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("TORCH_COMPILE_DEBUG", "TORCH_LOGS", "TORCHINDUCTOR_FORCE_DISABLE_CACHES"):
        env.pop(name, None)
    env.update(
        TORCHINDUCTOR_CACHE_DIR=str(root / "inductor"),
        TRITON_CACHE_DIR=str(root / "triton"),
        # In-process compiles: the compiler commands are then visible to the child, and
        # no worker pool outlives a killed run.
        TORCHINDUCTOR_COMPILE_THREADS="1",
        TORCHINDUCTOR_FX_GRAPH_CACHE="0",
        TORCHINDUCTOR_AUTOGRAD_CACHE="0",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if (headers := _reference_headers(device)) is not None:
        env[pch.INDUCTOR_HEADERS_ENV] = headers
    # Without it, Inductor test-compiles and test-loads every vector ISA the CPU reports
    # (six g++ builds of ATen's vec headers here, 7-10 s of a 15 s capture, in every
    # capture: the cache dir is new each time). Trusting the CPU's flags picks the same
    # ISA wherever the compiler can build it; where it cannot, the child's own call of the
    # generated code fails to build and says so. An empty value restores the probes.
    env.setdefault("TORCHINDUCTOR_VEC_ISA_OK", "1")
    return env


def _reference_headers(device: str) -> str | None:
    """The reference worker's Inductor header directory, when its caches are kept (judge.pairs)."""
    if device != "cpu" or confine.landlock_abi() < 1:
        return None
    return str(buildcache.reference_dir(device) / "inductor" / "precompiled_headers")


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child's session (it and anything it started); call only while it is unreaped."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_capture(data: dict[str, Any]) -> Capture:
    """A Capture from the child's JSON (or `capture_json`'s); InductorError if the child failed."""
    if not data.get("ok"):
        raise InductorError(str(data.get("failure") or "torch.compile failed for an unknown reason"))
    variants = [Variant(inputs=v["inputs"], wrapper=v["wrapper"], args=v["args"], output=v["output"],
                        extern=v.get("extern", {}),
                        launch={k: LaunchConfig(**c) for k, c in v.get("launch", {}).items()})
                for v in data["variants"]]
    return Capture(device=data["device"], torch_version=data["torch"], variants=variants,
                   cflags=data.get("cflags", []), threads=int(data["threads"]),
                   triton_helpers=data.get("triton_helpers"))


def capture_json(cap: Capture) -> dict[str, Any]:
    """The JSON form of a capture that `parse_capture` reads back (recorded test fixtures use it)."""
    return {"ok": True, "device": cap.device, "torch": cap.torch_version, "threads": cap.threads,
            "cflags": list(cap.cflags), "triton_helpers": cap.triton_helpers,
            "variants": [dataclasses.asdict(v) for v in cap.variants]}


def compile_flags(command: str | list[str]) -> list[str]:
    """Code-generation flags of a compiler command: optimisation, ISA, language, macros.

    Include and library paths, outputs and sources are dropped: the candidate's build
    supplies its own. `-D X` pairs become `-DX`.
    """
    tokens = shlex.split(command) if isinstance(command, str) else [str(t) for t in command]
    flags: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in ("-D", "-U") and i + 1 < len(tokens):
            tok, i = tok + tokens[i + 1], i + 1
        i += 1
        if not tok.startswith(_KEPT_FLAG_PREFIXES) or tok in _DROPPED_FLAGS:
            continue
        if tok.startswith("-D") and tok[2:].split("=")[0] in _DROPPED_DEFINES:
            continue
        if tok not in flags:
            flags.append(tok)
    return flags


# --------------------------------------------------------------------------------------
# The child: everything below runs in the child process started by `capture`.
# --------------------------------------------------------------------------------------


class _Failure(Exception):
    """A reason the child reports as the proposal's failure sentence."""


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit]}" if text else type(exc).__name__


def _load_task(path: Path) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("kw_inductor_task", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _task_shapes(path: Path) -> tuple[list[dict[str, Any] | None], bool]:
    """The default shape (None) plus the task metadata's extra shapes, and its eval_mode."""
    import ast

    from kernelwright.task.metadata import read_metadata

    meta = read_metadata(path, ast.parse(path.read_text()))
    return [None, *meta.shapes], meta.eval_mode


def _make_inputs(task: Any, shape: dict[str, Any] | None, device: str) -> list[Any]:
    """get_inputs() with the shape's module globals set, as the judge does, moved to the device."""
    import torch

    saved = {k: getattr(task, k) for k in (shape or {}) if hasattr(task, k)}
    try:
        for k, v in (shape or {}).items():
            setattr(task, k, v)
        torch.manual_seed(0)
        inputs = list(task.get_inputs())
    finally:
        for k in shape or {}:
            if k in saved:
                setattr(task, k, saved[k])
            else:
                delattr(task, k)
    return [x.to(device) if isinstance(x, torch.Tensor) else x for x in inputs]


def _with_defaults(model: Any, inputs: list[Any]) -> list[Any]:
    """The forward's positional arguments with defaults filled in, as ModelNew.forward sees them."""
    import inspect

    try:
        bound = inspect.signature(model.forward).bind(*inputs)
    except (TypeError, ValueError):
        return inputs
    bound.apply_defaults()
    return list(bound.args)


def _input_specs(inputs: list[Any]) -> list[list[Any]]:
    import torch

    specs: list[list[Any]] = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            specs.append(["tensor", list(x.shape), str(x.dtype)])
        elif x is None or isinstance(x, (bool, int, float, str)):
            specs.append(["value", repr(x)])
        else:
            raise _Failure(f"a forward input of type {type(x).__name__} cannot be passed to generated code")
    return specs


def _wrapper_files(cache: Path) -> set[Path]:
    return {p for p in cache.glob("*/*.py") if "def call(" in p.read_text(errors="replace")}


class _CompilerLog:
    """Records the compiler commands Inductor runs (it builds its C++ kernels in-process)."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def install(self) -> None:
        original = subprocess.Popen.__init__
        log = self.commands

        def init(popen: Any, args: Any, *a: Any, **k: Any) -> None:
            log.append(shlex.split(args) if isinstance(args, str) else [str(x) for x in args])
            original(popen, args, *a, **k)

        subprocess.Popen.__init__ = init  # type: ignore[method-assign]

    def kernel_flags(self) -> list[str]:
        """Flags of the first command that built a kernel (a .cpp including cpp_prefix.h)."""
        for cmd in self.commands:
            for tok in cmd:
                if tok.endswith(".cpp") and os.path.isfile(tok) and "cpp_prefix.h" in Path(tok).read_text(
                        errors="replace"):
                    return compile_flags([t for t in cmd[1:] if t != tok])
        return []


def _arg_map(example_inputs: list[Any], model: Any, inputs: list[Any], task: Any) -> list[list[Any]]:
    """Where each graph input comes from, found by identity with the real tensors."""
    import torch

    owners: dict[int, list[Any]] = {}
    for name, t in model.named_buffers(remove_duplicate=False):
        owners.setdefault(id(t), ["attr", name])
    for name, t in model.named_parameters(remove_duplicate=False):
        owners.setdefault(id(t), ["attr", name])
    for prefix, sub in model.named_modules(remove_duplicate=False):
        for attr, value in vars(sub).items():
            if isinstance(value, torch.Tensor):
                owners.setdefault(id(value), ["attr", f"{prefix}.{attr}" if prefix else attr])
    for name, value in vars(task).items():
        if isinstance(value, torch.Tensor):
            owners.setdefault(id(value), ["global", name])
    for i, x in enumerate(inputs):
        if isinstance(x, torch.Tensor):
            owners[id(x)] = ["input", i]
    out = []
    for e in example_inputs:
        if not isinstance(e, torch.Tensor):
            raise _Failure(f"the compiled graph takes a non-tensor input ({type(e).__name__}), "
                           "which generated code cannot be handed reliably")
        if id(e) not in owners:
            raise _Failure("the compiled graph takes a tensor that is neither a forward input "
                           "nor an attribute of the model")
        out.append(owners[id(e)])
    return out


def _resolve(entry: list[Any], model: Any, inputs: list[Any], task: Any) -> Any:
    kind, where = entry
    if kind == "input":
        return inputs[where]
    if kind == "global":
        return getattr(task, where)
    obj = model
    for part in where.split("."):
        obj = getattr(obj, part)
    return obj


def _import_wrapper(path: Path, index: int) -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"kw_inductor_wrapper_{index}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _output_kind(eager: Any, outs: Any) -> str:
    """How the graph's output list maps to the forward's return value; _Failure if unsure."""
    import torch

    outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
    if isinstance(eager, torch.Tensor):
        kind, expected = "single", [eager]
    elif isinstance(eager, (tuple, list)) and all(isinstance(e, torch.Tensor) for e in eager):
        kind, expected = ("tuple" if isinstance(eager, tuple) else "list"), list(eager)
    else:
        raise _Failure(f"the forward returns {type(eager).__name__}, not a tensor or a tuple of tensors")
    if len(outs) != len(expected):
        raise _Failure(f"the compiled graph returns {len(outs)} values where the forward returns "
                       f"{len(expected)} (an output aliases an input or is a constant)")
    for got, want in zip(outs, expected):
        if not isinstance(got, torch.Tensor) or got.shape != want.shape or got.dtype != want.dtype:
            raise _Failure("the compiled graph's outputs differ in shape or dtype from the forward's")
        if want.numel() and not _reproduces(got, want):
            raise _Failure("calling Inductor's generated code directly did not reproduce the forward's "
                           "output (the model may be random or stateful)")
    return kind


def _reproduces(got: Any, want: Any, chunk: int = C.COMPARE_CHUNK_ELEMENTS) -> bool:
    """allclose(got, want) at 1e-3 of want's largest magnitude, a stretch at a time in float64.

    Whole, the float64 copies of a 6 GiB output (KernelBench's level1/19 ReLU) asked a
    capture that already held the inputs and both outputs for 12 GiB more and ran out of an
    H100's memory; a stretch costs a few tens of MiB.
    """
    import torch

    g, w = got.reshape(-1), want.reshape(-1)
    stretches = range(0, w.numel(), chunk)
    # The scale of the finite values: one inf or NaN must not make every difference tolerable.
    scale = max(float(w[a:a + chunk].double().abs().nan_to_num(0.0, posinf=0.0, neginf=0.0).max())
                for a in stretches)
    atol = 1e-3 * max(scale, 1e-6)
    return all(torch.allclose(g[a:a + chunk].double(), w[a:a + chunk].double(), rtol=1e-3, atol=atol,
                              equal_nan=True) for a in stretches)


def _extern_map(wrapper: str) -> dict[str, str]:
    """extern_kernels.X used by the wrapper -> the public torch function it is, or a known helper."""
    import re

    import torch
    from torch._inductor.select_algorithm import extern_kernels

    out = {}
    for name in sorted(set(re.findall(r"\bextern_kernels\.(\w+)", wrapper))):
        fn = getattr(extern_kernels, name, None)
        if fn is not None and getattr(torch, name, None) is fn:
            out[name] = f"torch.{name}"
        elif name == "bias_addmm":
            out[name] = "_ind_bias_addmm"
        else:
            raise _Failure(f"the generated code calls Inductor's extern kernel {name!r}, "
                           "which has no public torch equivalent")
    return out


def _launch_configs(module: Any, wrapper: str) -> dict[str, dict[str, Any]]:
    """The config each Triton kernel of the wrapper launched with (autotuned when it had a choice)."""
    import re

    configs: dict[str, dict[str, Any]] = {}
    for name in re.findall(r"^(\w+) = async_compile\.triton\(", wrapper, flags=re.M):
        kernel = getattr(module, name, None)
        launchers = list(getattr(kernel, "launchers", None) or [])
        options = list(getattr(kernel, "configs", None) or [])
        if launchers:
            cfg = launchers[0].config
        elif len(options) == 1 or (options and os.environ.get("TRITON_INTERPRET") == "1"):
            cfg = options[0]  # what Inductor launches without autotuning (and always when interpreting)
        else:
            raise _Failure(f"no single launch config could be read for Triton kernel {name}")
        meta = getattr(kernel, "inductor_meta", None) or {}
        configs[name] = {"kwargs": {k: int(v) for k, v in dict(cfg.kwargs).items()},
                         "num_warps": int(cfg.num_warps), "num_stages": int(cfg.num_stages),
                         "grid_type": meta.get("grid_type")}
    return configs


def _capture_variant(index: int, model: Any, inputs: list[Any], task: Any, cache: Path,
                     device: str) -> dict[str, Any]:
    import torch
    from torch._inductor.compile_fx import compile_fx

    graphs: list[tuple[list[Any], list[Path]]] = []

    def backend(gm: Any, example_inputs: list[Any]) -> Any:
        before = _wrapper_files(cache)
        compiled = compile_fx(gm, example_inputs)
        graphs.append((list(example_inputs), sorted(_wrapper_files(cache) - before)))
        return compiled

    with torch.no_grad():
        eager = model(*inputs)
        torch._dynamo.reset()
        try:
            torch.compile(model, backend=backend, fullgraph=True, dynamic=False)(*inputs)
        except Exception as exc:  # graph breaks, unsupported ops, lowering and compile errors
            raise _Failure(f"torch.compile failed ({_one_line(exc)})") from None
    if len(graphs) != 1:
        raise _Failure(f"torch.compile produced {len(graphs)} graphs for one forward; expected exactly one")
    example_inputs, files = graphs[0]
    if len(files) != 1:
        raise _Failure(f"found {len(files)} Inductor wrapper modules for one graph; expected exactly one")
    args = _arg_map(example_inputs, model, inputs, task)
    wrapper = files[0].read_text()
    module = _import_wrapper(files[0], index)
    with torch.no_grad():
        try:
            outs = module.call([_resolve(a, model, inputs, task) for a in args])
        except Exception as exc:
            raise _Failure(f"calling Inductor's generated code directly failed ({_one_line(exc)})") from None
    if device == "cuda":
        torch.cuda.synchronize()
    return {"inputs": _input_specs(inputs), "wrapper": wrapper, "args": args,
            "output": _output_kind(eager, outs), "extern": _extern_map(wrapper),
            "launch": _launch_configs(module, wrapper) if device == "cuda" else {}}


def _child(task_path: Path, device: str, threads: int, meta_path: Path) -> dict[str, Any]:
    log = _CompilerLog()
    log.install()
    import torch

    from kernelwright.sandbox import pch

    pch.share_inductor_headers()  # the reference worker's directory: its baseline compile finds the header

    if device == "cuda" and not torch.cuda.is_available():
        raise _Failure("CUDA was asked for, but this machine has no CUDA device")
    torch.set_num_threads(threads)
    try:
        task = _load_task(task_path)
        shapes, eval_mode = _task_shapes(meta_path if meta_path.is_file() else task_path)
        torch.manual_seed(0)
        model = task.Model(*task.get_init_inputs())
    except Exception as exc:
        raise _Failure(f"the task could not be loaded and built ({_one_line(exc)})") from None
    if not isinstance(model, torch.nn.Module):
        raise _Failure("the task's Model is not a torch.nn.Module")
    model = model.eval() if eval_mode else model
    model = model.to(device)
    cache = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    variants: list[dict[str, Any]] = []
    for shape in shapes:
        inputs = _with_defaults(model, _make_inputs(task, shape, device))
        if any(v["inputs"] == _input_specs(inputs) for v in variants):
            continue
        variants.append(_capture_variant(len(variants), model, inputs, task, cache, device))
    result: dict[str, Any] = {"ok": True, "device": device, "torch": torch.__version__,
                              "threads": threads, "variants": variants, "cflags": []}
    if device == "cpu":
        result["cflags"] = log.kernel_flags()
        if any("cpp_pybinding" in v["wrapper"] for v in variants) and not result["cflags"]:
            raise _Failure("could not see the compiler flags Inductor used for its C++ kernels")
    else:
        from torch._inductor.runtime import triton_helpers

        result["triton_helpers"] = Path(triton_helpers.__file__).read_text()
    return result


def main(argv: list[str]) -> int:
    """Child entry point: TASK DEVICE OUT_JSON THREADS META_PATH; writes OUT_JSON unless killed."""
    task_path, device, out_path, threads, meta_path = (Path(argv[0]), argv[1], Path(argv[2]), int(argv[3]),
                                                       Path(argv[4]))
    try:
        result = _child(task_path, device, threads, meta_path)
    except _Failure as f:
        result = {"ok": False, "failure": str(f)}
    except Exception as exc:  # anything else is still a sentence, never a traceback for the caller
        result = {"ok": False, "failure": f"capturing Inductor's output failed ({_one_line(exc)})"}
    out_path.write_text(json.dumps(result))
    return 0
