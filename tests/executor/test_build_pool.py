"""Builds ahead of verdicts, off the judging slots (issue 16): the local executor's build pool
(several slots) and Ray's CPU-only build tasks build every slow-building candidate before its
verdict, the verdicts are those of one slot, and a build that fails there still gets the
judge's own `compile` rejection."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from kernelwright import constants as C
from kernelwright import forms
from kernelwright.executor import _builds
from kernelwright.task.loader import InputError
from tests.bench.suite_fixture import make_suite
from tests.executor.bench_cli import run_bench, verdicts
from tests.executor.slow_builds import IMPORTS, StubPairs, add_slow_candidates, builders

FAST_SRC = forms.FORMS["c"].skeleton()
SLOW_SRC = forms.FORMS["cpp_inline"].skeleton()


def _job(source: str, name: str) -> SimpleNamespace:
    return SimpleNamespace(source=source, candidate=Path(name))


def test_built_jobs_go_first_and_an_idle_slot_never_waits(monkeypatch) -> None:
    release = {name: threading.Event() for name in ("a.py", "b.py")}
    started = {name: threading.Event() for name in release}

    def fake_prebuild(source: str, filename: str, device: str) -> None:
        started[filename].set()
        release[filename].wait(30)

    monkeypatch.setattr(_builds, "prebuild", fake_prebuild)
    a, b = _job(SLOW_SRC, "a.py"), _job(SLOW_SRC.replace("relu", "relu "), "b.py")
    plain = _job("import torch\n", "p.py")
    with _builds.BuildPool("cpu", 1) as pool:
        pool.submit([a, b, plain, _job(FAST_SRC, "c.py")])
        assert list(pool.builds) == [a.source, b.source]  # only the slow forms are built ahead
        assert started["a.py"].wait(30)
        assert pool.state(a) == _builds.BuildState.RUNNING and pool.state(b) == _builds.BuildState.QUEUED
        assert pool.state(plain) == _builds.BuildState.READY
        assert pool.pick([a, b, plain], idle=False) == 2  # nothing to build: first
        assert pool.pick([a, b], idle=False) is None  # a busy slot waits for a build
        assert pool.pick([b, a], idle=True) == 1  # an idle slot: the one being built, not the queued one
        pool.claim(b)  # b goes to a slot: it builds it itself, the pool never does
        release["a.py"].set()
        pool.ex.shutdown(wait=True)
        assert pool.state(a) == pool.state(b) == _builds.BuildState.READY
        assert not started["b.py"].is_set()


class _Conn:
    """The driver's end of a slot's pipe, as the slot sees it: the jobs to receive, then None."""

    def __init__(self, jobs: list) -> None:
        self.jobs, self.sent = list(jobs), []

    def recv(self) -> object:
        return self.jobs.pop(0)

    def poll(self) -> bool:
        return bool(self.jobs)

    def send(self, outcome: object) -> None:
        self.sent.append(outcome)


def test_a_slot_builds_ahead_only_when_the_driver_does_not(monkeypatch) -> None:
    from kernelwright.executor import _local, _slots
    from kernelwright.judge import pairs
    from kernelwright.judge.verify import VerifyOptions

    built: list[str] = []
    monkeypatch.setattr(_local.Prebuilder, "build", lambda self, source, name: built.append(name))
    monkeypatch.setattr(pairs, "PairPool", StubPairs)
    monkeypatch.setattr(_slots, "judge_here", lambda *args, **kw: "verdict")
    jobs = [SimpleNamespace(key=n, source=SLOW_SRC, candidate=Path(n), task=SimpleNamespace(path=Path("t.py")))
            for n in ("a.py", "b.py")]
    for build_ahead, expected in ((True, ["b.py"]), (False, [])):
        built.clear()
        conn = _Conn([*jobs, None])
        _slots._serve(conn, "cpu", VerifyOptions(device="cpu", timing=False), build_ahead)
        assert conn.sent == ["verdict", "verdict"] and built == expected


def test_build_workers_default_to_the_cores_the_slots_leave(monkeypatch) -> None:
    monkeypatch.delenv(C.BUILD_JOBS_ENV, raising=False)
    cores = len(os.sched_getaffinity(0))
    assert _builds.build_workers(1) == max(1, cores - 1)
    assert _builds.build_workers(cores + 3) == 1
    monkeypatch.setenv(C.BUILD_JOBS_ENV, "3")
    assert _builds.build_workers(2) == 3
    monkeypatch.setenv(C.BUILD_JOBS_ENV, "0")
    with pytest.raises(InputError, match="positive integer"):
        _builds.build_workers(2)


def _suite(root: Path) -> tuple[Path, Path, dict[str, str]]:
    """The small bench suite plus three slow-building candidates (fresh builds) of its LinearRelu task."""
    suite, cands = make_suite(root)
    return suite, cands, add_slow_candidates(cands)


@pytest.fixture(scope="module")
def one_slot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, list[str]]]:
    """The suite's verdicts on one local slot."""
    root = tmp_path_factory.mktemp("one")
    suite, cands, _ = _suite(root)
    done = run_bench(suite, cands, root / "out", root / "s.db", "--slots", "1")
    assert done.returncode == 0, done.stderr[-2000:]
    return verdicts(root / "out")


# Who builds ahead, as the process that started the building worker shows in /proc: the
# bench's driver (the local pool), a Ray task named after _build_on_node. A verdict building
# for itself is started by a local slot process (spawn_main) or a Ray task _judge_in_slot.
POOL = {"local": "kernelwright.cli.main", "ray": "_build_on_node"}
VERDICT = {"local": "spawn_main", "ray": "_judge_in_slot"}


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "ray"])
def test_slow_builds_are_built_ahead_off_the_slots(tmp_path, monkeypatch, one_slot, executor) -> None:
    if executor == "ray":
        pytest.importorskip("ray")
    # Three builders: every build is under way before a slot runs out of built jobs, so none is
    # left to a verdict (the order in which slots pick jobs is then fixed).
    # (bench --build-jobs on the local slots; the variable it sets for Ray's driver)
    monkeypatch.delenv(C.BUILD_JOBS_ENV, raising=False)
    if executor == "ray":
        monkeypatch.setenv(C.BUILD_JOBS_ENV, "3")
    suite, cands, slow = _suite(tmp_path)
    extra = ["--slots", "2", "--build-jobs", "3"] if executor == "local" else ["--executor", "ray"]
    done = run_bench(suite, cands, tmp_path / "out", tmp_path / "s.db", *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    assert verdicts(tmp_path / "out") == one_slot
    assert one_slot["level2/1_LinearRelu/slow_fails.py"] == ("rejected", ["compile"])
    for name in ("slow_a.py", "slow_b.py"):  # built once, ahead, never by the slot that judged it
        made = builders(slow[name])
        assert len(made) == 1 and POOL[executor] in made[0], made
        # Imported by that build and by its verdict, and by nothing else (no slot built ahead).
        imported = builders(slow[name], IMPORTS)
        assert len(imported) == 2 and VERDICT[executor] in imported[1], imported
    # A failed build is no verdict: the judge built it again and gave the rejection itself.
    tried = builders(slow["slow_fails.py"])
    assert len(tried) == 2 and POOL[executor] in tried[0] and VERDICT[executor] in tried[1], tried
