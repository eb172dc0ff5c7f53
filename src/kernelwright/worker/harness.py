"""The measuring machinery inside a worker, shared by the reference and candidate roles.

It captures the objects it relies on (clocks, synchronize, flags) before any
untrusted code is imported, so a candidate that patches `time.perf_counter` or
`torch.cuda.synchronize` changes the module attribute, not what the harness
calls, and the integrity check sees the swap. None of this makes the candidate's
process trustworthy: its reported times are only cross-checked against the
judge's own clock, and its outputs only against references it never sees.
"""

from __future__ import annotations

import builtins
import ctypes
import os
import statistics
import sys
import time
from typing import Any, Callable, Iterator

import torch
from torch.utils import _pytree as pytree

from kernelwright import constants as C
from kernelwright.worker import dispatch_guard
from kernelwright.worker.hold import DeviceHold
from kernelwright.worker.inputs import fingerprint as _fingerprint

_perf = time.perf_counter
_sleep = time.sleep
_median = statistics.median  # taken before candidate code exists, like _sleep
_type = builtins.type

# Dotted names whose objects must be the same after import and after the runs.
_GUARDED = (
    "time.perf_counter", "time.perf_counter_ns", "time.monotonic", "time.time", "time.sleep",
    "torch.cuda.synchronize", "torch.cuda.Event.record", "torch.cuda.Event.elapsed_time",
    "torch.cuda.Event.synchronize", "torch.cuda.current_stream", "torch.cuda.Stream.synchronize",
    "torch.cuda.CUDAGraph.replay",
    "torch.allclose", "torch.isclose", "torch.equal", "torch.testing.assert_close",
    "torch.Tensor.__torch_function__", "torch.Tensor.cpu", "torch.Tensor.clone",
    "torch.Tensor.to", "torch.Tensor.copy_", "torch.Tensor.numpy", "torch.Tensor.contiguous",
    "torch.Tensor.view", "torch.Tensor.detach", "torch.nn.Module.__call__",
    "torch.nn.Module._call_impl", "torch.nn.Module.load_state_dict",
    "torch.set_num_threads", "torch.get_num_threads", "torch.frombuffer",
    "torch.Tensor.__setitem__", "torch.Tensor.__getitem__", "torch.randint", "torch.unique",
    "torch.Generator", "torch.Tensor.index_put_",
    "builtins.type", "builtins.isinstance", "os.write", "os.read", "os._exit",
    "json.dumps", "hmac.new", "hmac.compare_digest",
    "kernelwright.sandbox.codec.encode", "kernelwright.sandbox.channel.Channel.send",
    "kernelwright.sandbox.channel.Channel.recv",
)


def _resolve(dotted: str) -> Any:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        modname = ".".join(parts[:i])
        try:
            obj: Any = __import__(modname, fromlist=["_"])
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        # Bound classmethods are new objects on every access; their function is not.
        return getattr(obj, "__func__", obj)
    raise LookupError(dotted)


def global_flags() -> dict[str, Any]:
    """Global settings that change numerics or speed; must not move during a judgement."""
    flags: dict[str, Any] = {
        "num_threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "default_dtype": str(torch.get_default_dtype()),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "grad_enabled": torch.is_grad_enabled(),
        "cudnn.enabled": torch.backends.cudnn.enabled,
        "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn.benchmark": torch.backends.cudnn.benchmark,
        "cudnn.deterministic": torch.backends.cudnn.deterministic,
        "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cuda.matmul.allow_fp16_reduced": torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction,
        "cuda.matmul.allow_bf16_reduced": torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction,
    }
    if torch.cuda.is_initialized():
        flags["cuda.persisting_l2_limit"] = _persisting_l2_limit()
    return flags


_CUDART: Any = None


def _persisting_l2_limit() -> int | None:
    """cudaLimitPersistingL2CacheSize of this process's CUDA runtime (exploit class 16)."""
    global _CUDART

    if _CUDART is None:
        try:
            with open("/proc/self/maps") as f:
                path = next(line.split()[-1] for line in f if "libcudart" in line)
            _CUDART = ctypes.CDLL(path)
        except (OSError, StopIteration):
            _CUDART = False
    if not _CUDART:
        return None
    value = ctypes.c_size_t(0)
    if _CUDART.cudaDeviceGetLimit(ctypes.byref(value), ctypes.c_int(0x06)) != 0:
        return None
    return int(value.value)


_LIBC: Any = None
# Resident bytes outside malloc's blocks in use just after the last trim (see release_free_memory).
_OUTSIDE_AFTER_TRIM: int | None = None


