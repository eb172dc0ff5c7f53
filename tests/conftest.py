"""Shared fixtures: a CPU judge with fast settings, fixture paths, and the gpu marker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TASKS = FIXTURES / "tasks"
CANDIDATES = FIXTURES / "candidates"
EXAMPLES = Path(__file__).parent.parent / "examples"


def pytest_configure(config: pytest.Config) -> None:
    # One build cache for the whole session: compiled fixtures are shared across tests.
    os.environ.setdefault("KERNELWRIGHT_CACHE", str(Path(config.rootpath) / ".kw-cache"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def judge() -> Callable[..., Any]:
    """judge(task, candidate, **options) -> JudgeResult.

    `task` is a fixture name ("gelu_mul") or a path; `candidate` is a path or
    Python source text (written to a temporary file). Defaults: CPU, one thread,
    no torch.compile baseline, so a verdict takes a few seconds.
    """
    import tempfile

    from kernelwright.judge.verify import VerifyOptions, verify_files

    tmp = Path(tempfile.mkdtemp(prefix="kw-cands-"))
    counter = iter(range(10**6))

    def run(task: str | Path, candidate: str | Path, **options: Any) -> Any:
        task_path = Path(task) if Path(str(task)).suffix == ".py" else TASKS / f"{task}.py"
        if isinstance(candidate, str) and "\n" in candidate:
            path = tmp / f"candidate_{next(counter)}.py"
            path.write_text(candidate)
            candidate = path
        opts = dict(device="cpu", threads=1, compile_baseline=False)
        opts.update(options)
        return verify_files(task_path, candidate, VerifyOptions(**opts))

    return run
