"""Read and statically validate tasks and candidates, without executing them.

The judge process never imports either file: tasks run only in the reference
worker, candidates only in the candidate worker. Here we parse them, so that a
missing `Model` or a wrong signature is reported clearly before any process starts.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from kernelwright.task.metadata import TaskError, TaskMeta, read_metadata


class InputError(ValueError):
    """A file or argument given to kernelwright is unusable: exit code 2."""


@dataclass(frozen=True)
class Signature:
    """Parameter names of a class's __init__ and forward (None when not statically known)."""

    init: tuple[str, ...] | None
    forward: tuple[str, ...] | None


@dataclass(frozen=True)
class TaskSource:
    """A KernelBench-format task file, parsed."""

    path: Path
    source: str
    meta: TaskMeta
    signature: Signature


@dataclass(frozen=True)
class CandidateSource:
    """A candidate file defining ModelNew; `problem` is set when it cannot be used."""

    path: Path
    source: str
    signature: Signature | None
    problem: str | None


def read_text(path: str | Path, what: str) -> tuple[Path, str]:
    """Read a UTF-8 file or raise InputError with a one-line reason."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} file not found: {p}")
    if not p.is_file():
        raise InputError(f"{what} is not a file: {p}")
    try:
        return p, p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} file {p}: {exc}") from exc


def load_task(path: str | Path) -> TaskSource:
    """Parse a task; raise TaskError when it lacks Model, get_inputs or get_init_inputs."""
    p, source = read_text(path, "task")
    try:
        tree = ast.parse(source, filename=str(p))
    except SyntaxError as exc:
        raise TaskError(f"task {p} is not valid Python: {exc.msg} (line {exc.lineno})") from exc
    names = _top_level_names(tree)
    missing = [n for n in ("Model", "get_inputs", "get_init_inputs") if n not in names]
    if missing:
        raise TaskError(
            f"task {p} does not define {', '.join(missing)}: a KernelBench task needs "
            "class Model(nn.Module), get_inputs() and get_init_inputs()")
    sig = class_signature(tree, "Model")
    return TaskSource(path=p, source=source, meta=read_metadata(p, tree),
                      signature=sig or Signature(None, None))


def load_candidate(path: str | Path, task: TaskSource) -> CandidateSource:
    """Parse a candidate. Syntax errors and a missing ModelNew are verdicts, not exit 2."""
    p, source = read_text(path, "candidate")
    try:
        tree = ast.parse(source, filename=str(p))
    except SyntaxError as exc:
        return CandidateSource(p, source, None,
                               f"the candidate is not valid Python: {exc.msg} (line {exc.lineno})")
    if "ModelNew" not in _top_level_names(tree):
        return CandidateSource(p, source, None, "the candidate does not define ModelNew")
    sig = class_signature(tree, "ModelNew")
    problem = signature_mismatch(task.signature, sig) if sig else None
    return CandidateSource(p, source, sig, problem)


def signature_mismatch(ref: Signature, cand: Signature) -> str | None:
    """A sentence when ModelNew's arguments differ from Model's, else None."""
    for what, a, b in (("constructor", ref.init, cand.init), ("forward", ref.forward, cand.forward)):
        if a is None or b is None:
            continue
        if len(a) != len(b):
            return (f"ModelNew's {what} takes ({', '.join(b)}) but Model's takes ({', '.join(a)}): "
                    "the arguments must match")
    return None


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def class_signature(tree: ast.Module, name: str) -> Signature | None:
    """Positional parameter names of `name.__init__` and `name.forward`, when plainly written."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            methods = {f.name: f for f in node.body if isinstance(f, ast.FunctionDef)}
            return Signature(_params(methods.get("__init__")), _params(methods.get("forward")))
    return None


def _params(fn: ast.FunctionDef | None) -> tuple[str, ...] | None:
    if fn is None or fn.args.vararg or fn.args.kwarg:
        return None
    args = [a.arg for a in fn.args.posonlyargs + fn.args.args][1:]
    return tuple(args)
