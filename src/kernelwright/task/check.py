"""`kernelwright check-task`: is a task able to tell work from no work?

A benchmark task is degenerate when a kernel can pass it without doing its work: its outputs
sit under the tolerance (all zeros pass), barely depend on the inputs (constant across
seeds) or on the weights, or part of its computation can be deleted without changing the
output beyond the tolerance (a ReLU after a softmax, a clamp that never binds). Each task is
checked in a child process of its own (`python -m kernelwright.task.check TASK DEVICE`, one
JSON object on stdout), so that a task too large for the machine, or one that crashes, is a
row with the reason, never the end of the run.
"""

from __future__ import annotations

import enum
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CHECK_TIMEOUT_S = 600.0  # one task's checks, in its child process


class Flag(str, enum.Enum):
    """What makes a task unable to tell work from no work."""

    __str__ = str.__str__

    UNDER_TOLERANCE = "under_tolerance"  # an all-zero output passes
    INPUT_INDEPENDENT = "input_independent"  # outputs for two input seeds barely differ
    WEIGHT_INDEPENDENT = "weight_independent"  # outputs for two weight seeds barely differ
    DELETABLE_WORK = "deletable_work"  # an operation can be skipped and the output still passes


@dataclass(frozen=True)
class TaskCheck:
    """One task's checks."""

    task: str  # its path, or its name in a suite (level1/19_ReLU.py)
    flags: list[Flag] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # one sentence per flag, in order
    notes: list[str] = field(default_factory=list)  # what could not be checked, and why
    error: str = ""  # the task could not be checked at all

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        d = asdict(self)
        d["flags"] = [str(f) for f in self.flags]
        return d


TASK_CHECKS_FILE = "task_checks.jsonl"  # a bench's copy, in its OUT, of the check-task rows of its tasks


def read_rows(path: Path, device: str | None = None) -> dict[str, dict[str, Any]]:
    """The rows of a check-task `--out` file (JSON lines) or `--json` output, by task; the last row of
    a task wins. With `device`, only rows checked there (rows without one count for any). A torn
    or foreign line is skipped. Raises OSError when the file cannot be read."""
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
        lines = [json.dumps(t) for t in doc["tasks"]] if isinstance(doc, dict) and isinstance(doc.get("tasks"), list) \
            else text.splitlines()
    except ValueError:
        lines = text.splitlines()
    rows: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("task"), str) and isinstance(row.get("flags"), list) \
                and (device is None or row.get("device", device) == device):
            rows[row["task"]] = row
    return rows


def flag_words(row: dict[str, Any]) -> list[str]:
    """A checked task's flags as bench and report print them: `check-task: FLAG (detail)`."""
    details = list(row.get("details") or [])
    return [f"check-task: {flag}" + (f" ({details[i]})" if i < len(details) else "")
            for i, flag in enumerate(row.get("flags") or [])]


