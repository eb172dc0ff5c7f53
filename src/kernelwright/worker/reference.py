"""The reference role: runs the task (never the candidate) to make inputs, references and baselines."""

from __future__ import annotations

import copy
import gc
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from kernelwright import compare as cmp
from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.sandbox import codec, pch
from kernelwright.worker import cuda_ipc
from kernelwright.worker import inputs as I
from kernelwright.worker.common import Reply, RoleBase, exec_module
from kernelwright.worker.harness import (clone_tree, release_free_memory, sample_tree, tensor_leaves, to_device,
                                         unchanged)


class _Footprint:
    """Memory before a run, to tell how much more the run itself needed at its peak."""

    def __init__(self, rss: int, peak: int, gpu: int) -> None:
        self.rss, self.peak, self.gpu = rss, peak, gpu

    @classmethod
    def start(cls, cuda: bool) -> _Footprint:
        """Take the figures, resetting the GPU's peak counter."""
        gpu = 0
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            gpu = torch.cuda.memory_allocated()
        return cls(_rss(), _peak_rss(), gpu)

    def extra(self, cuda: bool) -> tuple[int, int]:
        """(host, GPU) bytes the run needed above what was held before it, at its peak.

        The host figure is the process's high-water mark: where an earlier peak was higher
        than this run's, it is an upper bound.
        """
        gpu = 0
        if cuda:
            torch.cuda.synchronize()
            gpu = max(0, torch.cuda.max_memory_allocated() - self.gpu)
        return max(0, _peak_rss() - self.rss), gpu


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _settled_since(t0: float, cuda: bool) -> float:
    """Seconds since t0, once the device's queued work is done too."""
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def _float64_skip(native: object, header: P.MakeSetRequest, run: tuple[int, int], input_bytes: int,
                  cuda: bool) -> str:
    """Why the float64 run is skipped for outputs `native` (empty: make it).

    Decided before the run, so that a task too large for it never attempts it: the judge
    holds two sets' outputs at a time and says how much memory it has for them; this worker
    may use `memory_bytes`, and the float64 run needs about twice what the native run needed
    above the inputs (every tensor twice as large for float32), on the GPU when it runs there.
    """
    leaves = tensor_leaves(native)
    own = sum(t.numel() * t.element_size() for t in leaves)
    f64 = sum(t.numel() * 8 for t in leaves)
    gib = 1 << 30
    hold = int(header.get("hold_bytes", 0))
    if hold > 0 and 2 * (own + f64) > hold:
        return (f"large outputs: two sets' outputs with float64 references would take {2 * (own + f64) / gib:.2f} "
                f"GiB, more than the {hold / gib:.2f} GiB the reference worker can hold")
    host_run, gpu_run = run
    # The double inputs, the run's temporaries at double size, and the float64 outputs kept.
    host_need = _rss() + f64 + (0 if cuda else 2 * (input_bytes + host_run))
    limit = int(header.get("memory_bytes", 0))
    if limit > 0 and host_need > C.FLOAT64_MEMORY_SHARE * limit:
        return (f"large task: the float64 run would need about {host_need / gib:.1f} GiB in the reference worker, "
                f"which may use {limit / gib:.1f} GiB")
    if cuda:
        # Of this worker's share of the GPU (the candidate's worker has the rest), what it does
        # not hold yet; never more than is free on the device now.
        free = torch.cuda.mem_get_info()[0]
        room = int(header.get("room_bytes", 0))
        if room > 0:
            free = min(free, room - torch.cuda.memory_allocated())
        gpu_need = 2 * (input_bytes + gpu_run)
        if gpu_need > C.FLOAT64_MEMORY_SHARE * free:
            return (f"large task: the float64 run would need about {gpu_need / gib:.1f} GiB on the GPU, "
                    f"{max(0, free) / gib:.1f} GiB of which is left to the reference worker")
    return ""


