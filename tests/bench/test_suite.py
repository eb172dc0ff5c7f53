"""Finding a suite's tasks and their candidates in every layout kernelwright accepts."""

from __future__ import annotations

import pytest

from kernelwright.bench.suite import find_candidates, find_tasks, sample_tasks, suite_root
from kernelwright.task.loader import InputError
from tests.bench.suite_fixture import make_suite


def test_tasks_by_level_and_number_with_selection(tmp_path):
    suite, _ = make_suite(tmp_path)
    assert [t.name for t in find_tasks(suite)] == ["level1/1_GeluMul.py", "level1/2_Hinge.py",
                                                   "level2/1_LinearRelu.py", "level2/2_Broken.py"]
    assert [t.name for t in find_tasks(suite, levels={2})] == ["level2/1_LinearRelu.py", "level2/2_Broken.py"]
    assert [t.name for t in find_tasks(suite, pattern="*Hinge*")] == ["level1/2_Hinge.py"]
    assert [t.name for t in find_tasks(suite, pattern="level1/1_*")] == ["level1/1_GeluMul.py"]
    t = find_tasks(suite, pattern="*Hinge*")[0]
    assert (t.level, t.number) == (1, 2)


def test_a_seeded_sample_is_the_same_for_the_same_seed_and_kept_in_suite_order(tmp_path):
    suite, _ = make_suite(tmp_path)
    tasks = find_tasks(suite)
    picks = {tuple(t.name for t in sample_tasks(tasks, 2, seed)) for seed in range(12)}
    assert all(len(p) == 2 and list(p) == sorted(p, key=[t.name for t in tasks].index) for p in picks)
    assert len(picks) > 1  # the seed chooses
    assert sample_tasks(tasks, 2, 5) == sample_tasks(tasks, 2, 5)
    assert sample_tasks(tasks, 2, None) == sample_tasks(tasks, 2, 0)
    assert sample_tasks(tasks, 9, 1) == tasks and sample_tasks(tasks, None, 1) == tasks


def test_a_kernelbench_checkout_is_found_through_its_kernelbench_folder(tmp_path):
    suite, _ = make_suite(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    suite.rename(repo / "KernelBench")  # KernelBench's checkout keeps its levels there
    assert suite_root(repo) == repo / "KernelBench"
    assert len(find_tasks(repo)) == 4


def test_a_folder_without_levels_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="KernelBench's layout"):
        find_tasks(tmp_path)


def test_candidates_in_every_layout(tmp_path):
    suite, cands = make_suite(tmp_path)
    tasks = {t.name: t for t in find_tasks(suite)}
    rel = lambda t: [str(p.relative_to(cands)) for p in find_candidates(tasks[t], cands)]  # noqa: E731
    assert rel("level1/1_GeluMul.py") == ["level1/1_GeluMul.py", "level_1_problem_1_sample_0_kernel.py"]
    assert rel("level1/2_Hinge.py") == ["level1/2_Hinge/honest.py", "level1/2_Hinge/zeros.py"]
    assert rel("level2/1_LinearRelu.py") == []
