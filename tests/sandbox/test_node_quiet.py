"""Timing is exclusive across processes of one machine (sandbox.quiet, sandbox.node): two
processes never time one device at once, a process's background work stops while another
process times, and a timer killed with SIGKILL leaves nothing stopped or locked (issue 16)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kernelwright.sandbox import node, quiet
from tests.sandbox.test_quiet import SPIN, _wait_state

# A process that times DEVICE ROUNDS times, HOLD_S each, and prints each span's (enter, exit).
TIMER = """
import json, sys, time
from kernelwright.sandbox import quiet
device, rounds, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
spans = []
for _ in range(rounds):
    with quiet.quiet(device):
        t0 = time.time()
        time.sleep(hold)
        spans.append((t0, time.time()))
print(json.dumps(spans))
"""

# Registers a spinning process group as background work, prints its pid, then waits to be killed.
OWNER = """
import subprocess, sys, time
from kernelwright.sandbox import quiet
spin = subprocess.Popen([sys.executable, "-c", sys.argv[1]], start_new_session=True)
with quiet.background(quiet.ProcessGroup(spin.pid)):
    print(spin.pid, flush=True)
    time.sleep(600)
"""

# Enters a quiet period on DEVICE and prints how long that took (seconds).
WAIT_TO_TIME = """
import sys, time
from kernelwright.sandbox import quiet
t0 = time.monotonic()
with quiet.quiet(sys.argv[1]):
    print(time.monotonic() - t0)
"""

# Holds a quiet period until killed; prints "in" once it holds it.
HOLDER = """
import sys, time
from kernelwright.sandbox import quiet
with quiet.quiet(sys.argv[1]):
    print("in", flush=True)
    time.sleep(600)
"""


@pytest.fixture
def runtime(tmp_path, monkeypatch) -> dict[str, str]:
    """A private lock folder for the test and its children (real judges elsewhere keep theirs)."""
    monkeypatch.setenv(node.ENV_RUNTIME_DIR, str(tmp_path / "run"))
    monkeypatch.setattr(quiet, "_prober", None)  # a prober made earlier in this process looks at the old folder
    return dict(os.environ)


def _timers(env: dict[str, str], devices: list[tuple[str, str]], rounds: int = 4,
            hold: float = 0.15) -> list[list[tuple[float, float]]]:
    procs = [subprocess.Popen([sys.executable, "-c", TIMER, dev, str(rounds), str(hold)], stdout=subprocess.PIPE,
                              text=True, env={**env, "CUDA_VISIBLE_DEVICES": visible}) for dev, visible in devices]
    return [json.loads(p.communicate(timeout=120)[0]) for p in procs]


def _overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return max((min(x1, y1) - max(x0, y0) for x0, x1 in a for y0, y1 in b), default=0.0)


def test_two_processes_never_time_one_device_at_once(runtime) -> None:
    a, b = _timers(runtime, [("cpu", ""), ("cpu", "")])
    assert len(a) == len(b) == 4
    assert _overlap(a, b) <= 0.0


def test_two_gpus_are_timed_side_by_side(runtime) -> None:
    """The lock is the device's: processes pinned to two GPUs (by UUID) do overlap."""
    a, b = _timers(runtime, [("cuda", "GPU-aaaa"), ("cuda", "GPU-bbbb")])
    assert _overlap(a, b) > 0.05
    # The same GPU under two names (index 1 of one list, index 0 of another) is one lock.
    c, d = _timers(runtime, [("cuda:1", "GPU-x,GPU-cccc"), ("cuda", "GPU-cccc")])
    assert _overlap(c, d) <= 0.0


@pytest.fixture
def owner(runtime):
    """Process A: a spinning group registered as its background work. Yields (A, the spinner's pid)."""
    proc = subprocess.Popen([sys.executable, "-c", OWNER, SPIN], stdout=subprocess.PIPE, text=True, env=runtime)
    spin = int(proc.stdout.readline())
    yield proc, spin
    proc.kill()
    proc.wait()
    try:
        os.killpg(spin, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _holder(env: dict[str, str], device: str = "cpu") -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, device], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "in"
    return proc


