"""The trust boundary in the layout: worker code imports nothing of the judge, and back.

`kernelwright.worker` runs inside sandboxed worker processes (in the candidate role, next to
the adversary); `kernelwright.judge` is the trusted side. The two share only
`kernelwright.protocol`. Checked twice: statically, over every import statement in the
package, and at run time, in real workers of both roles.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

import kernelwright
from kernelwright.protocol import Op, Role, SetupRequest, Status
from kernelwright.sandbox.process import SandboxConfig, Worker

SRC = Path(kernelwright.__file__).resolve().parent
PACKAGE = "kernelwright"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import a module can execute: at module level, in functions and classes.

    Left out: `if TYPE_CHECKING:` blocks (never run) and a module-level `__getattr__`
    (PEP 562: what it imports loads only when someone asks for that attribute, as
    `kernelwright.sandbox` does for its spawning side).
    """
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.orelse:
                    visit(stmt, top)
                continue
            if top and isinstance(child, ast.FunctionDef) and child.name == "__getattr__":
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                found.append(child)
            visit(child, False)

    visit(tree, True)
    return found


def _imports(name: str, source: str | None = None) -> set[str]:
    """The kernelwright modules a module imports (a package import counts its __init__ too)."""
    path = MODULES.get(name, SRC.parent / (name.replace(".", "/") + ".py"))
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    out: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}".rstrip(".")
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            if target.split(".")[0] != PACKAGE:
                continue
            parts = target.split(".")
            # Every package on the way is imported too: `import a.b.c` runs a and a.b.
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                if prefix in MODULES:
                    out.add(prefix)
    out.discard(name)
    return out


def _closure(roots: list[str]) -> dict[str, str]:
    """Every module reachable from `roots`, each with the module that first imported it."""
    seen: dict[str, str] = {r: "" for r in roots}
    todo = list(roots)
    while todo:
        current = todo.pop()
        for dep in sorted(_imports(current)):
            if dep not in seen:
                seen[dep] = current
                todo.append(dep)
    return seen


def _chain(seen: dict[str, str], name: str) -> str:
    chain = [name]
    while seen.get(chain[-1]):
        chain.append(seen[chain[-1]])
    return " <- ".join(chain)


WORKER = sorted(m for m in MODULES if m == "kernelwright.worker" or m.startswith("kernelwright.worker."))
JUDGE = sorted(m for m in MODULES if m == "kernelwright.judge" or m.startswith("kernelwright.judge."))


def test_the_layout_has_both_sides() -> None:
    assert "kernelwright.worker.entry" in WORKER and "kernelwright.worker.harness" in WORKER
    assert "kernelwright.judge.verify" in JUDGE and "kernelwright.protocol" in MODULES


def test_worker_code_imports_nothing_of_the_judge() -> None:
    seen = _closure(WORKER)
    bad = sorted(m for m in seen if m.startswith("kernelwright.judge"))
    assert not bad, "worker code reaches the judge: " + "; ".join(_chain(seen, m) for m in bad)
    # Nor the judge's spawning side of the sandbox.
    assert "kernelwright.sandbox.process" not in seen, _chain(seen, "kernelwright.sandbox.process")


def test_judge_imports_nothing_of_the_worker() -> None:
    seen = _closure(JUDGE)
    bad = sorted(m for m in seen if m.startswith("kernelwright.worker"))
    assert not bad, "the judge reaches worker code: " + "; ".join(_chain(seen, m) for m in bad)
    assert "kernelwright.protocol" in seen


def test_protocol_imports_only_the_standard_library() -> None:
    tree = ast.parse(MODULES["kernelwright.protocol"].read_text())
    names = {a.name.split(".")[0] for n in _import_nodes(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in _import_nodes(tree) if isinstance(n, ast.ImportFrom)}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}, names


def test_the_scan_sees_every_import_that_can_run() -> None:
    """The static check itself: function-level imports count; TYPE_CHECKING and PEP 562 do not."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from kernelwright.judge import verify\n"
        "def __getattr__(name):\n    from kernelwright.judge import pairs\n"
        "def f():\n    from kernelwright.judge import result\n"
        "class K:\n    def g(self):\n        import kernelwright.judge.timing\n"
    )
    found = _imports("kernelwright.worker._example", source)
    assert {"kernelwright.judge", "kernelwright.judge.result", "kernelwright.judge.timing"} <= found
    assert "kernelwright.judge.verify" not in found and "kernelwright.judge.pairs" not in found


# -- at run time ----------------------------------------------------------------

# Written by the role's own load (the task's or the candidate's import), from inside the worker.
_DUMP = "import json, sys\nwith open('modules.json', 'w') as _f:\n    json.dump(sorted(sys.modules), _f)\n"
_TASK = _DUMP + '''
import torch


class Model(torch.nn.Module):
    def forward(self, x):
        return x


def get_inputs():
    return [torch.zeros(2)]


def get_init_inputs():
    return []
'''
_CANDIDATE = _DUMP + '''
import torch


class ModelNew(torch.nn.Module):
    def forward(self, x):
        return x
'''
_EMPTY_LIST = {"k": "list", "items": []}
_EMPTY_DICT = {"k": "dict", "items": {}}


@pytest.mark.parametrize("role", [Role.REFERENCE, Role.CANDIDATE])
def test_a_started_worker_has_not_loaded_the_judge(role: Role) -> None:
    w = Worker(role, SandboxConfig(threads=1, drop_capabilities=role == Role.CANDIDATE))
    try:
        reply, _, _ = w.request(SetupRequest(op=Op.SETUP, device="cpu", threads=1), timeout=120)
        assert reply["status"] == Status.OK
        if role == Role.REFERENCE:
            load = {"op": Op.LOAD, "source": _TASK, "path": str(w.scratch / "task.py"), "weight_seed": 1,
                    "eval_mode": False}
        else:
            load = {"op": Op.LOAD, "source": _CANDIDATE, "filename": "candidate.py", "build_dir": None,
                    "init_inputs": _EMPTY_LIST, "state": _EMPTY_DICT, "weight_seed": 1, "eval_mode": False}
        reply, _, _ = w.request(load, timeout=120)
        assert reply["status"] == Status.OK, reply
        modules = json.loads((w.scratch / "modules.json").read_text())
    finally:
        w.close()
    ours = {m for m in modules if m.split(".")[0] == PACKAGE}
    assert f"kernelwright.worker.{role.value}" in ours and "kernelwright.worker.harness" in ours
    assert not {m for m in ours if m.startswith("kernelwright.judge")}, sorted(ours)
    assert "kernelwright.sandbox.process" not in ours
    # The comparison runs in the reference worker, never next to the candidate.
    assert ("kernelwright.compare" in ours) == (role == Role.REFERENCE), sorted(ours)
