"""Node-wide timing state, shared by every judging process of one user on one machine.

Several judging processes may share a machine: local executor slots, Ray workers on one
node, two benches. Their timed spans must not overlap on one device, and no background build
may run while anything is timed. They agree through `flock` on files in a private runtime
directory (KERNELWRIGHT_RUNTIME_DIR, else /tmp/kernelwright-UID/quiet): the kernel drops a
lock when its holder dies, however it dies, so no lock is ever stale.

Three kinds of lock:
- `device-KEY.lock`, exclusive: the one timer of a device (a GPU by its UUID; `cpu` for CPU
  timing, which is machine-wide).
- `timing.lock`, shared by every timer for its whole timed span: "something on this node is
  being timed". Probed with a non-blocking exclusive try, serialized by `probe.lock`, so a
  failed try means a timer holds it, never another prober.
- `running.lock`, shared by each process whose background work runs: a timer that takes it
  exclusively (and lets go at once) knows every such process has stopped its work.

And per GPU, for judging processes that share one (slots on one GPU, two benches): a timer of
the GPU also holds `timing-KEY.lock` shared, and `running-KEY.lock` is held shared by each
request another verdict has in flight on that GPU (quiet.device_request), so that no other
verdict's GPU work runs beside a timed span of that GPU.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import time
from functools import lru_cache
from pathlib import Path

ENV_RUNTIME_DIR = "KERNELWRIGHT_RUNTIME_DIR"
CPU_KEY = "cpu"
TIMING = "timing.lock"
RUNNING = "running.lock"
PROBE = "probe.lock"


def timing_lock(key: str) -> str:
    """The lock a timer of device `key` holds shared for its timed span (a GPU's; the CPU's is TIMING)."""
    return f"timing-{key}.lock"


def running_lock(key: str) -> str:
    """The lock each request in flight on device `key` holds shared (quiet.device_request)."""
    return f"running-{key}.lock"


def runtime_dir() -> Path:
    """The private folder of the node's lock files (created 0700; refused if someone else owns it)."""
    root = Path(os.environ.get(ENV_RUNTIME_DIR) or f"/tmp/kernelwright-{os.getuid()}") / "quiet"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(root)
    # Another user's folder (or a link planted in /tmp) could hold our locks for ever or watch us.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise RuntimeError(f"{root} is not a folder of this user's; set {ENV_RUNTIME_DIR} to a private folder")
    return root


def open_lock(name: str) -> int:
    """A new open file description of a lock file (flock conflicts between descriptions, even in one process)."""
    return os.open(runtime_dir() / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def device_key(device: str) -> str:
    """The physical device that `device` ("cpu", "cuda", "cuda:N") names for this process's workers.

    A GPU is named by its UUID, so two processes that see it under different indices
    (CUDA_VISIBLE_DEVICES) still share one lock.
    """
    if not device.startswith("cuda"):
        return CPU_KEY
    index = int(device.split(":", 1)[1]) if ":" in device else 0
    return _gpu_key(os.environ.get("CUDA_VISIBLE_DEVICES"), index)


@lru_cache(maxsize=None)
def _gpu_key(visible: str | None, index: int) -> str:
    entries = [e.strip() for e in visible.split(",")] if visible else []
    if index < len(entries) and entries[index].startswith(("GPU-", "MIG-")):
        return _safe(entries[index])
    try:
        import torch

        return _safe(f"GPU-{torch.cuda.get_device_properties(index).uuid}")
    except Exception:  # noqa: BLE001 - no UUID to be had: the visible entry (or index) names it
        return _safe(f"cuda-{entries[index] if index < len(entries) else index}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def lock(fd: int, kind: int) -> None:
    """flock, retried when a signal interrupts the wait."""
    while True:
        try:
            fcntl.flock(fd, kind)
            return
        except InterruptedError:
            continue


def try_lock(fd: int, kind: int) -> bool:
    """A non-blocking flock: whether it was taken."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class Prober:
    """This process's question "is anything on this node being timed?" (one per process, under its lock).

    It keeps the lock files of the runtime folder of when it was made.
    """

    def __init__(self) -> None:
        self.probe_fd = open_lock(PROBE)
        self.fds = {TIMING: open_lock(TIMING)}

    def timing(self, name: str = TIMING) -> bool:
        """Whether some process (this one included) holds a timed span now: of anything (TIMING),
        or of one GPU (`timing_lock(key)`)."""
        fd = self.fds.get(name)
        if fd is None:
            fd = self.fds[name] = open_lock(name)
        lock(self.probe_fd, fcntl.LOCK_EX)
        try:
            if try_lock(fd, fcntl.LOCK_EX):
                fcntl.flock(fd, fcntl.LOCK_UN)
                return False
            return True
        finally:
            fcntl.flock(self.probe_fd, fcntl.LOCK_UN)


def wait_until_still(timeout_s: float, poll_s: float, name: str = RUNNING) -> bool:
    """Wait until no process holds `name` (RUNNING: all background work stopped; a GPU's
    `running_lock`: no other verdict's request in flight on it); False on timeout.

    The exclusive lock is only tried, never waited for in the kernel, and let go at once: timers
    on other devices pass the same barrier and must not queue behind one another.
    """
    fd = open_lock(name)
    try:
        deadline = time.monotonic() + timeout_s
        while not try_lock(fd, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)
        return True
    finally:
        os.close(fd)  # closing drops the lock
