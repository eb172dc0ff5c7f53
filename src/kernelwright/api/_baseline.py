"""What a converted task's `Model` runs, which is what the judge times as eager and torch.compile.

The judge times `Model` (eager) and `torch.compile(Model)` in its reference worker and
the candidate's `ModelNew` in another, both called by the same harness. For a module's
speedup to mean "faster than my module", `Model` must cost what the caller's module
costs when the caller calls it. The exported program does not: `ExportedProgram.module()`
wraps every call in pytree flattening, input guards and hooks (about 50 us a call on a
CPU, more than a small module's own work), which would count against eager alone.

So beside the export (still the task's canonical computation, the description LLM
proposers read, and the last resort) a task carries, in order of preference:

1. `module.pt`: the caller's module itself, pickled by reference (`torch.save`). The
   worker imports its classes from their source files, as the caller's process did, so
   eager runs the caller's own code. Shipped only when every class and function the
   pickle names is importable in a fresh process by its module name (not local to a
   function), and a reloaded copy reproduces the module on the example. The source files
   are recorded with their SHA-256: a file changed since the task was made (which also
   makes a new task, as the digests are part of its text) leaves the old task running the
   export instead of code that may compute something else. Classes defined in the script
   being run (`__main__`) cannot be imported without running the script, so the script's
   imports, classes, functions and literal constants (nothing it runs) are copied into
   `script.py` beside the task and the pickle names them from there.
2. `graph.pt`: the exported graph's ATen operators as a plain `torch.fx.GraphModule`,
   without torch.export's flattening, guards and hooks. Not the module itself: the same
   operators, each called through `torch.ops` (about 0.5 us more per operator than
   `torch.mul` and friends on a CPU), without the module's own Python (its submodules'
   calls). Within a few microseconds of the module, where the wrapper is tens.
3. `program.pt2` through `.module()`, when neither could be made.

Timing the export on both sides instead (the candidate wrapped in the same call path) was
rejected: the wrapper's fixed cost would then be added to every kernel's time, squeezing
every real speedup over a small module towards 1x, and it is not what the caller runs.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import hashlib
import io
import os
import pickle
import pickletools
import pydoc
import sys
import types
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn as nn

# Modules every worker imports without help: the standard library (with the Python 2 names
# pickle protocol 2 writes for builtins) and torch.
_ALWAYS_IMPORTABLE = frozenset(sys.stdlib_module_names) | {"__builtin__", "copy_reg", "exceptions", "torch"}
_SCRIPT_MODULES = ("__main__", "__mp_main__")
# Checks the export adds to a graph (not operations of the module): dtype, device and layout
# of an input that a conversion is about to convert.
_ASSERTIONS = frozenset(getattr(torch.ops.aten, name).default for name in ("_assert_tensor_metadata",)
                        if hasattr(torch.ops.aten, name))

Disagreement = Callable[[Any, Any], Optional[str]]


@dataclass(frozen=True)
class Baseline:
    """What the task's Model runs, the files that carry it, and a sentence saying which it is.

    `kind` is "module" (the caller's module itself), "graph" (the exported graph's operators)
    or "program" (the exported program with torch.export's call wrapper). `files` are
    written beside the task; `import_paths` are the sys.path entries the module's classes
    import from, `sources` their source files' SHA-256, `script` the module name that
    script.py (the running script's definitions, when the module's classes are among
    them) is imported under; `direct` says Model may call the module's forward itself (it
    has no forward hooks of its own to run). `graph_constants` are the buffers of graph.pt
    that the module does not save in its state_dict (the export's constants and
    non-persistent buffers, which GraphModule makes persistent).
    """

    kind: str
    files: dict[str, bytes] = field(default_factory=dict)
    import_paths: tuple[str, ...] = ()
    sources: dict[str, str] = field(default_factory=dict)
    direct: bool = True
    note: str = ""
    graph_constants: tuple[str, ...] = ()
    script: str | None = None  # the module name script.py is imported under


def choose_baseline(module: nn.Module, program: nn.Module, args: tuple[Any, ...], name: str,
                    disagreement: Disagreement) -> Baseline:
    """The caller's module when it can be shipped, else the lean graph, else the program.

    `program` is the loaded export (`.module()`), already checked against `module` on
    `args`; `disagreement(a, b)` says how two outputs differ (None when they agree).
    """
    with torch.no_grad():
        expected = module(*_clone(args))
    graph = _lean_graph(program, args, expected, disagreement)
    shipped = _ship_module(module, args, expected, disagreement)
    files = {"graph.pt": graph[0]} if graph is not None else {}
    constants = graph[1] if graph is not None else ()
    if isinstance(shipped, Baseline):
        return dataclasses.replace(shipped, files={**shipped.files, **files}, graph_constants=constants)
    why = shipped
    if graph is not None:
        return Baseline("graph", files, graph_constants=constants, note=(
            f"eager and torch.compile baselines: the exported graph's ATen operators, not {name} itself ({why}); "
            "each operator called through torch.ops costs about 0.5 us more than the module's own calls on a "
            f"CPU, while {name}'s own Python (submodule calls) is left out, so a speedup over a module that "
            f"takes microseconds is approximate. Define {name} at the top level of an importable module to "
            "have it timed itself"))
    return Baseline("program", {}, direct=False, note=(
        f"eager and torch.compile baselines: the exported program with torch.export's call wrapper, not {name} "
        f"itself ({why}; its graph could not be run without the wrapper either); the wrapper costs tens of "
        "microseconds a call, so speedups over a small module read high"))


# -- the caller's module --------------------------------------------------------


def _ship_module(module: nn.Module, args: tuple[Any, ...], expected: Any,
                 disagreement: Disagreement) -> Baseline | str:
    """The module pickled by reference with where its classes import from, or why it cannot be."""
    cls = type(module)
    script = _Script.of_main()
    buf = io.BytesIO()
    try:
        # Protocol 2 names every global in one GLOBAL opcode, which `_globals` reads back.
        torch.save(module, buf, pickle_module=_pickle_module(script), pickle_protocol=2)
    except Exception as exc:  # pickle raises many types for what it cannot pickle
        return f"it cannot be pickled by reference: {_first_line(exc)}"
    data = buf.getvalue()
    names = _globals(data)
    if names is None:
        return "its pickle could not be read back"
    paths: list[str] = []
    sources: dict[str, str] = {}
    for mod_name, qualname in sorted(names):
        if mod_name in _SCRIPT_MODULES:
            return (f"{qualname} is defined in {mod_name} with no script file to copy it from (a notebook or "
                    "`python -c`), which the judge's processes cannot import")
        if mod_name.split(".")[0] in _ALWAYS_IMPORTABLE:
            continue
        mod = sys.modules.get(mod_name)
        file = getattr(mod, "__file__", None)
        if not file:
            return f"{mod_name}.{qualname} comes from a module with no source file"
        # As imported, symbolic links included: the names on the path are what `import` matched.
        path = Path(os.path.abspath(file))
        root = _import_root(mod_name, path)
        if root is None or not path.is_file():
            return (f"{mod_name} was not imported by its name from a source file in a directory ({file}), so "
                    "another process cannot import it")
        if root not in paths:
            paths.append(root)
        sources[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    used = script if script is not None and script.used else None
    if used is not None:
        # What the script imports from beside itself, it imports from its own folder.
        paths.insert(0, used.folder)
        used.register()
    try:
        reloaded = torch.load(io.BytesIO(data), weights_only=False)
        with torch.no_grad():
            out = reloaded(*_clone(args))
        worst = disagreement(out, expected)
        if worst is None and set(reloaded.state_dict()) != set(module.state_dict()):
            worst = "other state_dict names"
    except Exception as exc:
        worst = f"it fails: {_first_line(exc)}"
    if worst is not None:
        if used is not None:
            used.unregister()
        return f"a copy reloaded from its pickle does not reproduce it ({worst})" + (
            f"; its classes were copied from {used.file} without what the script runs" if used else "")
    direct = not (module._forward_hooks or module._forward_pre_hooks)
    files = {"module.pt": data}
    where = f"imported from {cls.__module__} as your process imports it"
    if used is not None:
        files["script.py"] = used.source.encode()
        where = f"its script's definitions copied from {used.file} into the task's script.py"
    return Baseline("module", files, tuple(paths), sources, direct, script=used.name if used else None, note=(
        f"eager and torch.compile baselines: {cls.__qualname__} itself ({where}), called as you call it"))


class _Script:
    """The definitions of the script being run (`__main__`), to import under a name of their own.

    Kept: imports, classes, functions (with their decorators) and assignments of literal
    constants, verbatim and in order; dropped: everything the script runs (calls, loops,
    `if __name__ == "__main__":`, assignments of computed values). A class that needs what
    was dropped fails the reload check, and the module is not shipped.
    """

    def __init__(self, file: str, source: str) -> None:
        self.file = file
        self.folder = str(Path(file).parent)
        self.source = source
        self.name = "kw_script_" + hashlib.sha256(source.encode()).hexdigest()[:16]
        self.used = False
        self._added = False

    @classmethod
    def of_main(cls) -> _Script | None:
        """The running script's definitions, or None (no script file: a notebook, `python -c`)."""
        main = sys.modules.get("__main__")
        file = getattr(main, "__file__", None)
        if not isinstance(file, str) or not file.endswith(".py"):
            return None
        try:
            text = Path(file).read_text(encoding="utf-8")
            tree = ast.parse(text)
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            return None
        lines = text.splitlines()
        kept = []
        for node in tree.body:
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                if node.value is None or not _is_literal(node.value):
                    continue
            elif not isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef)):
                continue
            decorators = getattr(node, "decorator_list", [])
            start = min([node.lineno] + [d.lineno for d in decorators])
            kept.append("\n".join(lines[start - 1:node.end_lineno]))
        header = f"# The definitions of {file}, copied by kernelwright (what the script runs is left out).\n\n"
        return cls(os.path.abspath(file), header + "\n\n\n".join(kept) + "\n") if kept else None

    def global_name(self, obj: Any) -> str | None:
        """`name.qualname` for a class or function of the script, None for anything else."""
        if not isinstance(obj, (type, types.FunctionType)) or \
                getattr(obj, "__module__", None) not in _SCRIPT_MODULES:
            return None
        qualname = getattr(obj, "__qualname__", "")
        found: Any = sys.modules.get(obj.__module__)
        for part in qualname.split("."):
            found = getattr(found, part, None)
        return f"{self.name}.{qualname}" if found is obj else None

    def register(self) -> None:
        """Import the copy under its own name in this process, for the reload check (kept after it,
        as the task file would import it again in this process)."""
        if self.name in sys.modules:
            return
        module = types.ModuleType(self.name)
        module.__file__ = self.file
        sys.modules[self.name] = module
        self._added = True
        # Its own file name: the copy's line numbers are not the script's.
        code = compile(self.source, f"{self.file} (kernelwright's copy of its definitions)", "exec")
        exec(code, module.__dict__)  # noqa: S102 - the caller's own code

    def unregister(self) -> None:
        """Forget the copy again when it did not reproduce the module."""
        if self._added:
            sys.modules.pop(self.name, None)


