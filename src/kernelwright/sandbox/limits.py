"""Resource limits, environment scrubbing, capability dropping and process-tree cleanup."""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import kernelwright
from kernelwright import constants as C
from kernelwright.paths import cache_dir
from kernelwright.protocol import PRELOAD_COMPILER_ENV
from kernelwright.sandbox import confine, pch

if TYPE_CHECKING:
    from kernelwright.sandbox.process import SandboxConfig

# Variables a worker needs to find its toolchain; everything else is dropped
# (API keys, the judge's own settings, anything a candidate could read).
_KEEP_ENV = (
    "PATH", "LANG", "LC_ALL", "CUDA_HOME", "CUDA_PATH", "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH", "CC", "CXX", "NVCC", "TORCH_CUDA_ARCH_LIST", "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE", "NCCL_NVLS_ENABLE", "TORCH_SYMM_MEM_DISABLE_MULTICAST",
    "NVSHMEM_DISABLE_NVLS", "TRITON_INTERPRET", "MAX_JOBS", "PYENV_ROOT", "PYENV_VERSION",
    "VIRTUAL_ENV", "CONDA_PREFIX",
)

# Capabilities a candidate has no use for; CAP_SYS_PTRACE above all, which would
# let a root worker read the judge's memory through /proc/PID/mem.
_DROP_CAPS = (2, 16, 17, 19, 21, 22, 25, 27)  # DAC_READ_SEARCH, SYS_MODULE, SYS_RAWIO,
# SYS_PTRACE, SYS_ADMIN, SYS_BOOT, SYS_TIME, MKNOD
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
# Resolved once in the parent: a child between fork and exec must not dlopen.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl


def scrubbed_env(scratch: Path, config: "SandboxConfig", tag: str = "") -> dict[str, str]:
    """The environment of a worker: a short allow-list plus private directories."""
    env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
    src_root = str(Path(kernelwright.__file__).resolve().parent.parent)
    build = Path(config.build_cache_dir) if config.build_cache_dir else scratch / "build"
    for sub in ("home", "tmp"):
        (scratch / sub).mkdir(exist_ok=True)
    build.mkdir(parents=True, exist_ok=True)
    # The interpreter's own bin directory first: ninja and other tools installed
    # with kernelwright live there, and version-manager shims need a HOME we replace.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "/usr/bin:/bin")])
    env.update(
        HOME=str(scratch / "home"),
        TMPDIR=str(scratch / "tmp"),
        PYTHONPATH=src_root,
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        PYTHONHASHSEED="random",
    )
    env.update(build_env(build))
    # One precompiled torch/extension.h per toolchain and flags, for every candidate (pch.py);
    # the variable, when the judge's own environment sets it, moves it out of the cache.
    env[pch.ENV] = str(pch_root())
    # The same allocator behaviour in every worker: glibc's dynamic mmap threshold
    # otherwise depends on what a process happened to allocate before (a worker
    # that received large input buffers then trims and re-faults its heap on every
    # call), which would make identical code time differently in different workers.
    env["MALLOC_MMAP_THRESHOLD_"] = str(1 << 30)
    # Inductor (the reference's torch.compile baseline) otherwise test-builds each vector ISA
    # the CPU reports before it trusts it: 8-9 s of every CPU verdict with that baseline on
    # the 2-core machine. It then picks the same ISA, so the compiled code and its time do not
    # change; a toolchain that cannot build it fails the baseline, which the verdict reports.
    # The user's own setting, when there is one, is kept.
    env["TORCHINDUCTOR_VEC_ISA_OK"] = os.environ.get("TORCHINDUCTOR_VEC_ISA_OK") or "1"
    env["MALLOC_TRIM_THRESHOLD_"] = str(1 << 30)
    env["MALLOC_TOP_PAD_"] = str(64 << 20)
    if config.threads:
        env["OMP_NUM_THREADS"] = str(config.threads)
        env["MKL_NUM_THREADS"] = str(config.threads)
    if not config.cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    if config.drop_capabilities:
        env["KERNELWRIGHT_DROP_CAPS"] = "1"
    env["KERNELWRIGHT_WORKER_TAG"] = tag
    if config.preload_compiler:
        env[PRELOAD_COMPILER_ENV] = "1"
    if config.confine:
        env.update(confine_env(scratch, build, config.build_cache_dir is None, env[pch.ENV]))
        if config.readable_until_load:
            env[confine.ENV_READABLE_UNTIL_LOAD] = os.pathsep.join(config.readable_until_load)
    return env


def pch_root() -> Path:
    """Where the shared precompiled headers live (the judge's own setting moves them)."""
    return Path(os.environ.get(pch.ENV) or cache_dir() / "pch")