def release_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's malloc_trim) once they are many.

    The workers keep large blocks on the heap (MALLOC_MMAP_THRESHOLD_, so that timed calls do
    not map and fault their outputs afresh each time), and glibc keeps the pages of freed
    blocks resident. A worker staging the large input sets of a big task, copying and freeing
    them, would otherwise grow by a set's worth per set and pass its memory limit. Called
    between requests, never inside a timed call.

    Freed pages stay resident until they reach RELEASE_FREE_MIN_BYTES: each trim makes the next
    request fault in again every page it allocates, which in the example's main job on the
    2-core machine was 17-21 thousand page faults a timed-output check, 1.5 million in all, in
    the reference worker. How much is freed but resident is the growth, since the last trim, of
    the resident bytes that malloc does not count as in use (glibc's own count of free bytes
    includes the blocks a trim already gave back). Without glibc 2.33's mallinfo2, every call trims.
    """
    global _LIBC, _OUTSIDE_AFTER_TRIM
    if _LIBC is None:
        try:
            _LIBC = ctypes.CDLL(None)
            _LIBC.malloc_trim.argtypes = [ctypes.c_size_t]
            if hasattr(_LIBC, "mallinfo2"):
                _LIBC.mallinfo2.restype = _MallInfo2
        except (OSError, AttributeError):
            _LIBC = False
    if not _LIBC:
        return
    outside = _resident_outside_malloc()
    if outside is not None and _OUTSIDE_AFTER_TRIM is not None \
            and outside - _OUTSIDE_AFTER_TRIM < C.RELEASE_FREE_MIN_BYTES:
        return
    _LIBC.malloc_trim(0)
    _OUTSIDE_AFTER_TRIM = _resident_outside_malloc()


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def _resident_outside_malloc() -> int | None:
    """This process's resident bytes less what malloc has handed out and not freed (heap blocks in
    use and mapped blocks), or None without glibc 2.33+ or /proc."""
    fn = getattr(_LIBC, "mallinfo2", None) if _LIBC else None
    if fn is None:
        return None
    info = fn()
    try:
        with open("/proc/self/statm", "rb") as f:
            resident = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None
    return resident - int(info.uordblks) - int(info.hblkhd)


def pin_flags(threads: int | None) -> None:
    """Set the same numerics and thread count in every worker, before any untrusted code."""
    if threads:
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.benchmark = False


# kernelwright's own code inside the worker: every function and method in these
# modules must still be the same object, with the same code, after the runs.
_GUARDED_MODULES = (
    "kernelwright.worker.harness", "kernelwright.worker.common", "kernelwright.worker.hold",
    "kernelwright.worker.candidate", "kernelwright.worker.inputs",
    "kernelwright.worker.dispatch_guard",
    "kernelwright.sandbox.codec", "kernelwright.sandbox.channel",
)


def _module_callables(modname: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    module = sys.modules.get(modname)
    if module is None:
        return found
    for name, obj in list(vars(module).items()):
        if callable(obj) and not name.startswith("__"):
            found[f"{modname}.{name}"] = obj
            if isinstance(obj, type) and obj.__module__ == modname:
                for attr, value in list(vars(obj).items()):
                    if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                        found[f"{modname}.{name}.{attr}"] = value
    return found


class Integrity:
    """A snapshot of guarded objects and flags, compared later by identity, code and value.

    Also of the dispatcher: the kernels registered for the aten operators the harness calls,
    the mode stacks and the dispatch keys forced on or off (`dispatch_guard`), since a hook
    there runs candidate code inside the harness's own copies and comparisons.
    """

    def __init__(self) -> None:
        self._hooks = dispatch_guard.baseline()
        self._objects: dict[str, Any] = {}
        for name in _GUARDED:
            try:
                self._objects[name] = _resolve(name)
            except (LookupError, AttributeError):
                continue
        self._own: dict[str, Any] = {}
        for modname in _GUARDED_MODULES:
            self._own.update(_module_callables(modname))
        self._codes = {k: getattr(v, "__code__", None) for k, v in self._own.items()}
        self._instances: list[tuple[Any, dict[str, Any]]] = []
        self._flags = global_flags()

    def watch(self, obj: Any, frozen: bool = False) -> None:
        """Also check that this judge object gains no instance attributes that shadow its methods,
        and keeps the callables it holds (the harness's launch hold, its synchronize); with
        `frozen`, keeps every attribute it holds (the launch hold's length and graph)."""
        self._instances.append((obj, {k: v for k, v in vars(obj).items() if frozen or callable(v)}))

    def violations(self) -> list[str]:
        """What changed since the snapshot: swapped functions, rewritten code, moved flags."""
        found = []
        for name, obj in self._objects.items():
            try:
                now = _resolve(name)
            except (LookupError, AttributeError):
                found.append(f"{name} was removed")
                continue
            if now is not obj:
                found.append(f"{name} was replaced")
        current: dict[str, Any] = {}
        for modname in _GUARDED_MODULES:
            current.update(_module_callables(modname))
        for name, obj in self._own.items():
            if current.get(name) is not obj:
                found.append(f"judge function {name} was replaced")
            elif getattr(obj, "__code__", None) is not self._codes[name]:
                found.append(f"judge function {name} was rewritten")
        for obj, held in self._instances:
            now = vars(obj)
            for attr, value in now.items():
                if callable(value) and hasattr(type(obj), attr):
                    found.append(f"judge method {type(obj).__name__}.{attr} was shadowed")
            for attr, value in held.items():
                if attr not in now or now[attr] is not value:
                    found.append(f"judge attribute {type(obj).__name__}.{attr} was replaced")
        now_flags = global_flags()
        for key, value in self._flags.items():
            if now_flags.get(key) != value:
                found.append(f"global setting {key} changed from {value!r} to {now_flags.get(key)!r}")
        found.extend(dispatch_guard.hook_changes(self._hooks))
        found.extend(dispatch_guard.tripped())
        return found


def is_plain_tensor_tree(out: Any) -> bool:
    """True when every leaf is exactly torch.Tensor (no subclass, no lazy wrapper)."""
    if _type(out) is torch.Tensor:
        return True
    if _type(out) in (tuple, list):
        return all(is_plain_tensor_tree(o) for o in out)
    return False


def type_names(out: Any) -> Any:
    """Qualified type names of an output tree, for messages."""
    if _type(out) in (tuple, list):
        return [type_names(o) for o in out]
    t = _type(out)
    return f"{t.__module__}.{t.__qualname__}"


def unchanged(now: Any, before: Any) -> bool:
    """True when two input trees hold the same bits (tensors compared where they live).

    Bitwise, not by value: NaN equals itself and -0.0 differs from 0.0, so any write
    that changes memory counts. On the device, so a correctness call pays no copy to the host.
    """
    a, b = _leaves(now), _leaves(before)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor) or repr(x) != repr(y):
                return False
            continue
        if x.dtype != y.dtype or x.shape != y.shape:
            return False
        if not torch.equal(_bits(x), _bits(y)):
            return False
    return True


_INT_OF_SIZE = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().contiguous()
    if t.dtype == torch.bool or t.numel() == 0:
        return t
    if t.is_complex():
        t = torch.view_as_real(t)
    return t.view(_INT_OF_SIZE[t.element_size()])


def _leaves(tree: Any) -> list[Any]:
    if isinstance(tree, (tuple, list)):
        return [x for t in tree for x in _leaves(t)]
    return [tree]


def tensor_leaves(tree: Any) -> list[torch.Tensor]:
    """The tensors of a tree of tuples and lists, in order."""
    return [t for t in _leaves(tree) if isinstance(t, torch.Tensor)]


def to_device(tree: Any, device: str) -> Any:
    """Move every tensor of a tree to `device`."""
    if isinstance(tree, torch.Tensor):
        return tree.to(device)
    if isinstance(tree, tuple):
        return tuple(to_device(t, device) for t in tree)
    if isinstance(tree, list):
        return [to_device(t, device) for t in tree]
    return tree


def _aligned_or_cloned(tree: Any) -> Any:
    """A fresh input tensor kept where a clone would place it no better, else a clone."""
    if isinstance(tree, torch.Tensor):
        if tree.is_contiguous() and tree.data_ptr() % 64 == 0 and tree._base is None:
            return tree
        return clone_tree(tree)
    if isinstance(tree, (list, tuple)):
        return type(tree)(_aligned_or_cloned(t) for t in tree)
    return tree


def clone_tree(tree: Any) -> Any:
    """Deep-copy the tensors of a tree, by a copy that no candidate hook can enter unreported.

    This is how outputs are snapshotted; a hook inside the copy could compute an output that
    the timed call never did (`dispatch_guard` says which hooks are shut out, which reported).
    The check comes after the copy: checking first would take tens of microseconds between
    the return and the snapshot, time in which work a call left running could finish unseen.
    """
    copy = _clone_leaves(tree)
    dispatch_guard.check_copy_path()
    return copy


def _signature(tree: Any) -> Any:
    """What a copy of a tree must match to be written into another copy's buffers."""
    if isinstance(tree, (tuple, list)):
        return type(tree).__name__, tuple(_signature(t) for t in tree)
    if isinstance(tree, torch.Tensor):
        return tuple(tree.shape), tree.stride(), tree.dtype, tree.device
    return type(tree)


def copy_into_tree(buffers: Any, tree: Any) -> Any | None:
    """`tree`'s values written into `buffers` (a copy of a tree of its signature), or None.

    None when a buffer no longer has its leaf's shape and dtype (a call resized it in place):
    the caller then makes a fresh copy.
    """
    bufs, leaves = _leaves(buffers), _leaves(tree)
    for b, t in zip(bufs, leaves):
        if isinstance(t, torch.Tensor) and not (isinstance(b, torch.Tensor) and b.shape == t.shape
                                                and b.dtype == t.dtype and b.device == t.device):
            return None
    for b, t in zip(bufs, leaves):
        if isinstance(t, torch.Tensor):
            dispatch_guard.copy_into(b, t)
    return _rebuild(tree, iter(bufs))


def _rebuild(tree: Any, bufs: Iterator[Any]) -> Any:
    if isinstance(tree, (tuple, list)):
        return type(tree)(_rebuild(t, bufs) for t in tree)
    b = next(bufs)
    return b if isinstance(tree, torch.Tensor) else tree


def _alloc_like(tree: Any) -> Any:
    """Uninitialised tensors shaped as `clone_tree`'s copy of `tree` would be."""
    if isinstance(tree, torch.Tensor):
        return dispatch_guard.empty_like(tree)
    if isinstance(tree, (tuple, list)):
        return type(tree)(_alloc_like(t) for t in tree)
    return tree


def _copy_tree(dst: Any, src: Any) -> None:
    """Write `src`'s tensors into `dst` (from `_alloc_like(src)`), past the dispatch guard."""
    for d, s in zip(_leaves(dst), _leaves(src)):
        if isinstance(s, torch.Tensor):
            dispatch_guard.copy_into(d, s)


def _clone_leaves(tree: Any) -> Any:
    if isinstance(tree, torch.Tensor):
        return dispatch_guard.clone(tree)
    if isinstance(tree, tuple):
        return tuple(_clone_leaves(t) for t in tree)
    if isinstance(tree, list):
        return [_clone_leaves(t) for t in tree]
    return tree


class Harness:
    """Staged inputs, the timing loop, memory poisoning and profiling for one worker."""

    def __init__(self, device: str, threads: int | None) -> None:
        self.device = device
        self.cuda = device.startswith("cuda")
        pin_flags(threads)
        self.forget_verdict()
        self.setup_s: dict[str, float] = {}  # seconds by step (the worker's setup reply carries them)
        if self.cuda:
            t0 = time.perf_counter()
            torch.cuda.init()
            torch.zeros(1, device=device)  # the context is made on first use, not by init()
            self.setup_s["cuda_context"] = time.perf_counter() - t0
            self._sync: Callable[[], None] = torch._C._cuda_synchronize
            # Twice the L2: enough to evict it, small enough that the flush adds
            # little to each call's protocol overhead. The flush reads it (`_flush_l2`).
            l2 = getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 0) or C.L2_FLUSH_BYTES // 2
            self._flush = torch.zeros(max(2 * l2, 8 << 20) // 4, dtype=torch.float32, device=device)
            self._flush_sink = torch.zeros((), dtype=torch.float32, device=device)
            self._Event = torch.cuda.Event
            t0 = time.perf_counter()
            self.hold = DeviceHold(device, self._Event, self._sync)
            self.setup_s["launch_hold"] = time.perf_counter() - t0
            # Where checked outputs are copied (`_consume`): high priority, so the copy's blocks
            # go ahead of anything another stream still has queued.
            self._consumer = torch.cuda.Stream(priority=-1)
        else:
            self._sync = lambda: None
        self.integrity = Integrity()
        self.integrity.watch(self)
        if self.cuda:
            self.integrity.watch(self.hold, frozen=True)

    def forget_verdict(self) -> None:
        """Drop everything one verdict left here (its sets, outputs, buffers); the device set-up stays.

        Every per-verdict field is made here and only here, so a reference worker kept for the
        next verdict of the same task (judge.pairs) starts that verdict as a fresh one would.
        """
        # Negative ids are the worker's own (op_setup stages set -1 before any task code): kept.
        self.sets: dict[int, tuple[Any, ...]] = {k: v for k, v in getattr(self, "sets", {}).items() if k < 0}
        self.last_outputs: list[Any] = []
        # What the calibration no-op returns: an output of the task's size once the reference
        # made one, so that the snapshot every timed batch takes is part of the overhead. Kept
        # as its shapes (meta tensors) and made on the first no-op call: holding the task's own
        # output until the timing would keep a set's worth of GPU memory (8 GiB on KernelBench's
        # level1/38) through the making of every deferred set.
        self.noop_like: Any = None
        self.noop_out: Any = None
        self._recent_out_bytes: list[int] = []
        self._last_out_bytes: list[int] = []  # the sizes of the last call's outputs
        # The copies checked calls run on, by signature: each later copy of a set of the same
        # shapes is written into the same buffers, so a cache keyed by input address answers
        # it with a stale output (and fails the check) rather than by the allocator's chance.
        self._checked_bufs: dict[Any, Any] = {}

    def stage(self, set_id: int, inputs: tuple[Any, ...], fresh: bool = False) -> None:
        """Keep an input set on the device under `set_id`.

        Always in torch allocations: tensors decoded from the channel live in Python byte
        buffers whose alignment would slow vectorized CPU kernels, and both sides must run
        on equally placed data. `fresh`: the inputs were just made by the task (the
        reference worker's get_inputs), so a contiguous tensor at an aligned address is
        kept as it is instead of copied, one copy fewer of a large task's inputs.
        """
        moved = to_device(list(inputs), self.device)
        if self.cuda:
            self.sets[set_id] = tuple(moved)
        elif fresh:
            self.sets[set_id] = tuple(_aligned_or_cloned(t) for t in moved)
        else:
            self.sets[set_id] = tuple(clone_tree(moved))

    def noop(self, *args: Any) -> Any:
        """The calibration target: no work, returns a kept output of the task's size (or its input).

        The output is made on the first call (the judge's calibration discards its first batch).
        """
        if self.noop_out is None and self.noop_like is not None:
            self.noop_out = pytree.tree_map(
                lambda t: torch.zeros(t.shape, dtype=t.dtype, device=self.device)
                if isinstance(t, torch.Tensor) else t, self.noop_like)
        return self.noop_out if self.noop_out is not None else args[0]

    def poison(self) -> None:
        """Fill memory the allocator could hand the next call with NaN (exploit class 1)."""
        hold = []
        if self.cuda:
            for seg in torch.cuda.memory_snapshot():
                for blk in seg.get("blocks", []):
                    if blk.get("state") == "inactive" and blk.get("size", 0) >= 4:
                        t = torch.empty(blk["size"] // 4, dtype=torch.float32, device=self.device)
                        t.fill_(float("nan"))
                        hold.append(t)
            self._sync()
        else:
            for nbytes in self._poison_sizes():
                t = torch.empty(max(1, nbytes // 4), dtype=torch.float32)
                t.fill_(float("nan"))
                hold.append(t)
        del hold

    def run_checked(self, fn: Callable[..., Any], set_id: int, race_bar_ms: float = C.RACE_PENDING_MS,
                    in_place: bool = False, probe_bar_ms: float | None = None) -> dict[str, Any]:
        """One correctness call on a copy of a staged set: output, type, mutation and race facts.

        `in_place`: on the staged set itself, which the judge drops after this call. For sets so
        large that a copy would not fit beside the sets the worker keeps (a 16 GiB set on
        KernelBench's level1/45); a change to the inputs is then seen by their fingerprint
        (shapes, sums and 64 elements each) rather than bit for bit.

        The output is copied the moment the call returns, as a consumer on the caller's
        stream would read it: on CUDA after that stream alone has finished (the copy is
        ordered on it), before any device-wide sync. Work a side stream or a thread
        finishes later is therefore not in what gets checked, and `race` says what was
        still running: GPU work the device still had queued after the caller's stream was
        done (more than `race_bar_ms`, which the judge sets, on the host's clock; or a device
        probe delayed more than `probe_bar_ms`, see `_consume`), or an output that changed
        while the worker waited RACE_SETTLE_S.
        """
        staged = self.sets[set_id]
        # The last checked output was compared before this call was asked for: a large task's
        # worker must not hold two outputs and their snapshots at once.
        self.last_outputs = []
        before = _fingerprint(staged) if in_place else None
        inputs = staged if in_place else self._checked_copy(staged)
        self.poison()
        self._sync()
        threads_before = _thread_count()
        if self.cuda:
            # Behind the hold, every kernel of the call, on any stream, starts together once the
            # hold ends: work on a stream that is never joined is then still running when the
            # caller's stream finishes, however the host side was timed.
            self.hold(long=True)
        out = fn(*inputs)
        race = None
        threads_at_return = _thread_count()
        plain = is_plain_tensor_tree(out)
        copy, pending_ms, probe_ms = self._consume(out, plain)
        snap = copy if plain else out
        if plain:
            _sleep(C.RACE_SETTLE_S)
            self._sync()
            if not unchanged(out, snap):
                extra = threads_at_return - threads_before
                race = ("the output changed after forward returned"
                        + (f" ({extra} thread(s) more were running at return than before the call)"
                           if extra > 0 else "")
                        + ": work on another thread or stream was still writing it")
        mutated = _fingerprint(inputs) != before if in_place else not unchanged(inputs, staged)
        if race is None and _over(pending_ms, probe_ms, race_bar_ms, probe_bar_ms):
            # One host-timed sync is not proof: honest convolutions on the H200 read 0.04-0.06 ms
            # now and then. Behind the hold, work on an unjoined stream is pending on every call,
            # so the call is repeated and the median decides (as the timed batches' median does).
            seen = [(pending_ms, probe_ms)] + [self._pending_again(fn, staged, in_place)
                                                for _ in range(C.RACE_CONFIRM_CALLS)]
            pending_ms = _median([p for p, _ in seen])
            probes = [q for _, q in seen if q is not None]
            probe_ms = _median(probes) if probes else None
            if pending_ms is not None and pending_ms > race_bar_ms:
                race = _pending_race(pending_ms) + f" (median of {len(seen)} calls: " \
                    + ", ".join(f"{p:.3f}" for p, _ in seen) + " ms)"
            elif probe_ms is not None and probe_bar_ms is not None and probe_ms > probe_bar_ms:
                race = _probe_race(probe_ms) + f" (median of {len(seen)} calls: " \
                    + ", ".join(f"{q:.3f}" for q in probes) + " ms)"
        self._remember_sizes(out)
        return {"out": snap, "plain": plain, "types": type_names(out), "mutated": mutated, "race": race,
                "pending_ms": pending_ms, "probe_ms": probe_ms}

    def _checked_copy(self, staged: tuple[Any, ...]) -> tuple[Any, ...]:
        """A copy of a staged set for a checked call, in the buffers of the last set of its shapes."""
        key = _signature(staged)
        kept = self._checked_bufs.pop(key, None)
        inputs = copy_into_tree(kept, staged) if kept is not None else None
        if inputs is None:
            inputs = clone_tree(staged)
        # Two signatures at most (a task's default and one other shape variant), so a large
        # task's worker keeps at most two extra input sets between its checked calls.
        while len(self._checked_bufs) >= C.CHECKED_BUFFER_SETS:
            self._checked_bufs.pop(next(iter(self._checked_bufs)))
        self._checked_bufs[key] = inputs
        return inputs

    def end_checked_calls(self) -> None:
        """Free the checked calls' buffers: the correctness trials are over."""
        self._checked_bufs.clear()

    def _pending_again(self, fn: Callable[..., Any], staged: tuple[Any, ...],
                       in_place: bool = False) -> tuple[float, float | None]:
        """The race readings of one more call on a fresh copy of the same inputs, a few elements
        moved under a seed from the OS (no content tells the candidate it is a repeat), output dropped.
        `in_place`: on the staged set itself (its last use; it is dropped after)."""
        args = staged if in_place else clone_tree(staged)
        perturb(args, _urandom_below(1 << 62), 0)
        self._sync()
        self.hold(long=True)
        out = fn(*args)
        _, pending, probe = self._consume(out, False)
        del out, args
        return pending or 0.0, probe

    def race_readings(self) -> tuple[float, float | None]:
        """The race readings of a call that has returned, its output not copied (`_consume`)."""
        _, pending, probe = self._consume(None, False)
        return pending or 0.0, probe

    def _consume(self, out: Any, copy: bool) -> tuple[Any, float | None, float | None]:
        """Once a call has returned: a copy of its output as a consumer reads it (with `copy`),
        and the race readings (GPU work the host saw still queued past the caller's stream, ms;
        how late the device probe ran, ms; both None on the CPU, the probe None without one).

        On CUDA the copy runs on a high-priority stream of the harness's own that waits for the
        caller's stream alone: its blocks go ahead of whatever another stream still has queued,
        so it reads the output as it is when the caller's stream is done. (On the caller's
        stream it would queue behind an unjoined stream's blocks and read the finished output:
        on the H200 a candidate that wrote its output on such a stream was accepted.) Then the
        probe on the caller's stream (`DeviceHold.probe_ms`, device time, for work that ends
        within the hold's length), then the host-timed sync (`pending_ms`) for work that
        outlives it. The device is idle when this returns.
        """
        if not self.cuda:
            return (clone_tree(out) if copy else None), None, None
        snap = self._copy_out(out) if copy else None
        probe = self.hold.probe_ms()
        if copy:
            # After the probe is queued: the check takes tens of microseconds a call.
            dispatch_guard.check_copy_path()
        return snap, self.pending_ms(), probe

    def _copy_out(self, out: Any) -> Any:
        """Enqueue a copy of `out` as it is once the caller's stream is done (CUDA; see `_consume`).

        Allocated on the caller's stream, so the copy's memory returns to the pool the call's own
        outputs come from: a block cached for the consumer's stream alone would hold an output's
        size the next call cannot use (a large task's plan has no room).
        """
        snap = _alloc_like(out)
        done = self._Event()
        done.record()
        self._consumer.wait_event(done)
        with torch.cuda.stream(self._consumer):
            _copy_tree(snap, out)
            copied = self._Event()
            copied.record()
        torch.cuda.current_stream().wait_event(copied)
        return snap

    def pending_ms(self) -> float:
        """GPU work still queued on other streams once the caller's stream is done (ms).

        The caller's stream is waited for first (the output copy may be on it), then the
        whole device: the second wait is the time other streams still needed.
        """
        done = self._Event()
        done.record()
        done.synchronize()
        t0 = _perf()
        self._sync()
        return (_perf() - t0) * 1e3

    def call_once(self, fn: Callable[..., Any], set_id: int) -> None:
        """One call on a copy of a staged set, synchronized, its output dropped (a warm-up)."""
        out = fn(*clone_tree(self.sets[set_id]))
        self._sync()
        del out

    def _remember_sizes(self, out: Any) -> None:
        self._last_out_bytes = [t.numel() * t.element_size() for t in _leaves(out) if isinstance(t, torch.Tensor)]
        self._recent_out_bytes = (self._recent_out_bytes + self._last_out_bytes)[-16:]

    def _poison_sizes(self) -> list[int]:
        """The blocks `poison` fills on the CPU: the last eight outputs' sizes while they are
        small; for large outputs the last call's (its outputs and their snapshots, all freed),
        never eight outputs' worth held at once (12 GiB for a 1.5 GiB output)."""
        recent = self._recent_out_bytes[-8:]
        if sum(recent) <= C.POISON_ALL_RECENT_BYTES:
            return recent
        return [n for n in self._last_out_bytes for _ in range(2)]

    def _flush_l2(self) -> None:
        """Evict the L2 before a timed call by reading twice its size (CUDA).

        A read, not a write: zeroing the buffer left the L2 full of dirty lines that the timed
        call then wrote back to memory as its own traffic evicted them. On the H100 a memory-bound
        call was charged 7-14 us more than Nsight Compute's duration (which starts from a clean
        L2), growing with its size up to the L2's (section 31). Clean lines are dropped for free.
        """
        torch.sum(self._flush, dim=0, out=self._flush_sink)

    def time_batch(self, fn: Callable[..., Any], set_ids: list[int], snap: bool,
                   seed: int | None = None) -> dict[str, Any]:
        """Time one call per entry of `set_ids`, each fenced by a full device sync.

        With `seed`, call i runs on its set perturbed by `perturb(seed, i)` and
        restored afterwards: no two timed calls see the same inputs, so results
        cannot be cached or precomputed from the staged sets. With `snap`,
        exactly one call's output is copied right after its clock stops; which
        one is drawn from the OS only after each call has returned, so no call
        can know in advance whether it will be checked.
        """
        self.end_checked_calls()
        host_ms: list[float] = []
        event_ms: list[float] = []
        self.last_outputs = []
        snapped = -1
        not_plain = 0
        pending: list[float] = []  # per call: GPU work still queued once its stream was done (ms)
        probes: list[float] = []  # per call: how late the device probe behind it ran (ms)
        n = len(set_ids)
        # Every call's plan before the first call: made between calls, right after a call had
        # filled the caches with its own data, a plan took twice its time (on the 2-core machine
        # 0.066 ms against the no-op's 0.030 after a 1 ms layer norm), a cost the calibration
        # does not see and which differed between processes.
        plans = perturb_plans([(self.sets[sid], i) for i, sid in enumerate(set_ids)], seed) \
            if seed is not None else None
        # Host time by step, summed over the batch: where a process's per-call protocol cost goes
        # (the judge traces it; on the H100 the same Model's batches took 1.5 ms a call in the
        # candidate's process against 1.0 in the reference's, section 31). Never used in a verdict.
        steps = dict.fromkeys(("prepare", "hold", "call", "consume", "sync"), 0.0)
        for i, sid in enumerate(set_ids):
            args = self.sets[sid]
            ts = _perf()
            undo = apply_perturbation(plans[i]) if plans is not None else None
            if self.cuda:
                self._flush_l2()
                self._sync()
                th = _perf()
                steps["prepare"] += th - ts
                # The whole device is held for LAUNCH_HOLD_MS while the host launches the call, so
                # the events time the GPU's work and not the host's launch latency, and no
                # stream's work can start before the start event (worker/hold.py).
                self.hold()
                start, end = self._Event(enable_timing=True), self._Event(enable_timing=True)
                start.record()
                steps["hold"] += _perf() - th
            else:
                steps["prepare"] += _perf() - ts
            t0 = _perf()
            try:
                out = fn(*args)
            except BaseException:
                # The set is staged for later batches: a call that raised (the process control's,
                # which the verdict survives) must not leave it perturbed.
                if undo is not None:
                    undo()
                raise
            if self.cuda:
                end.record()
            tc = _perf()
            steps["call"] += tc - t0
            # The snapshot is taken as a consumer reads the output at return (`_consume`), before
            # any device-wide sync: that is what gets checked.
            take = False
            if not is_plain_tensor_tree(out):
                not_plain += 1
            elif snap and snapped < 0 and _urandom_below(n - i) == 0:
                take, snapped = True, i
            copy, host, probe = self._consume(out, take)
            if take:
                self.last_outputs = [copy]
            if host is not None:
                pending.append(host)
            if probe is not None:
                probes.append(probe)
            tq = _perf()
            steps["consume"] += tq - tc
            self._sync()
            t1 = _perf()
            steps["sync"] += t1 - tq
            host_ms.append((t1 - t0) * 1e3)
            if self.cuda:
                event_ms.append(start.elapsed_time(end))
            del out
            if undo is not None:
                undo()
        return {"host_ms": host_ms, "event_ms": event_ms, "not_plain": not_plain, "snapped": snapped,
                "pending_ms": pending, "probe_ms": probes,
                "steps_ms": {k: round(v * 1e3 / max(n, 1), 4) for k, v in steps.items()}}

    def time_queued(self, fn: Callable[..., Any], set_ids: list[int], snap: bool,
                    seed: int | None = None) -> dict[str, Any]:
        """Launch one call per entry of `set_ids` back to back behind one QUEUED_HOLD_MS hold (CUDA).

        The judge's clock bound for short calls (judge/timing.py): while the hold spins, the host
        enqueues every call, each after its perturbation, with no sync between them, so the
        device then runs them without waiting for the host and the request's wall time less the
        calibrated overhead is their device time. No L2 flush between them, unlike `time_batch`:
        the flush's own device time (about 0.1 ms a call on the H100, 20 ms a batch of 192) varied
        from batch to batch by more than a short call's whole share, and burying the calls' time in
        it left the bound 0.0 (section 30). A call's time with warm caches is no more than with cold
        ones, so the bound stays a lower bound. The
        perturbations' indices are made before the hold: their host-to-device copies would wait
        for it. With `snap`, one call's output, drawn after it returned, is copied as `_consume`
        copies it (once the caller's stream is done): work left running on another stream makes
        that copy wrong. `enqueue_ms`: the host's time to enqueue them all (the judge sizes the
        next batch from it).
        """
        if not self.cuda:
            raise RuntimeError("queued batches are for CUDA calls")
        self.end_checked_calls()
        self.last_outputs = []
        n = len(set_ids)
        plans = perturb_plans([(self.sets[sid], i) for i, sid in enumerate(set_ids)], seed) \
            if seed is not None else None
        snapped, not_plain = -1, 0
        host_ms: list[float] = []
        self._sync()
        self.hold(queued=True)
        start, end = self._Event(enable_timing=True), self._Event(enable_timing=True)
        start.record()
        t_enqueue = _perf()
        for i, sid in enumerate(set_ids):
            t0 = _perf()
            undo = apply_perturbation(plans[i]) if plans is not None else None
            try:
                out = fn(*self.sets[sid])
            except BaseException:
                if undo is not None:
                    undo()
                raise
            if not is_plain_tensor_tree(out):
                not_plain += 1
            elif snap and snapped < 0 and _urandom_below(n - i) == 0:
                snapped = i
                self.last_outputs = [self._copy_out(out)]
                dispatch_guard.check_copy_path()
            del out
            if undo is not None:
                undo()
            host_ms.append((_perf() - t0) * 1e3)
        enqueue_ms = (_perf() - t_enqueue) * 1e3
        end.record()
        self._sync()
        per_call = float(start.elapsed_time(end)) / n
        return {"host_ms": host_ms, "event_ms": [per_call] * n, "not_plain": not_plain, "snapped": snapped,
                "pending_ms": [], "probe_ms": [], "enqueue_ms": enqueue_ms}

    def profile(self, fn: Callable[..., Any], set_id: int) -> list[dict[str, Any]]:
        """Which kernels (CUDA) or operators (CPU) one call ran, with their self time.

        The autograd profiler rather than torch.profiler.profile: the latter
        imports torch._dynamo, which costs seconds per verdict.
        """
        from torch.autograd import profiler

        self.end_checked_calls()
        inputs = clone_tree(self.sets[set_id])
        # Kineto is what records device-side kernel events; without it the legacy
        # profiler reports CPU operators only.
        kwargs: dict[str, Any] = {"use_device": "cuda", "use_kineto": True} if self.cuda else {}
        with profiler.profile(**kwargs) as prof:
            fn(*inputs)
            self._sync()
        rows: dict[tuple[str, str], list[float]] = {}
        spans: list[tuple[float, float]] = []
        for ev in prof.function_events:
            is_dev = str(getattr(ev, "device_type", "")).endswith("CUDA")
            kind = "kernel" if is_dev else "op"
            t = getattr(ev, "self_device_time_total", 0.0) if is_dev else ev.self_cpu_time_total
            acc = rows.setdefault((kind, ev.name), [0.0, 0])
            acc[0] += float(t)
            acc[1] += 1
            if is_dev and getattr(ev, "time_range", None) is not None:
                spans.append((float(ev.time_range.start), float(ev.time_range.end)))
        out = [{"kind": k, "name": n, "self_us": v[0], "count": v[1]} for (k, n), v in rows.items()]
        if spans:
            # Kernels of several streams may overlap: the time the device was busy is the union
            # of their intervals, not the sum of their durations.
            out.append({"kind": "busy", "name": "device busy (union of kernel intervals)",
                        "self_us": _union_length(spans), "count": len(spans)})
        return out


PERTURB_ELEMENTS = 64


def sample_tree(tree: Any, seed: int, k: int) -> Any:
    """`tree` with each tensor of more than `k` elements replaced by `k` of its elements (flat),
    at positions drawn under `seed`: the judge's secret, sent only once the timed calls have
    returned, so both workers take the same positions and no call could know them."""
    count = [0]

    def walk(t: Any) -> Any:
        if isinstance(t, (tuple, list)):
            items = [walk(x) for x in t]
            return tuple(items) if isinstance(t, tuple) else items
        if not isinstance(t, torch.Tensor):
            return t
        count[0] += 1
        if t.numel() <= k:
            return t
        g = torch.Generator().manual_seed((seed * 1_000_003 + count[0]) % (2**63))
        return t.reshape(-1)[torch.randint(t.numel(), (k,), generator=g).to(t.device)]

    return walk(tree)


def shapes_of(tree: Any) -> list[list[int] | None]:
    """Each leaf's shape (None for a value), in leaf order."""
    return [list(t.shape) if isinstance(t, torch.Tensor) else None for t in _leaves(tree)]


def perturb(inputs: Any, seed: int, index: int) -> Callable[[], None]:
    """Overwrite a few elements of each input tensor with values from elsewhere in it; return an undo.

    Deterministic in (seed, index), so the reference worker reproduces the exact
    inputs of any checked call. Moving existing values keeps every input inside
    its task's domain (positive stays positive, indices stay valid).
    """
    return apply_perturbation(perturb_plan(inputs, seed, index))


Plan = list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]


def perturb_plan(inputs: Any, seed: int, index: int) -> Plan:
    """What `perturb` writes: (flat view, positions, the values moved in, the values they replace)
    per input tensor, on its device (`perturb_plans` for one call)."""
    return perturb_plans([(inputs, index)], seed)[0]


def perturb_plans(calls: list[tuple[Any, int]], seed: int) -> list[Plan]:
    """The plans of several calls, each (inputs, index), as `perturb_plan` makes them one by one.

    Positions come from a generator seeded by (seed, index) alone, so the reference worker
    reproduces any one call's. Both sets of values are read here, from the inputs as they are
    now, so that a move and its undo are one indexed copy each. Every call's positions reach
    the device in one copy and are read in one gather per input tensor: a batch makes its
    calls' plans before its first call, on the judge's clock, and made one by one (a copy that
    waits for the stream and a gather each) they took about 0.1 ms a call on the H200, seven
    times the 11 us kernel a queued batch was to bound, and varied by more than it.
    """
    moves: list[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = []
    for inputs, index in calls:
        g = torch.Generator().manual_seed((seed * 1_000_003 + index) % (2**63))
        call: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        for t in _leaves(inputs):
            if not isinstance(t, torch.Tensor) or t.numel() < 2 or not t.is_contiguous():
                continue
            n = t.numel()
            pos = torch.unique(torch.randint(n, (min(PERTURB_ELEMENTS, n),), generator=g))
            call.append((t, pos, torch.randint(n, (pos.numel(),), generator=g)))
        moves.append(call)
    # One copy and one gather per distinct input tensor, for all the calls that move it.
    groups: dict[int, list[tuple[int, int]]] = {}
    for i, call in enumerate(moves):
        for j, (t, _, _) in enumerate(call):
            groups.setdefault(id(t), []).append((i, j))
    plans: list[Plan] = [[None] * len(call) for call in moves]  # type: ignore[list-item]
    for members in groups.values():
        t = moves[members[0][0]][members[0][1]][0]
        flat = t.view(-1)
        idx_cpu = torch.cat([torch.cat([moves[i][j][1], moves[i][j][2]]) for i, j in members])
        idx = idx_cpu.to(t.device)
        values = flat[idx]
        at = 0
        for i, j in members:
            m = moves[i][j][1].numel()
            plans[i][j] = (flat, idx[at:at + m], values[at + m:at + 2 * m], values[at:at + m])
            at += 2 * m
    return plans


def apply_perturbation(plan: Plan) -> Callable[[], None]:
    """Make the moves of a `perturb_plan` (device work only, nothing waits); return their undo."""
    for flat, pos, moved, _ in plan:
        flat.index_copy_(0, pos, moved)

    def undo() -> None:
        for flat, pos, _, old in plan:
            flat.index_copy_(0, pos, old)

    return undo


def _union_length(spans: list[tuple[float, float]]) -> float:
    """Total length covered by a set of intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def _pending_race(pending_ms: float) -> str:
    return (f"GPU work was still running {pending_ms:.3f} ms after forward returned and the caller's "
            "stream had finished: it ran on another stream that was never joined (wait_stream or an "
            "event) before return, so a consumer of the output would read it unfinished")


def _probe_race(probe_ms: float) -> str:
    return (f"GPU work of another stream was still running once the caller's stream had finished: "
            f"a device-wide probe behind the call waited {probe_ms:.3f} ms for thread slots it held; "
            "that stream was never joined (wait_stream or an event) before return, so a consumer of "
            "the output would read it unfinished")


def _over(pending_ms: float | None, probe_ms: float | None, race_bar_ms: float,
          probe_bar_ms: float | None) -> bool:
    """Whether either race reading of one call passes its bar."""
    return ((pending_ms is not None and pending_ms > race_bar_ms)
            or (probe_ms is not None and probe_bar_ms is not None and probe_ms > probe_bar_ms))


def _thread_count() -> int:
    """Threads of this process, native ones included (threading only sees Python's)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _urandom_below(n: int) -> int:
    """A uniform integer in [0, n) from the OS, not from any seedable generator."""
    return int.from_bytes(os.urandom(8), "little") % n


def describe_device(device: str) -> dict[str, Any]:
    """Facts about the device this worker measures on."""
    info: dict[str, Any] = {"torch": torch.__version__, "device": device,
                            "threads": torch.get_num_threads(), "pid_cpus": len(os.sched_getaffinity(0))}
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=p.name, sms=p.multi_processor_count, cuda=torch.version.cuda,
                    capability=f"{p.major}.{p.minor}", memory_gib=round(p.total_memory / 2**30, 1))
    return info
