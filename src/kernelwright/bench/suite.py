"""A suite in KernelBench's layout: `levelN/ID_Name.py` task files, and candidates beside them.

SUITE may be a KernelBench checkout (its tasks live under `KernelBench/`), that folder
itself, or any folder with `levelN/` subfolders. Candidates (`--candidates DIR`) sit under
the same relative names (`DIR/level1/23_Softmax.py`), or several in a folder named after the
task (`DIR/level1/23_Softmax/*.py`), or flat in KernelBench's own generation naming
(`DIR/level_1_problem_23_sample_0_kernel.py`).
"""

from __future__ import annotations

import fnmatch
import random
import re
from dataclasses import dataclass
from pathlib import Path

from kernelwright.task.loader import InputError

_LEVEL = re.compile(r"^level(\d+)$")
_TASK = re.compile(r"^(\d+)_.*\.py$")
_KB_SAMPLE = re.compile(r"^level_(\d+)_problem_(\d+)_sample_\d+.*\.py$")


@dataclass(frozen=True)
class SuiteTask:
    """One task file of a suite."""

    name: str  # its path relative to the suite root, "level1/23_Softmax.py": the key of every record
    path: Path
    level: int
    number: int  # the ID before the first underscore (KernelBench's problem id)


def suite_root(suite: Path) -> Path:
    """The folder that holds the `levelN/` folders; InputError when there is none."""
    for root in (suite, suite / "KernelBench"):
        if root.is_dir() and any(_LEVEL.match(p.name) and p.is_dir() for p in root.iterdir()):
            return root
    raise InputError(f"{suite} is not a suite in KernelBench's layout: no level1/, level2/, ... folder in it "
                     "or in its KernelBench/ folder")


def find_tasks(suite: Path, levels: set[int] | None = None, pattern: str | None = None) -> list[SuiteTask]:
    """The suite's tasks, by level and problem id; `pattern` is a glob on the task's name
    ("level1/2*_*.py") or on its file name ("*Softmax*")."""
    root = suite_root(suite)
    out = []
    for level_dir in root.iterdir():
        m = _LEVEL.match(level_dir.name)
        if not m or not level_dir.is_dir() or (levels and int(m.group(1)) not in levels):
            continue
        for path in level_dir.iterdir():
            t = _TASK.match(path.name)
            if not t or not path.is_file():
                continue
            name = f"{level_dir.name}/{path.name}"
            if pattern and not (fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path.name, pattern)):
                continue
            out.append(SuiteTask(name, path, int(m.group(1)), int(t.group(1))))
    return sorted(out, key=lambda t: (t.level, t.number, t.name))


def sample_tasks(tasks: list[SuiteTask], n: int | None, seed: int | None) -> list[SuiteTask]:
    """A seeded random sample of `n` of `tasks`, kept in suite order (all of them when n is None
    or at least their number). The same seed and selection give the same sample everywhere."""
    if n is None or n >= len(tasks):
        return list(tasks)
    chosen = {t.name for t in random.Random(0 if seed is None else seed).sample(tasks, n)}
    return [t for t in tasks if t.name in chosen]


def find_candidates(task: SuiteTask, candidates: Path) -> list[Path]:
    """The candidate files for a task under `candidates` (every layout above), sorted."""
    found: list[Path] = []
    level_dir = candidates / f"level{task.level}"
    same = level_dir / Path(task.name).name
    if same.is_file():
        found.append(same)
    folder = level_dir / Path(task.name).stem
    if folder.is_dir():
        found += sorted(p for p in folder.glob("*.py") if p.is_file())
    if candidates.is_dir():
        for p in candidates.glob(f"level_{task.level}_problem_{task.number}_sample_*.py"):
            m = _KB_SAMPLE.match(p.name)
            if m and int(m.group(1)) == task.level and int(m.group(2)) == task.number:
                found.append(p)
    return sorted(set(found))


IDENTITY_TAIL = "\n\nclass ModelNew(Model):\n    pass\n"


def write_identity_candidates(tasks: list[SuiteTask], out: Path) -> None:
    """Each task's own Model as its candidate, under the task's relative name in `out`.

    The identity sweep: judged against itself, every task should be accepted at about 1.00x.
    """
    for t in tasks:
        dest = out / t.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(t.path.read_text() + IDENTITY_TAIL)