def confine_env(scratch: Path, build: Path, pooled: bool, pch_dir: str) -> dict[str, str]:
    """What a confined worker may write (its scratch, its build directory) and read besides the
    system's: a pre-started worker learns its build directory later and narrows to it then
    (sandbox.confine.narrow), so it starts with the whole build cache."""
    writable = [str(scratch), str(build)] + ([str(cache_dir() / "build")] if pooled else [])
    # A Landlock rule needs its directory to exist when the worker starts: one made later (the
    # first precompiled header of a fresh cache) would stay out of reach.
    for path in (*writable, pch_dir):
        Path(path).mkdir(parents=True, exist_ok=True)
    return {confine.ENV_CONFINE: "1", confine.ENV_WRITABLE: os.pathsep.join(writable),
            confine.ENV_READABLE: pch_dir}


def build_env(build: Path) -> dict[str, str]:
    """Where every compiler a candidate may use keeps its cache: all under one directory."""
    return {"TORCH_EXTENSIONS_DIR": str(build / "torch_extensions"), "TRITON_CACHE_DIR": str(build / "triton"),
            "TORCHINDUCTOR_CACHE_DIR": str(build / "inductor"), "CUDA_CACHE_PATH": str(build / "nv")}


def machine_memory() -> tuple[int, int]:
    """(total, available) bytes of RAM, from /proc/meminfo (sysconf where it is missing)."""
    try:
        info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
        total = int(info["MemTotal"].split()[0]) << 10
        return total, int(info.get("MemAvailable", info["MemTotal"]).split()[0]) << 10
    except (OSError, KeyError, ValueError):
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total, total // 2


def default_worker_memory(slots: int = 1) -> int:
    """A worker's memory limit on this machine: a share of its RAM, never below the floor.

    `slots`: judging slots sharing this machine (each with its own two workers), which divide
    the share between them, so that N slots together ask for no more of the RAM than one does.
    """
    return max(C.WORKER_MEMORY_FLOOR_BYTES, int(C.WORKER_MEMORY_SHARE * machine_memory()[0] / max(1, slots)))


def apply_rlimits(config: "SandboxConfig") -> None:
    """Run in the child between fork and exec: cap files, processes and cores."""
    _set(resource.RLIMIT_CORE, 0)
    _set(resource.RLIMIT_FSIZE, config.file_size_bytes)
    _set(resource.RLIMIT_NPROC, config.max_processes)
    if not config.cuda:
        # The CUDA driver reserves huge virtual ranges, so address-space limits
        # only apply to CPU workers; the RSS watchdog covers both.
        _set(resource.RLIMIT_AS, config.memory_bytes * 2)
    pin_cores(config.threads)
    # When the machine runs out of memory, the kernel kills a worker, never the judge: the
    # judge then gives a verdict (memory) instead of vanishing with every result in flight.
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    # Killed with the judge, even when stopped (a judge killed during a quiet period would
    # otherwise leave its background workers stopped for ever). The signal follows the
    # death of the spawning thread: workers are spawned by the thread that closes them.
    _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def pin_cores(threads: int | None) -> None:
    """Confine this process (and all it starts) to `threads` cores, the same ones for every side.

    The judge gives every side the same thread count, but a C library or a raw thread can
    ignore torch's setting (omp_set_num_threads, std::thread): pinned, extra threads share
    the same cores and buy nothing.
    """
    if not threads:
        return
    try:
        allowed = sorted(os.sched_getaffinity(0))
        if len(allowed) > threads:
            os.sched_setaffinity(0, allowed[:threads])
    except (AttributeError, OSError):
        pass


def _set(which: int, value: int) -> None:
    try:
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, hard))
    except (ValueError, OSError):
        pass


def harden_self() -> list[str]:
    """Called by a worker before it runs untrusted code; returns what it could not do."""
    problems = []
    libc = ctypes.CDLL(None, use_errno=True)
    # Orphans of whatever the worker starts are re-parented to the worker, so they
    # stay in its tree, where the judge pauses and kills them with it.
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        problems.append("could not become a subreaper")
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        problems.append("could not mark the worker non-dumpable")
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        problems.append("could not set no-new-privileges")
    if os.environ.get("KERNELWRIGHT_DROP_CAPS") == "1" and os.geteuid() == 0:
        if not _drop_caps(libc):
            problems.append("could not drop capabilities")
    return problems


def _drop_caps(libc: ctypes.CDLL) -> bool:
    header, data = confine.cap_structs()
    if libc.capget(ctypes.byref(header), data) != 0:
        return False
    for cap in _DROP_CAPS:
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
        word, bit = divmod(cap, 32)
        mask = ~(1 << bit) & 0xFFFFFFFF
        data[word].effective &= mask
        data[word].permitted &= mask
        data[word].inheritable &= mask
    return libc.capset(ctypes.byref(header), data) == 0


def become_subreaper() -> None:
    """Make this (the judge's) process adopt orphans, so none escapes cleanup."""
    try:
        ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except OSError:
        pass


def protect_self() -> None:
    """Mark the judge non-dumpable (a worker cannot read its memory via /proc) and blank the
    environment block that /proc/<judge>/environ shows (API keys live there)."""
    scrub_environ_block()
    try:
        ctypes.CDLL(None).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    except OSError:
        pass


