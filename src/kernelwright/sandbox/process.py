"""Spawn, talk to, and kill one sandboxed worker process.

A worker is a fresh interpreter (never a fork of the judge, which holds
reference outputs), in its own session and process group, with resource
limits, a scrubbed environment, its own scratch and build directories, and a
private authenticated channel. Whatever happens inside it, the judge gets
either an authenticated reply or a `WorkerFailure` that says what went wrong.
"""

from __future__ import annotations

import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ContextManager, Mapping

from kernelwright import constants as C
from kernelwright.judge.result import Check
from kernelwright.protocol import ENTRY_MODULE, SECRET_BYTES, Op, Role
from kernelwright.sandbox import limits, node, quiet
from kernelwright.sandbox.channel import Channel, ChannelError, widen_pipe

# Requests whose work runs on the CPU (a candidate's import and build, torch.compile's codegen,
# FLOP counting on meta tensors, bookkeeping): they do not wait for another process's GPU timing.
_CPU_OPS = frozenset({Op.BUILD, Op.LOAD, Op.COMPILE, Op.FLOPS, Op.INTEGRITY, Op.FORGET, Op.RESET, Op.EXIT})


class WorkerFailure(Exception):
    """A worker died, hung, ran out of memory or broke the protocol.

    A plain exception (not a frozen dataclass): raising machinery must be able
    to set its traceback.
    """

    def __init__(self, kind: Check, detail: str, machine: bool = False) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind  # Check.CRASH, TIMEOUT, MEMORY or PROTOCOL
        self.detail = detail
        self.machine = machine  # the machine ran out (the system's OOM killer), not this worker's limit


@dataclass(frozen=True)
class SandboxConfig:
    """Limits for one worker."""

    memory_bytes: int = field(default_factory=limits.default_worker_memory)
    file_size_bytes: int = C.WORKER_FILE_SIZE_BYTES
    max_processes: int = C.WORKER_MAX_PROCESSES
    threads: int | None = None
    cuda: bool = False
    drop_capabilities: bool = True
    build_cache_dir: str | None = None
    # Candidate workers: no network, a minimal file-system view, no signals out (sandbox.confine).
    confine: bool = True
    # A confined worker may also read these until it loads its candidate, never after
    # (confine.ENV_READABLE_UNTIL_LOAD): a pair's candidate worker builds the task's Model first.
    readable_until_load: tuple[str, ...] = ()
    # A reference worker whose verdict compiles the torch.compile baseline imports torch.compile's
    # modules as it starts (1.7 s on the 2-core machine): in a pair pre-started during a search,
    # that is off the verdict's path (judge.pairs) rather than inside its timing phase.
    preload_compiler: bool = False


