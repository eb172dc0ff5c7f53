"""Request handling shared by both worker roles: staging, timing, fetching, integrity."""

from __future__ import annotations

import sys
import time
import types
from typing import Any, Callable

import torch

from kernelwright import protocol as P
from kernelwright.sandbox import codec, confine
from kernelwright.worker.harness import Harness, describe_device, sample_tree, shapes_of
from kernelwright.worker.inputs import wide_sum

Reply = tuple[Any, list[bytes]]  # a reply shape of `protocol` and its blobs


def noop(*args: Any) -> Any:
    """The calibration target before a reference output exists: returns its first input."""
    return args[0]


def exec_module(name: str, source: str, filename: str) -> types.ModuleType:
    """Execute source as a fresh module registered in sys.modules (pickle and dataclasses need that)."""
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module
    code = compile(source, filename, "exec")
    exec(code, module.__dict__)  # noqa: S102 - this is the sandboxed worker's purpose
    return module


class RoleBase:
    """Dispatch `op` to `op_<name>` methods; subclasses add their own ops."""

    def __init__(self, hardening_problems: list[str], confinement: confine.Confinement | None = None) -> None:
        self.hardening_problems = hardening_problems
        self.confinement = confinement
        self.h: Harness | None = None
        self.targets: dict[str, Callable[..., Any]] = {P.Target.NOOP: noop}
        self.startup_s: dict[str, float] = {}  # seconds by step of this worker's start (diagnostic)

    def handle(self, header: dict[str, Any], blobs: list[bytes]) -> Reply:
        """Run one request: `protocol.Op` X is served by the method `op_X`."""
        try:
            name = P.Op(header.get("op")).value
        except ValueError:
            name = None
        op = getattr(self, "op_" + name, None) if name else None
        if op is None:
            raise ValueError(f"unknown op {header.get('op')!r}")
        return op(header, blobs)

    def op_setup(self, header: P.SetupRequest, blobs: list[bytes]) -> Reply:
        """Create the harness on the judge's device with its thread count."""
        t0 = time.perf_counter()
        self.h = Harness(header["device"], header.get("threads"))
        self.startup_s.update(self.h.setup_s)
        self.startup_s["harness"] = time.perf_counter() - t0
        self.h.stage(-1, (torch.zeros(1),))
        self.h.integrity.watch(self)
        self.targets[P.Target.NOOP] = self.h.noop
        env = describe_device(header["device"])
        if self.h.cuda:
            env["launch_hold"] = ("every SM" if self.h.hold.blocks_device
                                  else f"one block ({self.h.hold.error or 'no jiterator'})")
            env["launch_hold_kind"] = self.h.hold.kind
        reply = P.SetupReply(environment=env, hardening=self.hardening_problems, startup_s=self.startup_s)
        if self.confinement is not None:
            self.confinement = confine.seal(self.confinement)  # the CUDA driver has started
            reply["confinement"] = self.confinement.to_dict()
        return reply, []

    def op_stage(self, header: P.StageRequest, blobs: list[bytes]) -> Reply:
        """Receive an input set and keep it on the device."""
        assert self.h is not None
        self.h.stage(int(header["set_id"]), tuple(codec.decode(header["inputs"], blobs)))
        return P.EmptyReply(), []

    def op_time(self, header: P.TimeRequest, blobs: list[bytes]) -> Reply:
        """One timing batch; the judge measures the whole request with its own clock."""
        assert self.h is not None
        fn = self.targets[header["target"]]
        with torch.no_grad():
            seed = header.get("seed")
            timer = self.h.time_queued if header.get("queued") else self.h.time_batch
            res = timer(fn, [int(s) for s in header["set_ids"]], bool(header.get("snap")),
                        None if seed is None else int(seed))
        return res, []

    def op_touch(self, header: P.TouchRequest, blobs: list[bytes]) -> Reply:
        """Read every tensor of the given sets, so all of them share one cache state."""
        assert self.h is not None
        total = 0.0
        for sid in header["set_ids"]:
            for t in self.h.sets[int(sid)]:
                if isinstance(t, torch.Tensor) and t.numel():
                    total += float(wide_sum(t).real) if t.dtype != torch.bool else float(t.sum())
        return P.TouchReply(sum=total), []

    def op_fetch(self, header: P.FetchRequest, blobs: list[bytes]) -> Reply:
        """Send back the snapshot of the checked call of the last timing batch (`send` False: send
        nothing, as for a baseline's; either way it is kept until the next batch)."""
        assert self.h is not None
        out_blobs: list[bytes] = []
        if not header.get("send", True):
            return P.FetchReply(), out_blobs
        out = self.h.last_outputs[0]
        if header.get("sample_seed") is not None:
            shapes = shapes_of(out)
            out = sample_tree(out, int(header["sample_seed"]), int(header["sample_elements"]))
            return P.FetchReply(out=codec.encode(out, out_blobs), shapes=shapes), out_blobs
        spec = codec.encode(out, out_blobs)
        return P.FetchReply(out=spec), out_blobs

    def op_profile(self, header: P.SetRequest, blobs: list[bytes]) -> Reply:
        """Kernels and operators one call of this role's model ran (the candidate's: a finding,
        never an acceptance; the reference's: how much of an eager call the device was busy)."""
        assert self.h is not None
        model = getattr(self, "model", None)
        if model is None:
            raise RuntimeError("no model is loaded to profile")
        with torch.no_grad():
            return P.ProfileReply(rows=self.h.profile(model, int(header["set_id"]))), []

    def op_integrity(self, header: P.BareRequest, blobs: list[bytes]) -> Reply:
        """What changed in guarded functions and global flags."""
        assert self.h is not None
        return P.IntegrityReply(violations=self.h.integrity.violations()), []
