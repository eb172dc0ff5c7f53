"""Background work stands still while anything on this machine is timed.

A search builds slow candidates ahead of judging and captures torch.compile's
code in child processes while the judge is busy. A compiler competing for the
cores during a timed call would make one verdict's times incomparable with the
next one's (and the candidate's with its own eager baseline). Background
processes register here for as long as they run; the judge holds `quiet(device)`
around its timed calls.

Node-wide (sandbox.node): `quiet(device)` first takes the device's timing lock, so two
judging processes never time one device at once (CPU timing is machine-wide), then marks
the node as timing and waits until every process with background work has stopped it.
Each such process stops and continues its own work (through its own handles: a sandbox
Worker keeps count of who stopped it): at once for a quiet period of its own, and within
POLL_S for another process's, by a follower thread that watches the node's state while it
has anything registered. A timer that dies drops its locks with its process, and the
followers continue their work within POLL_S: nothing stays stopped or locked.

A GPU shared by several judging processes (slots on one GPU, two benches) also has the other
verdicts' own work on it, which is not background work: their workers' checked calls, reference
runs, profiles, set-ups. Each request a worker sends to a GPU outside its process's own timed
span of that GPU goes through `device_request`: it waits while another process times the GPU,
and the GPU's timer waits for the requests already in flight (up to DEVICE_BARRIER_TIMEOUT_S),
so no other verdict's work runs on the GPU beside a timed span. Other GPUs and the CPU are not
held up: a slot's CPU work runs on cores of its own (executor._slots).
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from contextlib import contextmanager
from typing import Iterator, Protocol

from kernelwright.sandbox import node

# How often a process with background work looks whether another process times (the most a
# timer waits for it to stop its work, and the longest its work stays stopped after the last
# timer left).
POLL_S = 0.005
# A process that does not stop its work within this long (frozen, or its interpreter held by
# a long call) is not waited for: the timer goes ahead rather than hang.
BARRIER_TIMEOUT_S = 2.0
# How long a GPU's timer waits for other verdicts' requests in flight on it to be answered (a
# checked call or a float64 reference of a large task takes seconds); then it goes ahead.
DEVICE_BARRIER_TIMEOUT_S = 30.0


class Signalable(Protocol):
    """Anything whose whole process tree can be signalled (a sandbox Worker, a process group)."""

    def signal(self, sig: int) -> None: ...


class ProcessGroup:
    """A child started with start_new_session=True: its group is everything it started."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid

    def signal(self, sig: int) -> None:
        """Signal the whole group (gone already: nothing to do)."""
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass


_lock = threading.Lock()
_registered: list[Signalable] = []
_depth = 0  # quiet periods open in this process, any thread
_node_busy = False  # another process's timing, as last probed
_stopped = False  # the registered work is stopped now
_running_fd: int | None = None  # our shared hold of node.RUNNING while our work runs
_prober: node.Prober | None = None
_follower: threading.Event | None = None  # set to end the follower thread
_owners: dict[int, int] = {}  # thread -> its open quiet periods: a nested one takes no lock again
_timing_here: dict[str, int] = {}  # GPU key -> quiet periods this process holds on it (device_request passes)


def _settle(probe: bool) -> None:
    """Under _lock: stop or continue the registered work to match whether anything times.

    The running lock is taken before the node is probed, so a timer that comes after the
    probe waits (at its barrier) until the next look stops this work.
    """
    global _stopped, _node_busy, _prober
    if not _registered:
        _release_running()
        _stopped = False
        return
    if probe and _depth == 0:
        _hold_running()
        _prober = _prober or node.Prober()
        _node_busy = _prober.timing()
    if _depth > 0 or _node_busy:
        if not _stopped:
            for proc in _registered:
                proc.signal(signal.SIGSTOP)
            _stopped = True
        _release_running()
    else:
        _hold_running()
        if _stopped:
            for proc in _registered:
                proc.signal(signal.SIGCONT)
            _stopped = False


def _hold_running() -> None:
    global _running_fd
    if _running_fd is None:
        _running_fd = node.open_lock(node.RUNNING)
        node.lock(_running_fd, fcntl.LOCK_SH)


def _release_running() -> None:
    global _running_fd
    if _running_fd is not None:
        os.close(_running_fd)  # closing drops the lock
        _running_fd = None


