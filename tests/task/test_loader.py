"""Static loading of tasks and candidates, and task metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright.task import InputError, TaskError, load_candidate, load_task
from kernelwright.task.metadata import parse_metadata

TASKS = Path(__file__).parent.parent / "fixtures" / "tasks"


def test_kernelbench_task_loads() -> None:
    t = load_task(TASKS / "linear_relu.py")
    assert t.signature.init == ("in_features", "out_features", "scale")
    assert t.signature.forward == ("x",)
    assert t.meta.source == "defaults"


@pytest.mark.parametrize("body,missing", [
    ("def get_inputs(): pass\ndef get_init_inputs(): pass\n", "Model"),
    ("class Model: pass\ndef get_init_inputs(): pass\n", "get_inputs"),
])
def test_task_without_required_names(tmp_path: Path, body: str, missing: str) -> None:
    p = tmp_path / "t.py"
    p.write_text(body)
    with pytest.raises(TaskError, match=missing):
        load_task(p)


def test_missing_files_and_syntax_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_task(tmp_path / "nope.py")
    p = tmp_path / "t.py"
    p.write_text("class Model(:\n")
    with pytest.raises(TaskError, match="not valid Python"):
        load_task(p)


def test_candidate_problems_are_verdicts_not_errors(tmp_path: Path) -> None:
    task = load_task(TASKS / "linear_relu.py")
    c = tmp_path / "c.py"
    c.write_text("class ModelNew:\n    def __init__(self, a):\n        pass\n")
    assert "arguments must match" in load_candidate(c, task).problem
    c.write_text("x = 1\n")
    assert "does not define ModelNew" in load_candidate(c, task).problem
    c.write_text("def f(:\n")
    assert "not valid Python" in load_candidate(c, task).problem
    with pytest.raises(InputError):
        load_candidate(tmp_path / "missing.py", task)


def test_metadata_from_literal_and_sidecar(tmp_path: Path) -> None:
    src = (TASKS / "gelu_mul.py").read_text()
    p = tmp_path / "task.py"
    p.write_text(src + '\nKERNELWRIGHT = {"rtol": 1e-3, "exclude_distributions": ["scaled"], '
                 '"shapes": [{"batch_size": 3}]}\n')
    meta = load_task(p).meta
    assert meta.rtol == 1e-3 and "scaled" not in meta.distributions and meta.shapes == ({"batch_size": 3},)
    q = tmp_path / "other.py"
    q.write_text(src)
    (tmp_path / "other.toml").write_text('[kernelwright]\natol = 0.5\nmutates_inputs = [0]\n')
    meta = load_task(q).meta
    assert meta.atol == 0.5 and meta.mutates_inputs == (0,) and meta.source == "other.toml"


@pytest.mark.parametrize("raw", [{"rtoll": 1}, {"rtol": -1}, {"distributions": ["weird"]},
                                 {"shapes": [1]}, {"mutates_inputs": "x"}, [1]])
def test_bad_metadata_is_a_task_error(raw) -> None:
    with pytest.raises(TaskError):
        parse_metadata(raw, "t")
