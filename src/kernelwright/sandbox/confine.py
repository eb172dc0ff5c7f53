"""Confinement of a candidate's worker: no network, a minimal view of the file system, no
signals or ptrace beyond its own tree.

Applied by the worker to itself at start (`apply`), before it imports torch or anything the
candidate wrote, while the process is still single-threaded and still runs only our code:

- **Network**: a user namespace and a network namespace of its own (`unshare`), which hold
  only a loopback device that is down: no route to anything, the host's loopback included.
  The channel to the judge is a pair of pipes and does not care. Where namespaces are not
  allowed, Landlock's TCP rules (ABI 4) deny every TCP bind and connect, and the report
  says UDP was left open.
- **Files** (Landlock, ABI 1+): reading and executing only the Python installation and the
  paths Python imports from, kernelwright's own source, the system's programs, libraries and
  headers (`/usr`, `/lib*`, `/bin`, `/sbin`, `/etc`, `/opt`), the CUDA toolkit, `/proc`,
  `/sys`, `/dev`; writing only the worker's scratch, its build directory and a few
  device files (`/dev/null`, `/dev/nvidia*`, ...). Nothing else under the user's home: not
  `~/.ssh`, not the store, not other candidates' builds. A pre-started worker does not know
  its build directory until the candidate arrives: it starts with the whole build cache and
  narrows to the one directory before the import (`narrow`), a second Landlock layer
  (layers only ever take rights away).
- **Unix sockets** (seccomp): Landlock does not cover connecting to a socket file, and a
  network namespace does not either, so a socket file the user can reach (an ssh-agent, the
  Docker daemon, a desktop bus) would be a way out. A seccomp filter makes `socket(AF_UNIX)`
  and `io_uring_setup` (which can create sockets too) fail, and every system call of another
  architecture's ABI (i386, x32), through which the filter could be sidestepped. It goes on
  last (`seal`), on every thread, once the CUDA driver has started and before the candidate's
  code is imported: the driver's start opens one (to look for an MPS server); nothing a
  kernel build or run needs afterwards does (glibc falls back from nscd to files).
- **Its own /proc** is writable (Landlock, with truncation): the CUDA driver names its
  threads through `/proc/self/task/TID/comm` and fails to start (error 304) otherwise.
  Other processes' files there, such as the judge's `oom_score_adj`, are not.
- **Signals and ptrace** (Landlock, ABI 6 for signals): no signal to any process outside the
  worker's own domain (the judge, the reference worker, other candidates); Landlock never
  lets a domain ptrace a process outside it.

What could not be applied is reported, never silently skipped: `Confinement` lists each
part and how it is enforced, the verdict carries it as `environment.confinement`, and
`verify --require-confinement` refuses to judge without all of it.
"""

from __future__ import annotations

import ctypes
import glob
import os
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

# Set by the judge in a candidate worker's environment: apply confinement, and the
# directories it may write (os.pathsep-separated).
ENV_CONFINE = "KERNELWRIGHT_CONFINE"
ENV_WRITABLE = "KERNELWRIGHT_WRITABLE"
ENV_READABLE = "KERNELWRIGHT_READABLE"
# Readable too until the worker loads its candidate, then never again (`narrow`): a pair's
# candidate worker builds the task's own Model there first (the timing's process control), and
# a module converted by the Python API loads its pickle, graph and source files from kernelwright's
# cache and the caller's project. Nothing of the candidate runs before that narrowing.
ENV_READABLE_UNTIL_LOAD = "KERNELWRIGHT_READABLE_UNTIL_LOAD"

NONE = "none"

_SYS_LANDLOCK_CREATE_RULESET = 444  # the same number on every architecture
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

# Landlock file-system rights, by the ABI that introduced them.
_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_ABI1 = (1 << 13) - 1  # execute .. make_sym
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
# Rights that apply to a regular file (a rule on a file may hold only these).
_FS_FILE_RIGHTS = _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE
_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000

# Readable and executable: what Python, torch, compilers and the CUDA driver read.
# Not /run: the user's runtime directory (keyrings, agents) lives there.
_SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/proc", "/sys",
                "/dev", "/run/nvidia-persistenced", "/run/nvidia-fabricmanager")
# Device files a worker writes (the rest of /dev stays read-only, /dev/shm included).
_DEVICE_WRITE = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
                 "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset")


@dataclass(frozen=True)
class Confinement:
    """How each part of a candidate worker's confinement is enforced ("none" where it is not)."""

    network: str = NONE  # "namespace" | "tcp only (landlock)" | "none"
    unix_sockets: str = NONE  # "seccomp" | "none"
    filesystem: str = NONE  # "landlock abi N" | "none"
    signals: str = NONE  # "landlock scope" | "none"
    ptrace: str = NONE  # "landlock" | "none"
    error: str = ""  # why a part is missing, when one is

    def missing(self) -> list[str]:
        """The parts not fully enforced."""
        out = [name for name in ("filesystem", "unix_sockets", "signals", "ptrace") if getattr(self, name) == NONE]
        if self.network != "namespace":
            out.append("network")
        return out

    def to_dict(self) -> dict[str, str]:
        """A plain dict for the verdict's environment."""
        return asdict(self)