def _pickle_module(script: _Script | None) -> Any:
    """A pickle module for torch.save whose Pickler names the script's classes from its copy.

    `pydoc.locate("kw_script_<hash>.Block")` imports them on load, once the task has
    imported script.py under that name.
    """

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            name = script.global_name(obj) if script is not None else None
            if name is None:
                return NotImplemented
            assert script is not None
            script.used = True
            return pydoc.locate, (name,)

    return types.SimpleNamespace(__name__="pickle", Pickler=Pickler)


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _globals(data: bytes) -> set[tuple[str, str]] | None:
    """(module, qualified name) of every global a torch.save archive's pickle imports; None if unreadable."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("/data.pkl"))
            ops = list(pickletools.genops(archive.read(pkl)))
    except Exception:
        return None
    out: set[tuple[str, str]] = set()
    for op, arg, _ in ops:
        if op.name == "STACK_GLOBAL":
            return None  # names taken from the stack: not read here, so not vouched for
        if op.name == "GLOBAL" and isinstance(arg, str):
            mod_name, _, qualname = arg.partition(" ")
            out.add((mod_name, qualname))
    return out


def _import_root(mod_name: str, file: Path) -> str | None:
    """The directory that `import mod_name` finds `file` from, or None when the name and path disagree."""
    parts = mod_name.split(".")
    path = file
    if path.name.startswith("__init__."):
        path = path.parent
    elif path.name.split(".")[0] != parts[-1]:
        return None
    else:
        path = path.with_name(parts[-1])
    for part in reversed(parts):
        if path.name != part:
            return None
        path = path.parent
    return str(path)


# -- the exported graph without its call wrapper ----------------------------------


def _lean_graph(program: nn.Module, args: tuple[Any, ...], expected: Any,
                disagreement: Disagreement) -> tuple[bytes, tuple[str, ...]] | None:
    """The exported graph as a GraphModule taking the positional arguments as they are and
    returning the module's output: no pytree flattening, no guards, no hooks. Returns it
    saved with torch.save and checked after a round trip, with the names of its buffers
    that must not be in its state_dict (see `_unsave_constants`); None when it cannot be
    made or differs."""
    from torch.utils._pytree import tree_leaves

    try:
        flat = [n for n in program.graph.nodes if n.op == "placeholder"]  # one per pytree leaf
        counts = [len(tree_leaves(a)) for a in args]
        if sum(counts) != len(flat):
            return None
        graph = torch.fx.Graph()  # a fresh graph: plain code generation, no tracer to pickle
        env: dict[torch.fx.Node, torch.fx.Node] = {}
        values: list[torch.fx.Node] = []  # placeholders of the plain-value arguments
        start = 0
        for i, (arg, count) in enumerate(zip(args, counts)):
            node = graph.placeholder(flat[start].name if count else f"arg{i}")
            # A tensor is one leaf; a plain value (any number of leaves: a tuple has one per
            # item) was specialised into the graph and feeds only the guards, which go below.
            for old in flat[start:start + count]:
                env[old] = node
            if not isinstance(arg, torch.Tensor):
                values.append(node)
            start += count
        copied = graph.graph_copy(program.graph, env)
        for node in list(graph.nodes):
            # The export's input guards and metadata assertions check shapes, dtypes, devices
            # and constants that the judge never varies, and the module itself never checks.
            if not node.users and (node.op == "call_module" and str(node.target).startswith("_guards")
                                   or node.op == "call_function" and node.target in _ASSERTIONS):
                graph.erase_node(node)
        if any(node.users for node in values):
            return None
        leaves = list(copied) if isinstance(copied, (tuple, list)) else [copied]
        if isinstance(expected, torch.Tensor):
            if len(leaves) != 1:
                return None
            graph.output(leaves[0])
        else:
            graph.output(type(expected)(leaves))
        lean = torch.fx.GraphModule(program, graph)
        keep = set(program.state_dict())
        constants = tuple(sorted(k for k, _ in lean.named_buffers() if k not in keep))
        buf = io.BytesIO()
        torch.save(lean, buf)
        data = buf.getvalue()
        reloaded = torch.load(io.BytesIO(data), weights_only=False)
        _unsave_constants(reloaded, constants)
        with torch.no_grad():
            out = reloaded.forward(*_clone(args))
    except Exception:  # FX internals differ between torch versions: the program remains
        return None
    if type(out) is not type(expected) or disagreement(out, expected) is not None or \
            set(reloaded.state_dict()) != keep:
        return None
    return data, constants


def _unsave_constants(graph_module: nn.Module, names: tuple[str, ...]) -> None:
    """Take these buffers out of the state_dict (the task file does the same after loading graph.pt).

    GraphModule registers every tensor attribute it copies as a persistent buffer, also when
    it is rebuilt from a pickle, so the export's constants and non-persistent buffers come
    back in its state_dict; the module's state_dict, which the judge copies into ModelNew,
    has none of them.
    """
    for name in names:
        owner_name, _, leaf = name.rpartition(".")
        owner = graph_module.get_submodule(owner_name)
        owner.register_buffer(leaf, getattr(owner, leaf), persistent=False)


def _clone(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(copy.deepcopy(a) if not isinstance(a, torch.Tensor) else a.clone() for a in args)


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = lines[0] if lines else ""
    text = text if len(text) <= 200 else text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