def test_another_process_s_background_work_stops_while_one_times(runtime, owner) -> None:
    _, spin = owner
    assert _wait_state(spin, {"R", "S"}) in {"R", "S"}
    # In this process: once inside, A's work is already stopped (the barrier waited for it).
    with quiet.quiet("cpu"):
        assert _wait_state(spin, {"T"}, timeout=0.5) == "T"
    assert _wait_state(spin, {"R", "S"}) in {"R", "S"}
    # A GPU's timer stops builds too: they run on the cores the timed calls launch from.
    with quiet.quiet("cuda"):
        assert _wait_state(spin, {"T"}, timeout=0.5) == "T"
    assert _wait_state(spin, {"R", "S"}) in {"R", "S"}


def test_a_timer_killed_with_sigkill_leaves_nothing_stopped_or_locked(runtime, owner) -> None:
    _, spin = owner
    holder = _holder(runtime)
    assert _wait_state(spin, {"T"}) == "T"
    holder.kill()
    holder.wait()
    assert _wait_state(spin, {"R", "S"}, timeout=2.0) in {"R", "S"}
    t0 = time.monotonic()
    with quiet.quiet("cpu"):  # the device lock died with its holder
        assert time.monotonic() - t0 < 1.0
        assert _wait_state(spin, {"T"}, timeout=0.5) == "T"
    assert _wait_state(spin, {"R", "S"}) in {"R", "S"}


def test_work_registered_while_another_process_times_is_stopped_at_once(runtime) -> None:
    holder = _holder(runtime)
    spin = subprocess.Popen([sys.executable, "-c", SPIN], start_new_session=True)
    try:
        with quiet.background(quiet.ProcessGroup(spin.pid)):
            assert _wait_state(spin.pid, {"T"}, timeout=0.5) == "T"
            holder.kill()
            holder.wait()
            assert _wait_state(spin.pid, {"R", "S"}, timeout=2.0) in {"R", "S"}
    finally:
        spin.kill()
        spin.wait()


def test_a_frozen_owner_delays_a_timer_by_the_barrier_timeout_at_most(runtime, owner) -> None:
    proc, spin = owner
    # Frozen while its work runs (so while it holds the running lock): a loaded machine can
    # otherwise catch it between a look at the node and its next hold.
    assert _wait_state(spin, {"R", "S"}) in {"R", "S"}
    time.sleep(0.05)
    assert _wait_state(spin, {"R", "S"}) in {"R", "S"}
    os.kill(proc.pid, signal.SIGSTOP)  # its follower cannot stop its work any more
    try:
        # The timer is a process of its own, as every other judge on the machine is: the wait
        # measured is the barrier's alone, whatever earlier tests left in this process.
        timer = subprocess.run([sys.executable, "-c", WAIT_TO_TIME, "cpu"], capture_output=True, text=True,
                               env=runtime, timeout=60)
        assert timer.returncode == 0, timer.stderr
        waited = float(timer.stdout)
        assert quiet.BARRIER_TIMEOUT_S * 0.9 <= waited < quiet.BARRIER_TIMEOUT_S + 1.0, waited
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def test_the_runtime_folder_of_another_owner_is_refused(tmp_path, monkeypatch) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "quiet").symlink_to(target)
    monkeypatch.setenv(node.ENV_RUNTIME_DIR, str(tmp_path / "run"))
    with pytest.raises(RuntimeError, match="not a folder of this user's"):
        node.runtime_dir()


# -- other verdicts' work on a shared GPU (quiet.device_request) ---------------------------

# Holds one GPU request open for HOLD_S (as a verdict's checked call would), printing "in" once it does.
REQUESTER = """
import sys, time
from kernelwright.sandbox import node, quiet
with quiet.device_request(node.device_key("cuda")):
    print("in", flush=True)
    time.sleep(float(sys.argv[1]))
"""