# Requests whose work is never timed: served beside the candidate's build (ReferenceWorker.handle).
_UNTIMED = frozenset({P.Op.LOAD, P.Op.MAKE_SET, P.Op.COMPARE, P.Op.DEPENDENCE, P.Op.FORGET, P.Op.INPUTS,
                      P.Op.FLOPS, P.Op.RESET})


class ReferenceWorker(RoleBase):
    """Holds the task's Model and each set's references; answers load, make_set, compare,
    dependence, compile, flops and ceilings.

    The references (native and float64 outputs) never leave this process: the judge relays a
    candidate's output here and gets back what the comparison found. On CUDA they stay on the
    GPU, where the comparison runs.
    """

    _allocated_at_collect = 0  # CUDA bytes allocated when the garbage collector last ran (_release)

    # set id -> (native outputs, folded into ref64 where it exists; float64 outputs or None)
    refs: dict[int, tuple[Any, Any]]

    def handle(self, header: dict[str, Any], blobs: list[bytes]) -> Reply:
        """Serve a request; on the CPU, the untimed ones with one thread fewer (`_UNTIMED`).

        While this worker makes sets and compares outputs, the candidate's worker builds or
        imports beside it on the same cores. A team of every core then waits at each of its
        barriers for a thread the compiler has pushed off its core: on the 2-core machine, with
        the other core busy, making a set's references took 2-4 times the CPU (and more wall
        time) with two threads than with one. Timed calls (`time`), and the compiled baseline,
        keep the verdict's thread count, which the candidate's calls have too.
        """
        n = torch.get_num_threads()
        if self.h is None or self.h.cuda or n <= 1 or header.get("op") not in _UNTIMED:
            return super().handle(header, blobs)
        torch.set_num_threads(n - 1)
        try:
            return super().handle(header, blobs)
        finally:
            torch.set_num_threads(n)


    def op_load(self, header: P.LoadReferenceRequest, blobs: list[bytes]) -> Reply:
        """Import the task, build Model under the weight seed, send its state and init inputs."""
        assert self.h is not None
        self.module = exec_module("kw_task", header["source"], header["path"])
        for name in ("Model", "get_inputs", "get_init_inputs"):
            if not hasattr(self.module, name):
                raise LookupError(f"the task does not define {name}")
        I.seed_everything(int(header["weight_seed"]))
        init = list(self.module.get_init_inputs())
        I.seed_everything(int(header["weight_seed"]))
        model = self.module.Model(*init)
        if header.get("eval_mode"):
            model.eval()
        self.model = model.to(self.h.device)
        self.model64: torch.nn.Module | None = None
        self.inputs_on_device: bool | None = None  # None: not tried yet (_make_inputs)
        self.targets[P.Target.EAGER] = self.model
        self.refs = {}
        out_blobs: list[bytes] = []
        state = {k: v.detach() for k, v in self.model.state_dict().items()}
        reply = P.LoadReferenceReply(init_inputs=codec.encode(init, out_blobs),
                                     state=codec.encode(state, out_blobs))
        if self.h.cuda:
            reply["device_free"] = int(torch.cuda.mem_get_info()[0])
        return reply, out_blobs

    def _double_model(self) -> torch.nn.Module:
        if self.model64 is None:
            self.model64 = copy.deepcopy(self.model).double()
        return self.model64

    def _make_inputs(self, seed: int, distribution: str,
                     variant: dict[str, Any] | None) -> tuple[list[Any], bool]:
        """A set's inputs, made on the GPU where the task allows it (see inputs.make_inputs), and
        whether they were.

        A task whose get_inputs fails there (a CPU generator, a mix of devices) has its sets
        made on the CPU, as before; either way one seed always gives one set.
        """
        assert self.h is not None
        if self.h.cuda and self.inputs_on_device is not False:
            try:
                inputs = I.make_inputs(self.module.get_inputs, self.module.__dict__, seed, distribution, variant,
                                       device=self.h.device)
                self.inputs_on_device = True
                return inputs, True
            except Exception:  # noqa: BLE001 - the CPU path below reports the task's own error, if any
                # Failing on the first set: every set on the CPU. Failing later (one shape
                # variant): that set on the CPU, every time it is made.
                if self.inputs_on_device is None:
                    self.inputs_on_device = False
        return I.make_inputs(self.module.get_inputs, self.module.__dict__, seed, distribution, variant), False

    def op_make_set(self, header: P.MakeSetRequest, blobs: list[bytes]) -> Reply:
        """Make one input set from a secret seed and stage it; with `reference`, make its native
        and float64 outputs and keep them here, sending only what the judge needs of them."""
        try:
            return self._make_set(header)
        except torch.OutOfMemoryError as exc:
            # The judge plans what this worker holds; where the plan fell short, say what was held.
            raise torch.OutOfMemoryError(f"{self._holdings()}: {str(exc).split(' If reserved but')[0]}") from None

    def _holdings(self) -> str:
        """What this worker holds, by kind, for an out-of-memory message."""
        assert self.h is not None
        gib = float(1 << 30)
        sets = {i: I.input_bytes(list(t)) for i, t in self.h.sets.items() if i >= 0}
        refs = {i: sum(cmp.held_bytes(t) for t in r) for i, r in self.refs.items()}
        noop = sum(t.numel() * t.element_size() for t in tensor_leaves(self.h.noop_out))
        held = (f"inputs of sets {sorted(sets)} ({sum(sets.values()) / gib:.1f} GiB), references of sets "
                f"{sorted(refs)} ({sum(refs.values()) / gib:.1f} GiB), no-op output {noop / gib:.1f} GiB")
        if self.h.cuda:
            held += f", {torch.cuda.memory_allocated() / gib:.1f} GiB allocated in all"
        return "the reference worker held " + held

    def _make_set(self, header: P.MakeSetRequest) -> Reply:
        assert self.h is not None
        set_id = int(header["set_id"])
        if self.h.cuda:
            torch.cuda.reset_peak_memory_stats()
        inputs, on_device = self._make_inputs(int(header["seed"]), header["distribution"], header.get("variant"))
        nbytes = I.input_bytes(inputs)
        self.h.stage(set_id, tuple(inputs), fresh=True)
        del inputs  # on a large task every copy held counts
        staged = self.h.sets[set_id]
        reply = P.MakeSetReply(nbytes=nbytes, on_device=on_device)
        if header.get("fingerprint"):  # a pass over every input: only when the candidate makes the set too
            reply["fingerprint"] = I.fingerprint(staged)
        inputs_peak = int(torch.cuda.max_memory_allocated()) if self.h.cuda else 0
        if header.get("reference", True):
            self.refs.pop(set_id, None)  # a deferred set made again
            with torch.no_grad():
                native, ref64 = self._references(header, staged, nbytes, reply)
            rtol, atol = header.get("rtol"), header.get("atol")
            reply["outputs"] = codec.encode_meta(native)
            reply["out_bytes"] = cmp.held_bytes(native)
            reply["has_ref64"] = ref64 is not None
            reply["slack"] = cmp.reference_slack(native, ref64, rtol, atol)
            if header.get("degenerate"):
                reply["zeros_pass"] = cmp.zeros_would_pass(native, ref64, rtol, atol)
            self.refs[set_id] = cmp.fold_references(native, ref64)
            del native, ref64
            reply["held_bytes"] = sum(cmp.held_bytes(t) for t in self.refs[set_id])
        if self.h.cuda:
            # _references resets the peak counter for its own figure: what this op held at most
            # is the larger of that and the inputs' making.
            reply["peak"] = max(int(torch.cuda.max_memory_allocated()), inputs_peak)
        self._release()  # the copies made above: freed, and now no longer resident
        if self.h.cuda:
            reply["resident"] = int(torch.cuda.memory_allocated())
        return reply, []

    def _release(self, whole: bool = False) -> None:
        """Give back what this worker freed: host pages, and on CUDA the allocator's cached blocks,
        which the candidate's worker could not otherwise use (never between timed calls: only
        after a set is made, relayed or compared before the timing).

        On CUDA the garbage collector runs (a reference cycle can hold a set's worth of GPU memory,
        see _filled) once the memory allocated has grown by RELEASE_FREE_MIN_BYTES since it last
        ran, and cached blocks go back once they are that many. Both used to run after every set,
        relay and comparison: a collection alone takes 40-60 ms in a worker with torch loaded (the
        2-core machine), and each set of the small elementwise example took 0.09-0.14 s to make on
        the H100 (docs/gpu-validation.md section 31's traces) against 0.01 s on the CPU, where
        neither ran. `whole` (forgetting a verdict): both, always.
        """
        if self.h is not None and self.h.cuda:
            if whole or torch.cuda.memory_allocated() - self._allocated_at_collect > C.RELEASE_FREE_MIN_BYTES:
                gc.collect()
                self._allocated_at_collect = torch.cuda.memory_allocated()
            release_free_memory()
            if whole or torch.cuda.memory_reserved() - torch.cuda.memory_allocated() > C.RELEASE_FREE_MIN_BYTES:
                torch.cuda.empty_cache()
        else:
            release_free_memory()

    def _references(self, header: P.MakeSetRequest, staged: Any, nbytes: int,
                    reply: P.MakeSetReply) -> tuple[Any, Any]:
        """The task's native output on a staged set and, where it fits and works, the float64 one."""
        assert self.h is not None
        args = clone_tree(staged)
        before = _Footprint.start(self.h.cuda)
        t0 = time.perf_counter()
        if self.h.cuda:
            self.h.hold(long=True)  # as a candidate's checked call runs: the race check's yardstick
        native = self.model(*args)
        if self.h.cuda:
            # What the task's own call leaves pending after its stream is done: honest KernelBench
            # convolutions read 0.05-0.07 ms on the H200, so the judge's race bar starts from it.
            reply["pending_ms"], probe = self.h.race_readings()
            if probe is not None:
                reply["probe_ms"] = probe
        reply["native_s"] = _settled_since(t0, self.h.cuda)
        run = before.extra(self.h.cuda)
        if self.h.noop_like is None and not header.get("variant"):
            self.h.noop_like = cmp.to_meta(native)
        reply["mutated"] = not unchanged(args, staged)
        del args
        skip = (_float64_skip(native, header, run, nbytes, self.h.cuda)
                if header.get("float64", True) else "not asked for")
        if skip:
            reply["ref64_skipped"] = True
            reply["ref64_error"] = skip
            return native, None
        try:
            t0 = time.perf_counter()
            ref64 = self._double_model()(*I.to_double(staged, copy=True))
            reply["ref64_s"] = _settled_since(t0, self.h.cuda)
            return native, ref64
        except Exception as exc:  # some ops have no float64 kernel
            reply["ref64_error"] = f"{type(exc).__name__}: {exc}"[:300]
            return native, None

    def op_compare(self, header: P.CompareRequest, blobs: list[bytes]) -> Reply:
        """Compare a candidate's output, relayed by the judge, with a set's references here.

        The output is data from the adversary: decoded without pickle (sandbox.codec), moved
        to the references' device, compared under the judge's tolerance. With `seed`, the
        reference is the task's native output on the set as perturbed for that timed call.
        """
        assert self.h is not None
        set_id = int(header["set_id"])
        seed = header.get("seed")
        try:
            if header.get("ipc") is not None:
                out = _handed_over(header["out"], header["ipc"])
            else:
                out = codec.decode(header["out"], blobs)
        except cuda_ipc.IpcError as exc:
            return P.CompareReply(passed=False, ipc_failed=str(exc)[:300]), []
        except ValueError as exc:
            return _compared(cmp.Comparison(False, float("nan"), float("nan"), float("nan"), float("inf"),
                                            P.Check.PROTOCOL, f"undecodable output: {exc}")), []
        del blobs
        if seed is not None:
            from kernelwright.worker.harness import perturb

            args = clone_tree(self.h.sets[set_id])
            perturb(args, int(seed), int(header.get("index", 0)))
            with torch.no_grad():
                native, ref64 = self.model(*args), None
            del args
        else:
            native, ref64 = self.refs[set_id]
        out = to_device(out, str(cmp.device_of(cmp.real_leaves(native, ref64))))
        scales = None
        if header.get("sample_seed") is not None and seed is not None:
            # A timed output sent as a sample of its elements: the shapes it claims for the whole
            # output first, then the sample against the same positions of the reference, each
            # element's tolerance scaled by the whole reference's RMS.
            wrong = _shape_claims(header.get("shapes"), native)
            if wrong:
                return _compared(cmp.Comparison(False, float("nan"), float("nan"), float("nan"), float("inf"),
                                                P.Check.SHAPE, wrong)), []
            scales = [cmp.rms(t) if isinstance(t, torch.Tensor) and t.is_floating_point() else None
                      for t in cmp.real_leaves(native, ref64)]
            native, ref64 = (sample_tree(native, int(header["sample_seed"]), int(header["sample_elements"])),
                             None)
        c = cmp.compare_tree(out, codec.describe(header["out"]), native, ref64, str(header["device"]),
                             header.get("rtol"), header.get("atol"), [float(f) for f in header.get("slack") or []],
                             scales)
        del out, native, ref64
        if header.get("drop") and seed is None:
            del self.refs[set_id]
            self._release()
        else:
            release_free_memory()  # a timed output's check: the cached blocks stay for the next timed calls
        return _compared(c), []

    def op_dependence(self, header: P.DependenceRequest, blobs: list[bytes]) -> Reply:
        """How much the references of two held sets differ, relative to their scale."""
        a, b = (self.refs[int(i)] for i in header["set_ids"])
        return P.DependenceReply(change=cmp.relative_change(cmp.real_leaves(*a), cmp.real_leaves(*b))), []

    def op_forget(self, header: P.ForgetRequest, blobs: list[bytes]) -> Reply:
        """Drop the references of the given sets (gone already: nothing to do)."""
        for set_id in header["set_ids"]:
            self.refs.pop(int(set_id), None)
        self._release()
        return P.EmptyReply(), []

    def op_inputs(self, header: P.DropSetRequest, blobs: list[bytes]) -> Reply:
        """Send a staged input set (for the judge to relay), dropping it here when asked."""
        assert self.h is not None
        set_id = int(header["set_id"])
        out_blobs: list[bytes] = []
        spec = codec.encode(list(self.h.sets[set_id]), out_blobs) if header.get("send", True) else []
        if header.get("drop"):
            del self.h.sets[set_id]
            self._release()  # the sets dropped before this one (this one is being sent)
        return P.InputsReply(inputs=spec), out_blobs

    def op_reset(self, header: P.BareRequest, blobs: list[bytes]) -> Reply:
        """Forget the verdict: the task's module and model, the sets, the references, the compiled
        baseline. What stays is the process: its imports, its device set-up and, on the CPU, the
        compiler caches on disk; the next `load` builds the Model afresh from its own seed."""
        assert self.h is not None
        for name in ("module", "model", "model64"):
            self.__dict__.pop(name, None)
        self.refs = {}
        self.inputs_on_device = None
        self.targets = {P.Target.NOOP: self.targets[P.Target.NOOP]}
        self.h.forget_verdict()
        if "torch._dynamo" in sys.modules:  # the compiled baseline's graphs, guards and caches
            torch._dynamo.reset()
        self._release(whole=True)
        return P.EmptyReply(), []

    def op_compile(self, header: P.SetRequest, blobs: list[bytes]) -> Reply:
        """torch.compile the model and warm it up; compile time is not part of its timing."""
        assert self.h is not None
        t0 = time.perf_counter()
        # Its header beside its other compiler caches: kept across verdicts where those are.
        pch.share_inductor_headers(Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]) / "precompiled_headers")
        compiled = torch.compile(self.model)
        with torch.no_grad():
            for _ in range(2):
                compiled(*self.h.sets[int(header["set_id"])])
        self.targets[P.Target.COMPILED] = compiled
        return P.CompileReply(seconds=time.perf_counter() - t0), []

    def op_flops(self, header: P.SetRequest, blobs: list[bytes]) -> Reply:
        """FLOPs of one call as torch's formulas count them (matmuls, convolutions, attention).

        Counted on a real call, on a copy of the set (after the timing: the candidate's worker
        is gone, its memory free). Not on `meta` copies, though shapes would do: many ops' meta
        kernels are Python references that import torch._dynamo, Inductor and SymPy on first
        use, 5-7 s a verdict on the H200 host. A call that fails here (out of memory) is
        counted on meta copies instead.
        """
        assert self.h is not None
        from kernelwright.worker.flops import FlopCount

        inputs = self.h.sets[int(header["set_id"])]
        counter = FlopCount()
        try:
            with torch.no_grad(), counter:
                out = self.model(*clone_tree(inputs))
            del out
        except Exception:  # noqa: BLE001 - counted on meta copies below
            counter = FlopCount()
            self._release()
            model = copy.deepcopy(self.model).to("meta")
            with torch.no_grad(), counter:
                model(*cmp.to_meta(list(inputs)))
        self._release()
        return P.FlopsReply(flops=counter.total), []

    def op_ceilings(self, header: P.BareRequest, blobs: list[bytes]) -> Reply:
        """Measure copy bandwidth and matmul rate of this device (cached by the judge)."""
        assert self.h is not None
        from kernelwright.worker.ceilings import measure_ceilings

        return measure_ceilings(self.h.device), []


