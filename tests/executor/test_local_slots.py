"""The local executor with several slots (issue 16): each a process on one GPU and cores of its
own; the same verdicts as one slot, one writer, and a slot killed mid-run loses nothing."""

from __future__ import annotations

import json
import os

import pytest

from kernelwright.executor import _slots
from kernelwright.judge.verify import VerifyOptions
from kernelwright.task.loader import InputError
from tests.bench.suite_fixture import make_suite
from tests.executor.bench_cli import (FAST, assert_one_writer, children_of, judging_slots, kill_a_slot_mid_run,
                                      run_bench, verdicts)

TIMED = [f for f in FAST if f != "--no-timing"]


@pytest.mark.slow
@pytest.mark.parametrize("flags", [FAST, TIMED], ids=["untimed", "timed"])
def test_two_local_slots_give_the_verdicts_of_one(tmp_path, flags):
    suite, cands = make_suite(tmp_path)
    one = run_bench(suite, cands, tmp_path / "one", tmp_path / "one.db", "--slots", "1", flags=flags)
    two = run_bench(suite, cands, tmp_path / "two", tmp_path / "two.db", "--slots", "2", flags=flags)
    assert one.returncode == 0, one.stderr[-2000:]
    assert two.returncode == 0, two.stderr[-2000:]
    assert verdicts(tmp_path / "two") == verdicts(tmp_path / "one")
    assert len(verdicts(tmp_path / "two")) == 5
    assert_one_writer(tmp_path / "two.db")
    assert _untimed(json.loads(two.stdout)["summary"]) == _untimed(json.loads(one.stdout)["summary"])
    assert [t["task"] for t in json.loads(two.stdout)["tasks"]] == [t["task"] for t in json.loads(one.stdout)["tasks"]]


def _untimed(summary: dict) -> dict:
    """The summary's figures that do not depend on measured times (those vary from run to run)."""
    return {k: v for k, v in summary.items() if not k.startswith(("fast_p", "geomean"))}


@pytest.mark.slow
def test_a_local_slot_killed_mid_run_loses_and_duplicates_nothing(tmp_path):
    kill_a_slot_mid_run(tmp_path, judging_slots, "--slots", "2")


def test_timing_slots_get_disjoint_cores_and_need_one_each() -> None:
    cores = sorted(os.sched_getaffinity(0))
    shares = _slots.core_shares(len(cores), timing=True)
    assert sorted(c for s in shares for c in s or []) == cores
    assert all(len(s or []) == 1 for s in shares)
    assert _slots.core_shares(len(cores) + 1, timing=False) == [None] * (len(cores) + 1)
    with pytest.raises(InputError, match="cores of their own"):
        _slots.core_shares(len(cores) + 1, timing=True)


def test_each_slot_is_pinned_to_one_visible_gpu(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-a, GPU-b,GPU-c")
    assert _slots.default_slots("cuda") == 3
    assert _slots.default_slots("cpu") == 1
    pool = _slots.SlotPool(4, "cuda", VerifyOptions(device="cuda", timing=False))
    assert [s.gpu for s in pool.slots] == ["GPU-a", "GPU-b", "GPU-c", "GPU-a"]  # the fourth shares the first's
    assert [s.gpu for s in _slots.SlotPool(2, "cpu", VerifyOptions(device="cpu", timing=False)).slots] == [None, None]


# An honest candidate whose every call takes a second: a verdict in hand lasts minutes.
SLOW_GELU_MUL = """
import time
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def forward(self, x, y):
        time.sleep(1.0)
        return F.gelu(x) * y
"""


@pytest.mark.slow
def test_slots_and_their_workers_end_with_a_killed_driver(tmp_path):
    """`timeout` or `kill -9` of the bench: its slots do not finish the verdicts in hand (which may
    hold a GPU for minutes) but end within seconds, and their workers with them."""
    import signal
    import subprocess
    import time

    from tests.executor.bench_cli import bench_cmd, bench_env

    suite, cands = make_suite(tmp_path)
    for path in cands.rglob("*.py"):  # every candidate slow, so a slot is mid-verdict when the driver dies
        path.write_text(SLOW_GELU_MUL if "Gelu" in path.parent.name + path.name else path.read_text())
    proc = subprocess.Popen(bench_cmd(suite, cands, tmp_path / "out", "--slots", "2", flags=TIMED),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=bench_env(tmp_path / "s.db"))
    deadline = time.monotonic() + 300
    slots: list[int] = []
    while not slots and proc.poll() is None and time.monotonic() < deadline:
        slots = judging_slots(proc.pid)
        time.sleep(0.05)
    assert slots, "no judging slot was seen running"
    time.sleep(3.0)  # well into the slow candidate's verdict
    workers = [int(c) for s in slots for c in children_of(s)]
    assert workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    end = time.monotonic() + 5
    alive = slots + workers
    while alive and time.monotonic() < end:
        alive = [p for p in alive if _running(p)]
        time.sleep(0.1)
    for p in alive:  # leave nothing behind for the next test, then fail
        os.kill(p, signal.SIGKILL)
    assert not alive, f"still running 5 s after the driver was killed: {alive}"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