def scrub_environ_block() -> bool:
    """Overwrite this process's original environment block with zeros; True if it worked.

    The kernel serves /proc/<pid>/environ from that block of the process's own memory,
    to any process of the same user, whatever its dumpable flag says. Setting every
    variable again first makes libc keep its own copies (setenv allocates), so getenv,
    os.environ and child processes still see the whole environment afterwards.
    """
    try:
        for key, value in list(os.environ.items()):
            os.environ[key] = value  # setenv: libc's environ now points at fresh copies
        with open("/proc/self/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        # Fields 50 and 51 of stat (1-based, counting pid and comm) are env_start and env_end.
        start, end = int(fields[47]), int(fields[48])
        if not 0 < start < end or end - start > 1 << 24:
            return False
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(b"\0" * (end - start))
        return True
    except (OSError, ValueError, IndexError):
        return False


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, pgid, rss pages) for every visible process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        try:
            table[int(name)] = (int(rest[1]), int(rest[2]), int(rest[21]))
        except (IndexError, ValueError):
            continue
    return table


def _descendants(root: int, table: dict[int, tuple[int, int, int]]) -> set[int]:
    found = {root}
    changed = True
    while changed:
        changed = False
        for pid, (ppid, _, _) in table.items():
            if ppid in found and pid not in found:
                found.add(pid)
                changed = True
    return found


def oom_kills() -> int:
    """How many processes the kernel's OOM killer has killed since boot (-1 where unknown)."""
    try:
        for line in Path("/proc/vmstat").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return -1


def group_rss_bytes(root: int) -> int:
    """Resident memory of a worker, its process group and its descendants."""
    table = _proc_table()
    pids = _descendants(root, table) | {p for p, (_, g, _) in table.items() if g == root}
    page = os.sysconf("SC_PAGE_SIZE")
    return sum(table[p][2] for p in pids if p in table) * page


def widest_affinity(root: int) -> int:
    """The most CPUs any thread of a worker's group or descendants may run on (0 if unreadable).

    Read from /proc by the judge: a candidate can widen its own affinity
    (sched_setaffinity needs no privilege), so pinning alone does not bind it.
    """
    table = _proc_table()
    widest = 0
    for pid in _descendants(root, table) | {p for p, (_, g, _) in table.items() if g == root} | {root}:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                widest = max(widest, len(os.sched_getaffinity(int(tid))))
            except OSError:
                continue
    return widest


# Workers alive in this judge process; anything else re-parented to us is an orphan.
LIVE_WORKERS: set[int] = set()


def _tree(root: int, tag: str | None = None) -> set[int]:
    """A worker, its process group and descendants, and orphans of it that reached the judge.

    Workers are subreapers, so their orphans normally stay their descendants. An
    orphan re-parented to the judge counts only when it still carries this
    worker's tag in its environment: the judge's other children (another
    worker, whatever else its host program runs) are never touched.
    """
    table = _proc_table()
    victims = _descendants(root, table) | {p for p, (_, g, _) in table.items() if g == root}
    me = os.getpid()
    if tag:
        marker = f"KERNELWRIGHT_WORKER_TAG={tag}".encode()
        for pid, (ppid, _, _) in table.items():
            if ppid == me and pid not in LIVE_WORKERS and pid != root and _has_marker(pid, marker):
                victims |= _descendants(pid, table)
    return victims


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read().split(b"\0")
    except OSError:
        return False


def is_stopped(pid: int) -> bool:
    """True when the process is stopped by a signal or a tracer (state T or t in /proc)."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in (b"T", b"t")


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of /proc/PID/stat after the command name (field 3, the state, first); [] if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return []


def where_ran(pid: int) -> str:
    """The CPU a process last ran on and that CPU's NUMA node ("cpu 5 node 0"), for traces.

    Read from /proc and /sys by the judge: a worker that ran its batch on the far socket from
    the GPU pays for every host-device round trip, a cost of the process, not of its code.
    """
    fields = _stat_fields(pid)
    if len(fields) < 37:
        return "cpu ?"
    cpu = fields[36].decode()  # field 39, "processor"
    nodes = list(Path(f"/sys/devices/system/cpu/cpu{cpu}").glob("node*"))
    return f"cpu {cpu}" + (f" {nodes[0].name.replace('node', 'node ')}" if nodes else "")


def signal_tree(root: int, sig: int, tag: str | None = None) -> None:
    """Send `sig` to every process of a worker's tree (see _tree)."""
    for pid in _tree(root, tag):
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def kill_tree(root: int, tag: str | None = None) -> None:
    """SIGKILL a worker, its process group, its descendants, and orphans it left to us."""
    victims = _tree(root, tag)
    LIVE_WORKERS.discard(root)
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        os.killpg(root, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    # Orphans of setsid'd grandchildren are re-parented to us (we are a subreaper).
    time.sleep(0.01)
    for pid in victims:
        try:
            os.waitpid(pid, os.WNOHANG)
        except (ChildProcessError, OSError):
            pass
