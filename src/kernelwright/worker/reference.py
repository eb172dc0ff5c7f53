"""The reference role: runs the task (never the candidate) to make inputs, references and baselines."""

from __future__ import annotations

import copy
import resource
import time
from typing import Any

import torch

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.sandbox import codec
from kernelwright.worker import inputs as I
from kernelwright.worker.common import Reply, RoleBase, exec_module
from kernelwright.worker.harness import clone_tree, release_free_memory, unchanged


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
    leaves = _tensors(native)
    own = sum(t.numel() * t.element_size() for t in leaves)
    f64 = sum(t.numel() * 8 for t in leaves)
    gib = 1 << 30
    hold = int(header.get("hold_bytes", 0))
    if hold > 0 and 2 * (own + f64) > hold:
        return (f"large outputs: two sets' outputs with float64 references would take {2 * (own + f64) / gib:.2f} "
                f"GiB, more than the {hold / gib:.2f} GiB the judge can hold")
    host_run, gpu_run = run
    # The double inputs, the run's temporaries at double size, and the float64 outputs kept.
    host_need = _rss() + f64 + (0 if cuda else 2 * (input_bytes + host_run))
    limit = int(header.get("memory_bytes", 0))
    if limit > 0 and host_need > C.FLOAT64_MEMORY_SHARE * limit:
        return (f"large task: the float64 run would need about {host_need / gib:.1f} GiB in the reference worker, "
                f"which may use {limit / gib:.1f} GiB")
    if cuda:
        free = torch.cuda.mem_get_info()[0]
        gpu_need = 2 * (input_bytes + gpu_run)
        if gpu_need > C.FLOAT64_MEMORY_SHARE * free:
            return (f"large task: the float64 run would need about {gpu_need / gib:.1f} GiB on the GPU, "
                    f"{free / gib:.1f} GiB of which is free")
    return ""


def _tensors(tree: object) -> list[torch.Tensor]:
    if isinstance(tree, torch.Tensor):
        return [tree]
    if isinstance(tree, (list, tuple)):
        return [t for x in tree for t in _tensors(x)]
    return []


class ReferenceWorker(RoleBase):
    """Holds the task's Model; answers load, make_set, compile, flops and ceilings."""

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
        out_blobs: list[bytes] = []
        state = {k: v.detach() for k, v in self.model.state_dict().items()}
        reply = P.LoadReferenceReply(init_inputs=codec.encode(init, out_blobs),
                                     state=codec.encode(state, out_blobs))
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
        """Make one input set from a secret seed; stage it; return it with native and float64 outputs."""
        assert self.h is not None
        set_id = int(header["set_id"])
        inputs, on_device = self._make_inputs(int(header["seed"]), header["distribution"], header.get("variant"))
        nbytes = I.input_bytes(inputs)
        self.h.stage(set_id, tuple(inputs), fresh=True)
        del inputs  # on a large task every copy held counts
        staged = self.h.sets[set_id]
        out_blobs: list[bytes] = []
        reply = P.MakeSetReply(nbytes=nbytes, on_device=on_device)
        if header.get("fingerprint"):  # a pass over every input: only when the candidate makes the set too
            reply["fingerprint"] = I.fingerprint(staged)
        if header.get("reference", True):
            with torch.no_grad():
                args = clone_tree(staged)
                before = _Footprint.start(self.h.cuda)
                t0 = time.perf_counter()
                native = self.model(*args)
                reply["native_s"] = _settled_since(t0, self.h.cuda)
                run = before.extra(self.h.cuda)
                if self.h.noop_out is None and not header.get("variant"):
                    self.h.noop_out = native  # the task's own output object: nothing uses it after this
                reply["mutated"] = not unchanged(args, staged)
                del args
                reply["native"] = codec.encode(native, out_blobs)
                skip = (_float64_skip(native, header, run, nbytes, self.h.cuda)
                        if header.get("float64", True) else "not asked for")
                if skip:
                    reply["ref64_skipped"] = True
                    reply["ref64_error"] = skip
                    release_free_memory()
                    return reply, out_blobs
                try:
                    t0 = time.perf_counter()
                    ref64 = self._double_model()(*I.to_double(staged, copy=True))
                    reply["ref64_s"] = _settled_since(t0, self.h.cuda)
                    reply["ref64"] = codec.encode(ref64, out_blobs)
                except Exception as exc:  # some ops have no float64 kernel
                    reply["ref64_error"] = f"{type(exc).__name__}: {exc}"[:300]
        release_free_memory()  # the copies made above: freed, and now no longer resident
        return reply, out_blobs

    def op_perturbed_reference(self, header: P.PerturbedReferenceRequest, blobs: list[bytes]) -> Reply:
        """The native output for a timing set as perturbed for one timed call.

        No float64 run: a timed output is checked for being the same computation as the
        checked calls, whose precision the trials settled against float64.
        """
        assert self.h is not None
        from kernelwright.worker.harness import perturb

        args = clone_tree(self.h.sets[int(header["set_id"])])
        perturb(args, int(header["seed"]), int(header["index"]))
        out_blobs: list[bytes] = []
        with torch.no_grad():
            return P.PerturbedReferenceReply(native=codec.encode(self.model(*args), out_blobs)), out_blobs

    def op_inputs(self, header: P.DropSetRequest, blobs: list[bytes]) -> Reply:
        """Send a staged input set (for the judge to relay), dropping it here when asked."""
        assert self.h is not None
        set_id = int(header["set_id"])
        out_blobs: list[bytes] = []
        spec = codec.encode(list(self.h.sets[set_id]), out_blobs) if header.get("send", True) else []
        if header.get("drop"):
            del self.h.sets[set_id]
            release_free_memory()  # the sets dropped before this one (this one is being sent)
        return P.InputsReply(inputs=spec), out_blobs

    def op_compile(self, header: P.SetRequest, blobs: list[bytes]) -> Reply:
        """torch.compile the model and warm it up; compile time is not part of its timing."""
        assert self.h is not None
        t0 = time.perf_counter()
        compiled = torch.compile(self.model)
        with torch.no_grad():
            for _ in range(2):
                compiled(*self.h.sets[int(header["set_id"])])
        self.targets[P.Target.COMPILED] = compiled
        return P.CompileReply(seconds=time.perf_counter() - t0), []

    def op_flops(self, header: P.SetRequest, blobs: list[bytes]) -> Reply:
        """FLOPs of one call as torch's counter sees them (matmuls, convolutions, attention)."""
        assert self.h is not None
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            self.model(*clone_tree(self.h.sets[int(header["set_id"])]))
        return P.FlopsReply(flops=int(counter.get_total_flops())), []

    def op_ceilings(self, header: P.BareRequest, blobs: list[bytes]) -> Reply:
        """Measure copy bandwidth and matmul rate of this device (cached by the judge)."""
        assert self.h is not None
        from kernelwright.worker.ceilings import measure_ceilings

        return measure_ceilings(self.h.device), []