def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(None, use_errno=True)
    lib.syscall.restype = ctypes.c_long
    return lib


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 where Landlock is missing or disabled)."""
    try:
        v = _libc().syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                            ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return int(v) if v > 0 else 0


def _own_network() -> str:
    """Move this (single-threaded) process into new user and network namespaces; "" or why not."""
    lib = _libc()
    uid, gid = os.getuid(), os.getgid()
    if lib.unshare(ctypes.c_int(_CLONE_NEWUSER | _CLONE_NEWNET)) != 0:
        return f"unshare: {os.strerror(ctypes.get_errno())}"
    try:
        # The same ids inside as outside: files keep their owners, and the worker gets no root.
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    except OSError as exc:
        return f"id maps: {exc}"
    _drop_all_capabilities(lib)
    return ""


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def cap_structs() -> tuple[Any, Any]:
    """A capget/capset header for this process (version 3) and an empty pair of data words."""
    return _CapHeader(0x20080522, 0), (_CapData * 2)()


def _drop_all_capabilities(lib: ctypes.CDLL) -> None:
    """A new user namespace gives its creator every capability inside it; keep none."""
    header, empty = cap_structs()
    lib.capset(ctypes.byref(header), empty)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _fs_rights(abi: int) -> int:
    rights = _FS_ABI1
    if abi >= 2:
        rights |= _FS_REFER
    if abi >= 3:
        rights |= _FS_TRUNCATE
    return rights


def _restrict(abi: int, readable: list[str], writable: list[str], devices: list[str],
              network: bool) -> str:
    """One Landlock layer on this process: "" or why it failed."""
    lib = _libc()
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, (_NET_BIND_TCP | _NET_CONNECT_TCP) if network and abi >= 4 else 0,
                        (_SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL) if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    fd = lib.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        return f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}"
    read = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    try:
        # /proc/self resolves to this process's own directory now: the CUDA driver writes files
        # there when it starts (it fails with error 304 otherwise); other processes' stay read-only.
        for paths, rights in ((readable, read), (writable, handled), (devices, read | _FS_WRITE_FILE),
                              (["/proc/self"], (read | _FS_WRITE_FILE | _FS_TRUNCATE) & handled)):
            for p in paths:
                try:
                    pfd = os.open(p, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue  # a path this machine does not have
                try:
                    allowed = rights if os.path.isdir(p) else rights & _FS_FILE_RIGHTS & handled
                    rule = _PathBeneath(allowed, pfd)
                    if lib.syscall(_SYS_LANDLOCK_ADD_RULE, ctypes.c_int(int(fd)),
                                   ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(rule),
                                   ctypes.c_uint32(0)) != 0:
                        return f"landlock_add_rule {p}: {os.strerror(ctypes.get_errno())}"
                finally:
                    os.close(pfd)
        # no_new_privs is set by limits.harden_self, which runs first.
        if lib.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(int(fd)), ctypes.c_uint32(0)) != 0:
            return f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(int(fd))
    return ""


def _devices() -> list[str]:
    """Device files a worker may open for writing: the fixed ones and every NVIDIA GPU and MIG capability."""
    return [*_DEVICE_WRITE, *sorted(glob.glob("/dev/nvidia[0-9]*")), *sorted(glob.glob("/dev/nvidia-caps/*"))]


def python_paths() -> list[str]:
    """Where this interpreter reads its code from: prefixes, the import path, kernelwright's source."""
    import kernelwright

    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(sys.executable).parent), str(Path(os.path.realpath(sys.executable)).parent.parent),
             str(Path(kernelwright.__file__).resolve().parent.parent)}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    for var in ("CUDA_HOME", "CUDA_PATH", "CONDA_PREFIX", "VIRTUAL_ENV"):
        if os.environ.get(var):
            paths.add(os.environ[var])
    paths.update(p for p in os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p)
    return sorted(paths)