def check_task(path: Path, device: str, name: str | None = None, timeout_s: float = CHECK_TIMEOUT_S) -> TaskCheck:
    """Check one task in a child process; its verdict, or an error row when the child failed."""
    label = name or str(path)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    try:
        proc = subprocess.run([sys.executable, "-m", "kernelwright.task.check", str(path), device],
                              capture_output=True, text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return TaskCheck(label, error=f"the checks took over {timeout_s:g} s")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        d = json.loads(lines[-1])
    except (IndexError, ValueError):
        why = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
        if proc.returncode == -9:
            why += ", most likely by the system for want of memory"
        return TaskCheck(label, error=f"the check process failed ({why}): {proc.stderr.strip()[-400:]}")
    return TaskCheck(label, [Flag(f) for f in d.get("flags", [])], list(d.get("details", [])),
                     list(d.get("notes", [])), str(d.get("error", "")))


# -- the child process ----------------------------------------------------------------


def _run_checks(path: Path, device: str) -> dict[str, Any]:
    import torch

    from kernelwright import compare as cmp
    from kernelwright import constants as C
    from kernelwright.task.loader import load_task
    from kernelwright.worker.inputs import make_inputs, seed_everything

    task = load_task(path)
    ns: dict[str, Any] = {"__name__": "kw_checked_task", "__file__": str(path)}
    exec(compile(task.source, str(path), "exec"), ns)  # noqa: S102 - tasks are trusted (threat model)
    rtol, atol = task.meta.rtol, task.meta.atol
    dev = torch.device(device)

    def model(weight_seed: int) -> Any:
        seed_everything(weight_seed)
        m = ns["Model"](*ns["get_init_inputs"]())
        if task.meta.eval_mode:
            m.eval()
        return m.to(dev)

    def inputs(seed: int) -> list[Any]:
        # Made on the GPU where the task allows it, as the judge makes them (KernelBench's
        # level-1 sets are 6-16 GiB of torch.rand), else on the CPU and moved.
        try:
            xs = make_inputs(ns["get_inputs"], ns, seed, "task", None, device=device if device == "cuda" else None)
        except Exception:  # noqa: BLE001 - a task whose get_inputs needs the CPU
            xs = make_inputs(ns["get_inputs"], ns, seed, "task", None)
        return [x.to(dev) if isinstance(x, torch.Tensor) else x for x in xs]

    flags: list[str] = []
    details: list[str] = []
    notes: list[str] = []
    m1 = model(1)
    x1, x2 = inputs(11), inputs(12)
    with torch.no_grad():
        out1 = m1(*[x.clone() if isinstance(x, torch.Tensor) else x for x in x1])
        out2 = m1(*x2)
    if cmp.zeros_would_pass(out1, None, rtol, atol):
        flags.append(Flag.UNDER_TOLERANCE)
        details.append("an all-zero output passes the tolerance: the outputs are smaller than it")
    change = cmp.relative_change(cmp.real_leaves(out1, None), cmp.real_leaves(out2, None))
    if change < C.DEGENERATE_RELATIVE_CHANGE:
        flags.append(Flag.INPUT_INDEPENDENT)
        details.append(f"outputs for two input seeds differ by {change:.2g} of their scale: they barely depend "
                       "on the inputs")
    params = sum(p.numel() for p in m1.parameters())
    if params:
        m2 = model(2)
        with torch.no_grad():
            out_w = m2(*[x.clone() if isinstance(x, torch.Tensor) else x for x in x1])
        wchange = cmp.relative_change(cmp.real_leaves(out1, None), cmp.real_leaves(out_w, None))
        if wchange < C.DEGENERATE_RELATIVE_CHANGE:
            flags.append(Flag.WEIGHT_INDEPENDENT)
            if _same_parameters(m1, m2):
                # Not that the output ignores them: every seed makes the same ones (a norm's ones
                # and zeros), so a kernel that ignores them passes all the same.
                details.append(f"the model's {params} parameters are the same for every seed (a constant "
                               "initialisation): a kernel that ignores them passes")
            else:
                details.append(f"outputs for two weight seeds differ by {wchange:.2g} of their scale: they barely "
                               f"depend on the model's {params} parameters")
    deletable, why_not = _deletable_ops(m1, x1, out1, rtol, atol)
    if why_not:
        notes.append(why_not)
    if deletable:
        flags.append(Flag.DELETABLE_WORK)
        details.append("the output still passes with " + "; ".join(f"{op} skipped" for op in deletable[:6]))
    return {"flags": [str(f) for f in flags], "details": details, "notes": notes}


def _deletable_ops(model: Any, xs: list[Any], expected: Any, rtol: float | None,
                   atol: float | None) -> tuple[list[str], str]:
    """Operations of the traced forward whose output has its first input's shape and dtype and
    which can be replaced by that input with the output still within tolerance."""
    import torch
    import torch.fx as fx

    try:
        gm = fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - data-dependent control flow and the like
        return [], f"deletable work not checked: the forward cannot be traced ({type(exc).__name__})"
    # Shapes and dtypes of every node, from one run.
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        ShapeProp(gm).propagate(*[x.clone() if isinstance(x, torch.Tensor) else x for x in xs])
    except Exception as exc:  # noqa: BLE001
        return [], f"deletable work not checked: the traced forward did not run ({type(exc).__name__})"
    found = []
    for node in list(gm.graph.nodes):
        if node.op not in ("call_function", "call_method", "call_module") or not node.args \
                or _moves_no_values(gm, node):
            continue
        src = node.args[0]
        meta, src_meta = node.meta.get("tensor_meta"), getattr(src, "meta", {}).get("tensor_meta")
        if not isinstance(src, fx.Node) or meta is None or src_meta is None or not hasattr(meta, "shape") \
                or not hasattr(src_meta, "shape") or meta.shape != src_meta.shape or meta.dtype != src_meta.dtype:
            continue
        users = list(node.users)
        node.replace_all_uses_with(src)
        try:
            gm.recompile()
            with torch.no_grad():
                got = gm(*[x.clone() if isinstance(x, torch.Tensor) else x for x in xs])
            passed = _passes(got, expected, rtol, atol)
        except Exception:  # noqa: BLE001 - skipping it broke the graph: not deletable
            passed = False
        for u in users:
            u.replace_input_with(src, node)
        gm.recompile()
        if passed:
            target = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", str(node.target))
            found.append(f"{target} ({node.name})")
    return found, ""


# Operations that copy, alias or re-label their input without computing anything: skipping one
# is never a sign that the task cannot tell work from no work (a kernel that avoids a clone is
# an honest optimisation).
_MOVES_NO_VALUES = frozenset({"clone", "detach", "contiguous", "to", "type", "type_as", "float", "view", "view_as",
                              "reshape", "reshape_as", "flatten", "squeeze", "unsqueeze", "expand_as", "identity"})


def _moves_no_values(gm: Any, node: Any) -> bool:
    """The node only copies or re-labels its input (a clone, a detach, an Identity or a Dropout that
    is off): its deletion is exact, not a finding."""
    import torch.nn as nn

    if node.op == "call_module":
        mod = gm.get_submodule(node.target)
        return isinstance(mod, (nn.Identity, nn.Flatten)) or (
            isinstance(mod, nn.modules.dropout._DropoutNd) and (not mod.training or mod.p == 0))
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    if name == "dropout":
        return node.kwargs.get("training") is False or node.kwargs.get("p") == 0
    return name in _MOVES_NO_VALUES


def _same_parameters(a: Any, b: Any) -> bool:
    """Two instances of one model hold equal parameters, tensor by tensor."""
    import torch

    pa, pb = list(a.parameters()), list(b.parameters())
    return len(pa) == len(pb) and all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(pa, pb))