def _handed_over(spec: Any, records: Any) -> Any:
    """The output tree a candidate handed over in GPU memory, its tensors copied into this process."""
    meta = codec.decode_meta(spec)
    metas = tensor_leaves(meta)
    if not isinstance(records, list) or len(records) != len(metas):
        raise cuda_ipc.IpcError("one handle per tensor of the output is needed")
    try:
        copies = cuda_ipc.copy_in(records, metas)
    except (KeyError, TypeError, ValueError) as exc:
        raise cuda_ipc.IpcError(f"malformed handle record: {exc}") from None
    return _filled(meta, iter(copies))


def _filled(t: Any, copies: Iterator[torch.Tensor]) -> Any:
    """`t` with each tensor replaced by the next of `copies`, in leaf order.

    A module-level function, not a closure: a recursive closure is a reference cycle, and one
    that held the copies kept a whole output (8 GiB on KernelBench's level1/38) alive after
    each comparison, until the garbage collector happened to run.
    """
    if isinstance(t, (tuple, list)):
        items = [_filled(x, copies) for x in t]
        return tuple(items) if isinstance(t, tuple) else items
    return next(copies) if isinstance(t, torch.Tensor) else t


def _shape_claims(shapes: Any, native: Any) -> str:
    """Why the whole-output shapes a sampled output claims are not the reference's ('' if they are)."""
    refs = cmp.leaves(native)
    if not isinstance(shapes, list) or len(shapes) != len(refs):
        return f"the timed output has {len(shapes) if isinstance(shapes, list) else '?'} leaves; the reference has {len(refs)}"
    for i, (got, r) in enumerate(zip(shapes, refs)):
        if isinstance(r, torch.Tensor) and (not isinstance(got, list) or tuple(got) != tuple(r.shape)):
            return f"output {i}: shape {got}, expected {tuple(r.shape)}"
    return ""


def _compared(c: cmp.Comparison) -> P.CompareReply:
    return P.CompareReply(passed=c.passed, max_abs_error=c.max_abs_error, max_rel_error=c.max_rel_error,
                          scale=c.scale, norm_error=c.norm_error, check=c.check, detail=c.detail)