# seccomp: struct seccomp_data is {int nr; u32 arch; u64 ip; u64 args[6]}.
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_AF_UNIX = 1
_ARCHES = {  # machine: (AUDIT_ARCH, socket, io_uring_setup, seccomp)
    "x86_64": (0xC000003E, 41, 425, 317),
    "aarch64": (0xC00000B7, 198, 425, 277),
}
_SECCOMP_SET_MODE_FILTER = 1
_SECCOMP_FILTER_FLAG_TSYNC = 1
_X32_BIT = 0x40000000


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def deny_unix_sockets() -> str:
    """Install the seccomp filter described above on every thread of this process; "" or why not.

    Threads started later inherit it; TSYNC puts it on the threads that already run (the
    CUDA driver's), so it can come after the driver has started.
    """
    import errno

    arch = _ARCHES.get(os.uname().machine)
    if arch is None:
        return f"seccomp: no filter for {os.uname().machine}"
    audit, nr_socket, nr_uring, nr_seccomp = arch
    ld_w_abs, jeq_k, jset_k, ret_k = 0x20, 0x15, 0x45, 0x06
    deny, eacces = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.EACCES
    prog = [
        (ld_w_abs, 0, 0, 4),  # arch
        (jeq_k, 1, 0, audit),
        (ret_k, 0, 0, deny),  # another architecture's system call
        (ld_w_abs, 0, 0, 0),  # nr
        (jset_k, 0, 1, _X32_BIT if audit == 0xC000003E else 0),
        (ret_k, 0, 0, deny),  # x32
        (jeq_k, 0, 1, nr_uring),
        (ret_k, 0, 0, deny),
        (jeq_k, 0, 3, nr_socket),
        (ld_w_abs, 0, 0, 16),  # args[0], low word (little-endian)
        (jeq_k, 0, 1, _AF_UNIX),
        (ret_k, 0, 0, eacces),
        (ret_k, 0, 0, _RET_ALLOW),
    ]
    filters = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
    fprog = _SockFprog(len(prog), filters)
    rc = _libc().syscall(nr_seccomp, ctypes.c_uint(_SECCOMP_SET_MODE_FILTER), ctypes.c_uint(_SECCOMP_FILTER_FLAG_TSYNC),
                         ctypes.byref(fprog))
    if rc < 0:
        return f"seccomp: {os.strerror(ctypes.get_errno())}"
    if rc > 0:
        return f"seccomp: thread {rc} could not take the filter"
    return ""


def _split(var: str) -> list[str]:
    return [p for p in os.environ.get(var, "").split(os.pathsep) if p]


def apply() -> Confinement:
    """Confine this worker as its environment asks (ENV_CONFINE); what was enforced.

    Must run while the process is single-threaded (a user namespace needs it, and a Landlock
    layer binds only the calling thread and the threads it starts later) and after
    `limits.harden_self` (Landlock needs no_new_privs). The Unix-socket filter comes later,
    from `seal`.
    """
    if os.environ.get(ENV_CONFINE) != "1":
        return Confinement(error="confinement was turned off")
    errors = []
    why = _own_network()
    network = "namespace" if not why else NONE
    if why:
        errors.append(f"network namespace: {why}")
    abi = landlock_abi()
    if abi < 1:
        errors.append("Landlock is not available in this kernel")
        return Confinement(network=network, error="; ".join(errors))
    readable = [*_SYSTEM_READ, *python_paths(), *_split(ENV_READABLE), *_split(ENV_READABLE_UNTIL_LOAD)]
    devices = _devices()
    why = _restrict(abi, readable, _split(ENV_WRITABLE), devices, network == NONE)
    if why:
        errors.append(why)
        return Confinement(network=network, error="; ".join(errors))
    if network == NONE and abi >= 4:
        network = "tcp only (landlock)"
    if abi < 6:
        errors.append(f"Landlock ABI {abi} cannot scope signals (needs 6)")
    return Confinement(network=network, filesystem=f"landlock abi {abi}",
                       signals="landlock scope" if abi >= 6 else NONE, ptrace="landlock",
                       error="; ".join(errors))


def seal(current: Confinement) -> Confinement:
    """Add the Unix-socket filter; `current` with `unix_sockets` filled in.

    Called once the CUDA driver has started and before the candidate's code is imported:
    the driver's start (cuInit) opens a Unix socket to look for an MPS server and fails
    with "OS call failed" (error 304) when `socket(AF_UNIX)` is refused, so the filter
    cannot come first. Nothing but our code has run by then.
    """
    if os.environ.get(ENV_CONFINE) != "1" or current.unix_sockets != NONE:
        return current
    why = deny_unix_sockets()
    if why:
        return replace(current, error="; ".join(e for e in (current.error, why) if e))
    return replace(current, unix_sockets="seccomp")


def narrow(current: Confinement, writable: list[str] | None = None) -> str:
    """A further layer: writes (and reads beyond the system's) only to `writable` (default: the
    directories the worker started with, ENV_WRITABLE), and none of ENV_READABLE_UNTIL_LOAD;
    "" or why not.

    Before a candidate's code runs: a pre-started worker then also knows its build directory.
    """
    if writable is None:
        writable = _split(ENV_WRITABLE)
    if current.filesystem == NONE:
        return ""
    abi = landlock_abi()
    readable = [*_SYSTEM_READ, *python_paths(), *_split(ENV_READABLE)]
    devices = _devices()
    return _restrict(abi, readable, writable, devices, current.network == "tcp only (landlock)")
