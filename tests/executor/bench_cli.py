"""Running `kernelwright bench` on the small CPU suite in a subprocess, for the executor tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from kernelwright.bench import records as R
from tests.bench.suite_fixture import make_suite

FAST = ["--device", "cpu", "--no-compile-baseline", "--no-timing", "--threads", "1", "--json"]


def bench_env(store: Path) -> dict[str, str]:
    """The bench's environment: its own store, and a local Ray cluster of its own if it uses Ray."""
    env = dict(os.environ, KERNELWRIGHT_STORE=str(store), COLUMNS="160")
    env.pop("RAY_ADDRESS", None)
    return env


def bench_cmd(suite: Path, cands: Path, out: Path, *extra: str, flags: list[str] = FAST) -> list[str]:
    """The command line of a bench of `suite`'s `cands` into `out`."""
    return [sys.executable, "-m", "kernelwright.cli.main", "bench", str(suite), "--candidates", str(cands),
            "--out", str(out), *flags, *extra]


def run_bench(suite: Path, cands: Path, out: Path, store: Path, *extra: str,
              flags: list[str] = FAST) -> subprocess.CompletedProcess:
    """Run the bench to its end."""
    return subprocess.run(bench_cmd(suite, cands, out, *extra, flags=flags), capture_output=True, text=True,
                          env=bench_env(store), timeout=900)


def verdicts(out: Path) -> dict[str, tuple[str, list[str]]]:
    """Each candidate's verdict and reasons' checks, from OUT/results.jsonl."""
    return {r.candidate: (str(r.verdict), [x["check"] for x in r.reasons]) for r in R.load(out)}


def assert_one_writer(store_path: Path, candidates: int = 5) -> None:
    """The driver alone wrote the store: one finished run per task, every verdict in it."""
    from kernelwright.store import Store

    with Store(store_path) as store:
        runs = store.list_runs()
        assert sorted(r.task_name for r in runs) == ["level1/1_GeluMul.py", "level1/2_Hinge.py", "level2/2_Broken.py"]
        assert all(r.status == "finished" for r in runs)
        assert sum(len(store.candidates(r.id)) for r in runs) == candidates


def pids_with(marker: bytes) -> list[int]:
    """Processes whose command line contains `marker`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def judging_slots(bench: int) -> list[int]:
    """The bench's slot processes that have started a verdict (they have a sandboxed worker)."""
    return [p for p in pids_with(b"spawn_main") if _parent(p) == bench and children_of(p)]


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def children_of(pid: int) -> list[str]:
    """The pids of `pid`'s children, as /proc lists them."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return f.read().split()
    except OSError:
        return []


def kill_a_slot_mid_run(root: Path, slot_pids: Callable[[int], list[int]], *extra: str) -> None:
    """Run the bench of the small suite, SIGKILL the first judging slot `slot_pids(bench's pid)` shows,
    and check that every candidate still has exactly one record, none of them a lost slot's."""
    suite, cands = make_suite(root)
    out = root / "out"
    proc = subprocess.Popen(bench_cmd(suite, cands, out, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=bench_env(root / "s.db"))
    killed = None
    deadline = time.monotonic() + 300
    while killed is None and proc.poll() is None and time.monotonic() < deadline:
        pids = slot_pids(proc.pid)
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=900)
    assert killed is not None, "no judging slot was seen running"
    assert proc.returncode == 0, stderr[-2000:]
    keys = [json.loads(line)["key"] for line in (out / R.RESULTS).read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 5  # each verdict once: the killed slot's were judged again, not lost
    assert not any(x["check"] == "infrastructure" for r in R.load(out) for x in r.reasons)
    assert json.loads(stdout)["summary"]["candidates"] == 5