def _passes(got: Any, expected: Any, rtol: float | None, atol: float | None) -> bool:
    """`got` is within the task's tolerance of `expected`, leaf by leaf (as the judge compares)."""
    import torch

    from kernelwright import compare as cmp

    a, b = cmp.leaves(got), cmp.leaves(expected)
    if len(a) != len(b):
        return False
    for o, n in zip(a, b):
        if not isinstance(n, torch.Tensor):
            if o != n:
                return False
        elif not isinstance(o, torch.Tensor) or o.shape != n.shape or o.dtype != n.dtype \
                or not cmp.compare_tensor(o, n, n, cmp.tolerance_for(n.dtype, rtol, atol)).passed:
            return False
    return True


def _limit_self(device: str) -> None:
    """The child, not the command that started it, is what the system kills when memory runs
    out; on the CPU it is capped at a worker's share of RAM, so a task too big for the machine
    fails with MemoryError (a row that says so) before the system has to kill anything."""
    import resource

    from kernelwright.sandbox.limits import default_worker_memory

    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    if device == "cpu":  # the CUDA driver reserves more address space than any RAM
        cap = 2 * default_worker_memory()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))


def main() -> None:
    """Child process: check one task, print one JSON object."""
    path, device = Path(sys.argv[1]), sys.argv[2]
    _limit_self(device)
    try:
        d = _run_checks(path, device)
    except Exception as exc:  # noqa: BLE001 - the row says why
        d = {"error": f"{type(exc).__name__}: {str(exc)[:500]}"}
    sys.stdout.write(json.dumps(d) + "\n")


if __name__ == "__main__":
    main()