def _follow(done: threading.Event) -> None:
    """The follower thread: stop or continue our work as other processes start and stop timing."""
    while not done.wait(POLL_S):
        with _lock:
            if done.is_set():
                return
            _settle(probe=True)


@contextmanager
def background(proc: Signalable) -> Iterator[None]:
    """Register `proc` as background work for the duration of the block."""
    global _follower
    with _lock:
        _registered.append(proc)
        if _stopped:
            proc.signal(signal.SIGSTOP)
        _settle(probe=True)
        if _follower is None:
            _follower = threading.Event()
            threading.Thread(target=_follow, args=(_follower,), name="kw-quiet-follower", daemon=True).start()
    try:
        yield
    finally:
        with _lock:
            _registered.remove(proc)
            if not _registered and _follower is not None:
                _follower.set()
                _follower = None
            _settle(probe=False)
        # Never leave it stopped: whoever owns it next (a kill, a wait) needs it running.
        proc.signal(signal.SIGCONT)


@contextmanager
def quiet(device: str = node.CPU_KEY) -> Iterator[None]:
    """Time `device` alone on this machine, with all background work stopped, for the duration.

    Waits while another process (or thread) times the same device. Re-entrant within a thread.
    """
    global _depth
    me = threading.get_ident()
    with _lock:
        nested = me in _owners
        _owners[me] = _owners.get(me, 0) + 1
    key = node.device_key(device)
    gpu = key != node.CPU_KEY
    device_fd = timing_fd = gpu_fd = -1
    entered = False
    try:
        if not nested:
            device_fd = node.open_lock(f"device-{key}.lock")
            node.lock(device_fd, fcntl.LOCK_EX)  # before stopping anything: the wait may be long
            with _lock:
                _depth += 1
                if gpu:  # this process's own requests to the GPU are what it times: they pass
                    _timing_here[key] = _timing_here.get(key, 0) + 1
                entered = True
                _settle(probe=False)
            timing_fd = node.open_lock(node.TIMING)
            node.lock(timing_fd, fcntl.LOCK_SH)
            if gpu:
                gpu_fd = node.open_lock(node.timing_lock(key))
                node.lock(gpu_fd, fcntl.LOCK_SH)
            node.wait_until_still(BARRIER_TIMEOUT_S, POLL_S / 5)
            if gpu:
                node.wait_until_still(DEVICE_BARRIER_TIMEOUT_S, POLL_S, node.running_lock(key))
        yield
    finally:
        for fd in (gpu_fd, timing_fd, device_fd):  # closing drops the locks; before the probe, which must not see ours
            if fd >= 0:
                os.close(fd)
        with _lock:
            _owners[me] -= 1
            if not _owners[me]:
                del _owners[me]
            if entered:
                _depth -= 1
                if gpu:
                    _timing_here[key] -= 1
                    if not _timing_here[key]:
                        del _timing_here[key]
                _settle(probe=True)


@contextmanager
def device_request(key: str) -> Iterator[None]:
    """Hold GPU `key` for one request of a worker: wait while another process times the GPU, then
    keep that GPU's next timer waiting (up to DEVICE_BARRIER_TIMEOUT_S) until the request is answered.

    A no-op for the CPU and while this process times the GPU itself (its own timed requests).
    """
    global _prober
    if key == node.CPU_KEY or _timing_here.get(key):
        yield
        return
    fd = node.open_lock(node.running_lock(key))
    try:
        while True:
            # Held before the look, as background work holds RUNNING: a timer that comes after
            # the look waits at its barrier for this request.
            node.lock(fd, fcntl.LOCK_SH)
            with _lock:
                own = bool(_timing_here.get(key))
                if not own:
                    _prober = _prober or node.Prober()
                busy = not own and _prober is not None and _prober.timing(node.timing_lock(key))
            if own:  # this process began timing the GPU meanwhile: its requests pass, holding nothing
                fcntl.flock(fd, fcntl.LOCK_UN)
                break
            if not busy:
                break
            fcntl.flock(fd, fcntl.LOCK_UN)
            time.sleep(POLL_S)
        yield
    finally:
        os.close(fd)  # closing drops the lock


def is_background(proc: Signalable) -> bool:
    """Whether `proc` is registered as background work (stopped whenever anything on the node times)."""
    with _lock:
        return any(p is proc for p in _registered)


def is_quiet() -> bool:
    """Whether some thread of this process is timing right now (for tests and diagnostics)."""
    return _depth > 0