class Worker:
    """A sandboxed interpreter running `kernelwright.worker.entry` with one role."""

    def __init__(self, role: Role, config: SandboxConfig) -> None:
        self.role = role
        self.config = config
        self.scratch = Path(tempfile.mkdtemp(prefix=f"kw-{role}-"))
        self._secret = secrets.token_bytes(SECRET_BYTES)
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        for fd in (to_child_w, from_child_w):
            widen_pipe(fd)
        self._log_path = self.scratch / "worker.log"
        self._failure: WorkerFailure | None = None
        self._killed_for: Check | None = None
        self._oom_kills = limits.oom_kills()  # to tell the system's OOM killer from other SIGKILLs
        self.affinity_violation: str | None = None  # set by the watchdog: the tree left its cores
        # The judge stops a worker's tree on purpose (it times the other side). Found stopped
        # while the judge is not holding it, someone else stopped it: it is resumed and counted.
        self._held = False
        self._hold_lock = threading.Lock()  # the judge's stops and continues vs the request loop's look
        self.external_stops = 0
        self.reused = False  # a reference worker kept from an earlier verdict (judge.pairs)
        self.tag = secrets.token_hex(8)
        env = limits.scrubbed_env(self.scratch, config, self.tag)
        log = open(self._log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", ENTRY_MODULE, str(role),
                 str(to_child_r), str(from_child_w)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(to_child_r, from_child_w), env=env, cwd=self.scratch,
                start_new_session=True,
                preexec_fn=lambda: limits.apply_rlimits(config),
            )
        finally:
            log.close()
            os.close(to_child_r)
            os.close(from_child_w)
        limits.LIVE_WORKERS.add(self.proc.pid)
        self._chan = Channel(from_child_r, to_child_w, self._secret, mac_blobs=role != Role.CANDIDATE)
        self._chan.idle = self._resume_if_stopped
        self._read_fd = from_child_r
        # The secret goes over the pipe, never argv or env (both readable in /proc).
        os.write(to_child_w, self._secret)
        self._stop_watch = threading.Event()
        self._watch = threading.Thread(target=self._watch_memory, daemon=True)
        self._watch.start()

    # -- requests -------------------------------------------------------------

    def request(self, header: Mapping[str, Any], blobs: list[bytes] | None = None,
                timeout: float = C.CALL_TIMEOUT_S) -> tuple[dict[str, Any], list[bytes], float]:
        """Send one request; return (reply header, blobs, judge-clock seconds)."""
        if self._failure:
            raise self._failure
        with self._gate(header):
            return self._request(header, blobs, timeout)

    def _gate(self, header: Mapping[str, Any]) -> ContextManager[None]:
        """A request that runs work on the GPU waits while another process times it, and holds that
        process's next timed span off until answered (quiet.device_request); builds, compiles and
        bookkeeping run on the CPU and pass. So does a worker registered as background work (a
        pre-started pair setting up): it is stopped whenever anything times, and a request held
        open while it stands still would keep the GPU's timer waiting for nothing."""
        if not self.config.cuda or header.get("op") in _CPU_OPS or quiet.is_background(self):
            return nullcontext()
        return quiet.device_request(node.device_key("cuda"))

    def _request(self, header: Mapping[str, Any], blobs: list[bytes] | None,
                 timeout: float) -> tuple[dict[str, Any], list[bytes], float]:
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        try:
            self._chan.send(header, blobs)
            self._wait_readable(timeout)
            reply, rblobs = self._chan.recv(deadline=deadline)
        except ChannelError as exc:
            if "deadline" in str(exc):
                self._killed_for = self._killed_for or Check.TIMEOUT
                self.kill()
                raise self._record(WorkerFailure(
                    Check.TIMEOUT, f"no complete answer within {timeout:.0f} s; the worker was killed")) from None
            raise self._fail_from(exc) from None
        # A reply with status "error" is an exception the worker caught: the caller decides.
        return reply, rblobs, time.perf_counter() - t0

    def _wait_readable(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self._killed_for = self._killed_for or Check.TIMEOUT
                self.kill()
                raise self._record(WorkerFailure(
                    Check.TIMEOUT, f"no answer within {timeout:.0f} s; the worker was killed"))
            ready, _, _ = select.select([self._read_fd], [], [], min(left, C.STOPPED_POLL_S))
            if ready:
                return
            if self.proc.poll() is not None:
                return  # EOF will surface from recv with the exit status
            self._resume_if_stopped()

    def _resume_if_stopped(self) -> None:
        # Under the hold lock: the judge's own stop or continue (another thread) lands either
        # wholly before this look or wholly after it, never between the look at `_held` and the
        # look at the process's state (which would count the judge's own stop as another's).
        with self._hold_lock:
            if not self._held and limits.is_stopped(self.proc.pid):
                # Only the judge may stop a worker, and it is not holding this one: another
                # process (the candidate's, in practice) did. Waiting would end in a timeout
                # that blames whoever owns this worker, so resume it and let the judge decide.
                self.external_stops += 1
                limits.signal_tree(self.proc.pid, signal.SIGCONT, self.tag)

    def renew(self) -> None:
        """Count afresh for a new verdict (a reference worker kept for it, judge.pairs): the
        system's OOM kills seen so far, and whether the tree left its cores."""
        self._oom_kills = limits.oom_kills()
        self.affinity_violation = None
        self.reused = True

    # -- failures -------------------------------------------------------------

    @property
    def failure(self) -> WorkerFailure | None:
        """How this worker failed, if it did."""
        return self._failure

    def _fail_from(self, exc: Exception) -> WorkerFailure:
        if self._failure:
            return self._failure
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.wait()
        if self._killed_for == Check.MEMORY:
            return self._record(WorkerFailure(
                Check.MEMORY, f"the worker used more than {self.config.memory_bytes >> 20} MiB "
                "of memory and was killed"))
        if code == -signal.SIGKILL and self._oom_kills >= 0 and limits.oom_kills() > self._oom_kills:
            # Not the judge's kill: the machine ran out of memory and the kernel chose this worker
            # (the workers are its first choice). A memory failure, never a crash to blame on code.
            total = limits.machine_memory()[0]
            return self._record(WorkerFailure(
                Check.MEMORY, f"the machine ran out of memory ({total / (1 << 30):.1f} GiB of RAM for the judge "
                "and both workers) and the system's OOM killer stopped the worker", machine=True))
        if isinstance(exc, ChannelError) and "closed" not in str(exc):
            self.kill()
            return self._record(WorkerFailure(Check.PROTOCOL, str(exc)))
        return self._record(WorkerFailure(Check.CRASH, describe_exit(code) + self._log_tail()))

    def _record(self, failure: WorkerFailure) -> WorkerFailure:
        self._failure = failure
        return failure

    def _log_tail(self) -> str:
        try:
            text = self._log_path.read_text(errors="replace").strip()
        except OSError:
            return ""
        if not text:
            return ""
        return "; its last output: " + text[-C.STDERR_TAIL_CHARS:]

    def log_text(self) -> str:
        """Everything the worker printed (untrusted; for diagnostics only)."""
        try:
            return self._log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- memory watchdog and cleanup -----------------------------------------

    def _watch_memory(self) -> None:
        while not self._stop_watch.wait(C.MEMORY_POLL_S):
            if self.proc.poll() is not None:
                return
            if limits.group_rss_bytes(self.proc.pid) > self.config.memory_bytes:
                self._killed_for = Check.MEMORY
                self.kill()
                return
            self._watch_affinity()

    def check_affinity(self) -> str | None:
        """Sample the tree's allowed CPUs now; the violation seen so far, if any.

        The watchdog samples every 0.1 s; the judge samples once more before it reads the
        result, so a widening that persists is caught even in a verdict shorter than that.
        """
        if self.proc.poll() is None:
            self._watch_affinity()
        return self.affinity_violation

    def _watch_affinity(self) -> None:
        # Sampled while the worker runs (timed calls included), from outside its process.
        budget = self.config.threads
        if budget and self.affinity_violation is None and len(os.sched_getaffinity(0)) > budget:
            widest = limits.widest_affinity(self.proc.pid)
            if widest > budget:
                self.affinity_violation = (f"a thread of the worker was allowed on {widest} CPUs, "
                                           f"over its budget of {budget}")

    def limit_messages(self, nbytes: int) -> None:
        """Refuse any message from this worker larger than `nbytes` before reading it: a
        worker that streams a huge frame would otherwise make the judge allocate it."""
        self._chan.max_frame = nbytes

    def signal(self, sig: int) -> None:
        """Signal the worker's whole tree: its group, descendants and orphans it left to the judge."""
        if self.proc.poll() is not None:
            return
        if sig not in (signal.SIGSTOP, signal.SIGCONT):
            limits.signal_tree(self.proc.pid, sig, self.tag)
            return
        with self._hold_lock:  # `_held` says true whenever the tree may be stopped by us
            self._held = sig == signal.SIGSTOP
            limits.signal_tree(self.proc.pid, sig, self.tag)

    def kill(self) -> None:
        """Kill the worker, its process group and every descendant it left."""
        limits.kill_tree(self.proc.pid, self.tag)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        """Kill the worker's whole tree and remove its scratch directory (safe to call twice).

        No polite exit request: a worker may be hostile and ignore it, and nothing
        it holds needs flushing.
        """
        self._stop_watch.set()
        self.kill()
        self._chan.close()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_exit(code: int | None) -> str:
    """A sentence for a worker's exit status."""
    if code is None:
        return "the worker did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        meaning = {
            "SIGSEGV": " (segmentation fault)", "SIGBUS": " (bus error)",
            "SIGABRT": " (aborted)", "SIGKILL": " (killed)", "SIGFPE": " (arithmetic error)",
            "SIGILL": " (illegal instruction)", "SIGXFSZ": " (file size limit)",
        }.get(name, "")
        return f"the worker died from {name}{meaning} before it sent a complete result"
    return f"the worker exited with code {code} before it sent a complete result"