def _entered_after(gate, delay_s: float) -> tuple[threading.Thread, threading.Event]:
    """Run `gate()` (a context manager) in a thread; the event is set once inside."""
    inside = threading.Event()

    def go() -> None:
        with gate():
            inside.set()

    t = threading.Thread(target=go, daemon=True)
    t.start()
    inside.wait(delay_s)
    return t, inside


def test_a_gpu_request_waits_while_another_process_times_that_gpu_only(runtime, monkeypatch) -> None:
    env = {**runtime, "CUDA_VISIBLE_DEVICES": "GPU-aaaa"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa")
    key = node.device_key("cuda")
    holder = _holder(env, "cuda")
    try:
        t, inside = _entered_after(lambda: quiet.device_request(key), 0.5)
        assert not inside.is_set()  # another verdict's call would have run beside the timed span
    finally:
        holder.kill()
        holder.wait()
    assert inside.wait(2.0)  # the timer is gone: the request goes ahead
    t.join(5)
    # Another GPU's timer, and CPU timing, hold nothing up here.
    for other, device in (({**runtime, "CUDA_VISIBLE_DEVICES": "GPU-bbbb"}, "cuda"), (runtime, "cpu")):
        holder = _holder(other, device)
        try:
            _, inside = _entered_after(lambda: quiet.device_request(key), 1.0)
            assert inside.is_set()
        finally:
            holder.kill()
            holder.wait()


def test_a_gpu_timer_waits_for_another_process_s_request_in_flight(runtime, monkeypatch) -> None:
    env = {**runtime, "CUDA_VISIBLE_DEVICES": "GPU-aaaa"}
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa")
    req = subprocess.Popen([sys.executable, "-c", REQUESTER, "1.0"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert req.stdout.readline().strip() == "in"
        t0 = time.monotonic()
        with quiet.quiet("cuda"):
            waited = time.monotonic() - t0
        assert 0.5 <= waited < 5.0, waited  # until the request was answered (1 s after it began)
        # This process's own requests to the GPU it times are the timed ones: they pass at once.
        with quiet.quiet("cuda"):
            _, inside = _entered_after(lambda: quiet.device_request(node.device_key("cuda")), 1.0)
            assert inside.is_set()
    finally:
        req.kill()
        req.wait()


def test_which_worker_requests_wait_for_another_process_s_gpu_timing(monkeypatch) -> None:
    """Work on the GPU does; a build, a compile or bookkeeping does not, nor a CPU worker, nor a
    pre-started pair setting up (background work, stopped whenever anything times)."""
    from contextlib import nullcontext

    from kernelwright.protocol import Op
    from kernelwright.sandbox.process import SandboxConfig, Worker

    seen: list[str] = []
    monkeypatch.setattr(quiet, "device_request", lambda key: seen.append(key) or nullcontext())
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa")
    gpu, cpu = object.__new__(Worker), object.__new__(Worker)
    gpu.config, cpu.config = SandboxConfig(cuda=True), SandboxConfig(cuda=False)
    for op in (Op.RUN, Op.TIME, Op.SETUP, Op.MAKE_SET, Op.COMPARE, Op.PROFILE, Op.CEILINGS):
        seen.clear()
        with gpu._gate({"op": op}):
            pass
        assert seen == ["GPU-aaaa"], op
    seen.clear()
    for op in (Op.BUILD, Op.LOAD, Op.COMPILE, Op.FLOPS, Op.INTEGRITY, Op.EXIT):
        with gpu._gate({"op": op}):
            pass
    with cpu._gate({"op": Op.RUN}):
        pass
    gpu.signal = lambda sig: None  # registered below: nothing to stop in this stand-in
    with quiet.background(gpu):
        with gpu._gate({"op": Op.SETUP}):
            pass
    assert seen == []
