"""A converted task's Model runs the caller's module itself, so eager is timed as the caller calls it.

Issue 12: `verify(model, candidate, (x, 0.5))` with a candidate identical to the model read
1.5-4x, because eager timed torch.export's call wrapper (tens of microseconds a call) and
the candidate did not. The conversion tests take a second or less; the timing tests run
the judge (a few seconds a verdict, a fresh interpreter for the script's).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn as nn

import kernelwright
from kernelwright.api._convert import module_task
from tests.api.modules import ScaleShift

FAST = {"threads": 1, "compile_baseline": False}
EVEN = (0.93, 1.07)  # what an identical candidate must read (issue 12)

# ScaleShift's own code as a candidate: the same work, through the same kind of call.
SCALE_SHIFT_SAME = '''import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(257))
        self.register_buffer("shift", torch.empty(257))

    def forward(self, x, alpha):
        return torch.relu(x * self.weight + self.shift) * alpha
'''


@pytest.fixture(autouse=True)
def _own_sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    # A task's Model puts its module's import folders on sys.path: keep them out of other tests.
    monkeypatch.setattr(sys, "path", list(sys.path))


def _exec(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"kw_baseline_task_{abs(hash(str(path)))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(model: nn.Module, module: nn.Module, *args: Any) -> None:
    with torch.no_grad():
        torch.testing.assert_close(model(*args), module(*args), rtol=0, atol=0)
    assert set(model.state_dict()) == set(module.state_dict())  # the judge copies weights by these names


def test_an_importable_module_is_what_model_runs():
    module = ScaleShift()
    x = torch.randn(64, 257)
    task = module_task(module, (x, 0.5))
    assert task.baseline == "module"
    assert {p.name for p in task.path.parent.iterdir()} >= {"program.pt2", "module.pt", "graph.pt"}
    assert "ScaleShift itself (imported from tests.api.modules" in task.baseline_note

    model = _exec(task.path).Model()
    assert type(model.module) is ScaleShift  # the class itself, imported by its name
    # Its forward, bound once: a call of Model costs one nn.Module dispatch, as a call of the module.
    assert model.call.__func__ is ScaleShift.forward
    _same(model, module, x, 0.5)
    text = task.path.read_text()
    assert repr(os.path.abspath(sys.modules[ScaleShift.__module__].__file__ or "")) in text  # with its digest


def test_a_class_defined_in_a_function_runs_as_the_exported_graph_without_its_wrapper():
    class Local(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(16, 8)
            self.register_buffer("scale", torch.full((8,), 2.0))
            self.register_buffer("scratch", torch.ones(8), persistent=False)
            self.offset = torch.arange(8.0)  # a plain tensor attribute: a constant of the export

        def forward(self, x, dims, flag):
            y = self.lin(x) * self.scale + self.scratch + self.offset
            return y.sum(dims) if flag else y, y.abs()

    module = Local()
    x = torch.randn(4, 16)
    task = module_task(module, (x, (0,), True))
    assert task.baseline == "graph" and "not Local itself" in task.baseline_note
    assert not (task.path.parent / "module.pt").exists()

    model = _exec(task.path).Model()
    assert isinstance(model.module, torch.fx.GraphModule)
    code = model.module.code
    assert "tree_flatten" not in code and "_guards_fn" not in code  # the wrapper's work is gone
    _same(model, module, x, (0,), True)


def double_output(module: nn.Module, args: Any, out: torch.Tensor) -> torch.Tensor:
    """A forward hook (module level, so that it pickles)."""
    return out * 2


def test_a_module_with_its_own_forward_hooks_is_called_whole():
    module = ScaleShift()
    module.register_forward_hook(double_output)
    x = torch.randn(8, 257)
    task = module_task(module, (x, 0.5))
    assert task.baseline == "module"
    model = _exec(task.path).Model()
    assert model.call == model.module.__call__  # the hook runs, as in the caller's call
    _same(model, module, x, 0.5)


def test_an_edited_source_file_makes_a_new_task_and_leaves_the_old_one_on_the_graph(tmp_path, monkeypatch):
    name = f"kw_edited_{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    source = tmp_path / f"{name}.py"
    source.write_text(textwrap.dedent('''
        import torch
        import torch.nn as nn


        class Halve(nn.Module):
            def forward(self, x):
                return x * 0.5
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    halve = importlib.import_module(name).Halve()
    x = torch.randn(8, 8)
    old = module_task(halve, (x,))
    assert old.baseline == "module"

    source.write_text(source.read_text().replace("0.5", "0.25"))
    # The old task no longer trusts the file: it runs what was exported, not the new code.
    model = _exec(old.path).Model()
    assert isinstance(model.module, torch.fx.GraphModule)
    _same(model, halve, x)
    assert module_task(halve, (x,)).path != old.path  # the digest is part of the task


def test_a_class_of_the_running_script_is_shipped_with_the_scripts_definitions(tmp_path):
    script = tmp_path / "my_script.py"
    script.write_text(textwrap.dedent('''
        import json
        import sys
        from pathlib import Path

        import torch
        import torch.nn as nn

        from kernelwright.api._convert import module_task

        SCALE = 0.5


        def _act(x):
            return torch.relu(x)


        class Block(nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = nn.Linear(16, 8)

            def forward(self, x):
                return _act(self.lin(x)) * SCALE


        Path(sys.argv[1]).write_text("ran")  # what the script runs is not copied
        torch.manual_seed(0)
        block = Block()
        x = torch.randn(4, 16)
        task = module_task(block, (x,))
        torch.save({"state": block.state_dict(), "x": x}, sys.argv[2])
        print(json.dumps({"path": str(task.path), "baseline": task.baseline, "note": task.baseline_note}))
    '''))
    marker, saved = tmp_path / "ran.txt", tmp_path / "saved.pt"
    proc = subprocess.run([sys.executable, str(script), str(marker), str(saved)], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    assert info["baseline"] == "module" and "copied from" in info["note"], info
    marker.unlink()

    model = _exec(Path(info["path"])).Model()  # another process than the script's
    assert type(model.module).__name__ == "Block" and type(model.module).__module__.startswith("kw_script_")
    assert not marker.exists()
    data = torch.load(saved)
    with torch.no_grad():
        want = torch.relu(torch.nn.functional.linear(data["x"], data["state"]["lin.weight"],
                                                     data["state"]["lin.bias"])) * 0.5
        torch.testing.assert_close(model(data["x"]), want)


# -- timing: an identical candidate reads 1x -------------------------------------


def _reading(result: Any) -> str:
    t = result.timing
    iv = t.speedup_vs_eager_interval
    return f"{t.speedup_vs_eager:.3f}x" + (f" (95% interval {iv[0]:.3f}-{iv[1]:.3f})" if iv else "")


def _even(speedup: float, interval: tuple[float, float] | None) -> bool:
    """Within EVEN, or an interval that holds 1x (a wide one says the run was noisy, not biased)."""
    return EVEN[0] <= speedup <= EVEN[1] or (interval is not None and interval[0] <= 1.0 <= interval[1])


def test_an_identical_candidate_reads_even_through_the_api():
    module = ScaleShift()
    x = torch.randn(64, 257)
    readings = []
    # Up to three verdicts: on a shared machine, a neighbour's burst during one side's batches
    # can move a single verdict by more than 7% (seen once in tens: 0.82x, interval 0.77-0.88).
    # A baseline that times more than the module (the export's wrapper read 4-4.7x here) fails all.
    for _ in range(3):
        result = kernelwright.verify(module, SCALE_SHIFT_SAME, (x, 0.5), **FAST)
        assert result.accepted, result.reasons
        assert any("ScaleShift itself" in f for f in result.findings), result.findings
        # The process control is built in the confined candidate's process too: its Model reads
        # module.pt and its source files, readable there until the candidate's load (issue 12).
        assert result.timing.control_ms is not None, result.findings
        assert not any("process control skipped" in f for f in result.findings), result.findings
        readings.append(_reading(result))
        if _even(result.timing.speedup_vs_eager, result.timing.speedup_vs_eager_interval):
            return
    pytest.fail(f"an identical candidate read {', '.join(readings)} vs eager; expected {EVEN[0]}-{EVEN[1]}x")


_SCRIPT_VERIFY = '''
import json
import torch
import torch.nn as nn
import kernelwright


class ScaleShift(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(257))
        self.register_buffer("shift", torch.randn(257))

    def forward(self, x, alpha):
        return torch.relu(x * self.weight + self.shift) * alpha


if __name__ == "__main__":
    import sys

    module, x = ScaleShift(), torch.randn(64, 257)
    for _ in range(3):
        result = kernelwright.verify(module, sys.argv[1], (x, 0.5), threads=1, compile_baseline=False)
        t = result.timing
        s, iv = (t.speedup_vs_eager, t.speedup_vs_eager_interval) if t else (None, None)
        print(json.dumps({"accepted": result.accepted, "speedup": s, "interval": iv,
                          "findings": list(result.findings)}), flush=True)
        if s is None or 0.93 <= s <= 1.07 or (iv is not None and iv[0] <= 1.0 <= iv[1]):
            break  # as test_an_identical_candidate_reads_even_through_the_api: up to three verdicts
'''


def test_an_identical_candidate_reads_even_for_a_class_of_the_running_script(tmp_path):
    script, candidate = tmp_path / "verify_block.py", tmp_path / "candidate.py"
    script.write_text(_SCRIPT_VERIFY)
    candidate.write_text(SCALE_SHIFT_SAME)
    proc = subprocess.run([sys.executable, str(script), str(candidate)], capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert runs and all(r["accepted"] for r in runs), runs
    assert any("ScaleShift itself" in f and "script.py" in f for f in runs[0]["findings"]), runs[0]["findings"]
    assert any(_even(r["speedup"], r["interval"]) for r in runs), runs
