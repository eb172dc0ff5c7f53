"""Environment scrubbing, hardening and process-tree cleanup."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kernelwright.judge.result import Check
from kernelwright.protocol import Op, Role, SetupRequest, Status
from kernelwright.sandbox import limits
from kernelwright.sandbox.process import SandboxConfig, Worker, WorkerFailure, describe_exit


def test_scrubbed_env_drops_secrets_and_sets_private_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    monkeypatch.setenv("KERNELWRIGHT_CACHE", "/somewhere")
    env = limits.scrubbed_env(tmp_path, SandboxConfig(threads=3))
    assert "OPENAI_API_KEY" not in env and "KERNELWRIGHT_CACHE" not in env
    assert env["HOME"].startswith(str(tmp_path)) and env["TORCH_EXTENSIONS_DIR"].startswith(str(tmp_path))
    assert env["OMP_NUM_THREADS"] == "3" and env["CUDA_VISIBLE_DEVICES"] == ""


def test_hardened_child_cannot_read_the_judges_memory() -> None:
    """A root worker without CAP_SYS_PTRACE cannot read a non-dumpable parent's memory."""
    code = textwrap.dedent("""
        import os, sys
        os.environ["KERNELWRIGHT_DROP_CAPS"] = "1"
        from kernelwright.sandbox import limits
        limits.harden_self()
        try:
            with open(f"/proc/{os.getppid()}/mem", "rb") as f:
                f.read(1)
            print("READ")
        except OSError as e:
            print("DENIED", e.errno)
    """)
    parent = textwrap.dedent(f"""
        import subprocess, sys
        from kernelwright.sandbox import limits
        limits.protect_self()
        out = subprocess.run([sys.executable, "-c", {code!r}], capture_output=True, text=True)
        print(out.stdout.strip(), out.stderr.strip()[-300:])
    """)
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=60)
    assert "DENIED" in out.stdout, out.stdout + out.stderr


def test_kill_tree_reaches_setsid_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"""
import subprocess, time
p = subprocess.Popen(["sleep", "300"], start_new_session=True)
open({str(pidfile)!r}, "w").write(str(p.pid))
time.sleep(300)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    limits.LIVE_WORKERS.add(proc.pid)
    deadline = time.time() + 30
    while not pidfile.exists() or not pidfile.read_text():
        assert time.time() < deadline
        time.sleep(0.05)
    grandchild = int(pidfile.read_text())
    limits.kill_tree(proc.pid)
    proc.wait(timeout=10)
    time.sleep(0.2)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_describe_exit_names_signals() -> None:
    assert "segmentation fault" in describe_exit(-11)
    assert "code 3" in describe_exit(3)


def test_worker_that_dies_gives_a_failure_not_an_exception_storm() -> None:
    w = Worker(Role.CANDIDATE, SandboxConfig())
    try:
        reply, _, _ = w.request(SetupRequest(op=Op.SETUP, device="cpu", threads=1), timeout=120)
        assert reply["status"] == Status.OK
        # The worker runs arbitrary source through its load op; make it exit hard.
        with pytest.raises(WorkerFailure) as info:
            w.request({"op": Op.LOAD, "source": "import os\nos._exit(0)\n", "filename": "c.py",
                       "init_inputs": {"k": "list", "items": []}, "state": {"k": "dict", "items": {}},
                       "weight_seed": 1}, timeout=60)
        assert info.value.kind == Check.CRASH and "exited with code 0" in info.value.detail
    finally:
        w.close()
    assert not w.scratch.exists()


def test_worker_timeout_kills_it() -> None:
    w = Worker(Role.CANDIDATE, SandboxConfig())
    try:
        w.request(SetupRequest(op=Op.SETUP, device="cpu", threads=1), timeout=120)
        t0 = time.time()
        with pytest.raises(WorkerFailure) as info:
            w.request({"op": Op.LOAD, "source": "while True: pass\n", "filename": "c.py",
                       "init_inputs": {"k": "list", "items": []}, "state": {"k": "dict", "items": {}},
                       "weight_seed": 1}, timeout=2)
        assert info.value.kind == Check.TIMEOUT and time.time() - t0 < 20
        assert w.proc.poll() is not None
    finally:
        w.close()


def test_slots_sharing_a_machine_share_its_workers_memory() -> None:
    """N judging slots on one machine ask, between them, for what one slot asks for (never under
    the floor): the local slots and a Ray node's GPU slots take their part (executor docs)."""
    from kernelwright import constants as C

    one = limits.default_worker_memory()
    assert limits.default_worker_memory(1) == one
    for n in (2, 4, 64):
        share = limits.default_worker_memory(n)
        assert C.WORKER_MEMORY_FLOOR_BYTES <= share <= one
        assert share == C.WORKER_MEMORY_FLOOR_BYTES or n * share <= one


def test_where_ran_names_the_cpu_and_node_a_process_last_ran_on() -> None:
    import os
    import re
    import subprocess
    import sys

    from kernelwright.sandbox import limits

    here = limits.where_ran(os.getpid())
    assert re.fullmatch(r"cpu \d+( node \d+)?", here), here
    assert int(here.split()[1]) in os.sched_getaffinity(0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert limits.where_ran(child.pid) == "cpu ?"  # gone: nothing to read, no exception
