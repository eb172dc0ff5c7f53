"""The candidate role: imports ModelNew and runs it. Treated as compromised after import."""

from __future__ import annotations

import os
import time
from typing import Any
from pathlib import Path

import torch

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.sandbox import codec, confine, limits, pch
from kernelwright.worker import cuda_ipc
from kernelwright.worker import inputs as I
from kernelwright.worker.common import Reply, RoleBase, exec_module
from kernelwright.worker.harness import release_free_memory, tensor_leaves


class CandidateWorker(RoleBase):
    """Answers load, run and profile; timing and staging come from RoleBase."""

    def op_load(self, header: P.LoadCandidateRequest, blobs: list[bytes]) -> Reply:
        """Import the candidate (this compiles it), build ModelNew, copy the reference weights."""
        assert self.h is not None
        self._seal()
        init = codec.decode(header["init_inputs"], blobs)
        state = codec.decode(header["state"], blobs)
        if header.get("build_dir"):
            _use_build_dir(header["build_dir"])
        # The control first, before any of the candidate's code exists: it cannot stop it being built.
        control_error = self._load_control(header, init, state) if header.get("control_source") else ""
        why = self._narrow(header.get("build_dir"))
        if why:
            return P.LoadCandidateReply(status=P.Status.IMPORT_FAILED, compile_error=False,
                                        error=f"the sandbox could not be narrowed before the candidate's import: {why}"), []
        path = Path(header["filename"])
        path.write_text(header["source"])  # so tracebacks and inspect can show lines
        _share_torch_header(header["source"], header.get("cpp_prefix_pch"))
        _interpret_triton_on_cpu(self.h.device)
        t0 = time.perf_counter()
        try:
            module = exec_module("kw_candidate", header["source"], str(path))
        except BaseException as exc:
            return P.LoadCandidateReply(status=P.Status.IMPORT_FAILED, error=_short(exc),
                                        compile_error="Error building extension" in str(exc)
                                        or type(exc).__name__ in ("CalledProcessError", "CompilationError"),
                                        import_s=time.perf_counter() - t0), []
        import_s = time.perf_counter() - t0
        cls = getattr(module, "ModelNew", None)
        if cls is None:
            return P.LoadCandidateReply(status=P.Status.IMPORT_FAILED,
                                        error="the candidate does not define ModelNew",
                                        compile_error=False, import_s=import_s), []
        try:
            I.seed_everything(int(header["weight_seed"]))
            model = cls(*init)
            if isinstance(model, torch.nn.Module):
                if header.get("eval_mode"):
                    model.eval()
                model = model.to(self.h.device)
                copied = _copy_matching(model, state)
            else:
                copied = 0
        except BaseException as exc:
            return P.LoadCandidateReply(status=P.Status.CONSTRUCT_FAILED, error=_short(exc),
                                        import_s=import_s), []
        self.model = model
        self.targets[P.Target.MODEL] = model
        construct_s = time.perf_counter() - t0 - import_s
        return P.LoadCandidateReply(import_s=import_s, construct_s=construct_s,
                                    copied=copied, state_keys=len(state), control_error=control_error,
                                    integrity=self.h.integrity.violations()), []

    def _load_control(self, header: P.LoadCandidateRequest, init: Any, state: dict[str, torch.Tensor]) -> str:
        """Build the task's Model here as the reference worker builds it: the timing's control.

        Built before the candidate's import, so what fails here is the task's or this confined
        process's, never the candidate's doing."""
        assert self.h is not None
        try:
            task = exec_module("kw_control", header["control_source"], header["control_path"])
            I.seed_everything(int(header["weight_seed"]))
            control = task.Model(*init)
            if header.get("eval_mode"):
                control.eval()
            control = control.to(self.h.device)
            _copy_matching(control, state)
        except BaseException as exc:
            return _short(exc)
        self.targets[P.Target.CONTROL] = control
        return ""

    def op_make_inputs(self, header: P.MakeInputsRequest, blobs: list[bytes]) -> Reply:
        """Make an input set from its seed with the task's own get_inputs, as the reference
        did (same device, same seed), and stage it: the set need not cross two pipes."""
        assert self.h is not None
        source = header["task_source"]
        if getattr(self, "_task_source", None) != source:
            self._task = exec_module("kw_task", source, header["task_path"])
            self._task_source = source
        inputs = I.make_inputs(self._task.get_inputs, self._task.__dict__, int(header["seed"]),
                               header["distribution"], header.get("variant"),
                               device=self.h.device if header.get("on_device") else None)
        set_id = int(header["set_id"])
        nbytes = I.input_bytes(inputs)
        self.h.stage(set_id, tuple(inputs), fresh=True)
        del inputs
        return P.MakeInputsReply(nbytes=nbytes, fingerprint=I.fingerprint(self.h.sets[set_id])), []

    def _seal(self) -> None:
        """The Unix-socket filter before any of the candidate's code runs (a no-op after setup).

        A build-only worker has no harness: start the CUDA driver first, which needs a socket
        (`confine.seal` says why); the candidate's build may start it too.
        """
        if self.confinement is None or self.confinement.unix_sockets != confine.NONE:
            return
        if self.h is None and torch.cuda.is_available():
            torch.cuda.init()
        self.confinement = confine.seal(self.confinement)

    def _narrow(self, build_dir: str | None) -> str:
        """Before the candidate's code: no more reads of ENV_READABLE_UNTIL_LOAD, and a pre-started
        worker, which could write the whole build cache, from now on writes only its build directory."""
        if self.confinement is None:
            return ""
        if build_dir:
            return confine.narrow(self.confinement, [os.getcwd(), build_dir])
        return confine.narrow(self.confinement) if os.environ.get(confine.ENV_READABLE_UNTIL_LOAD) else ""

    def op_build(self, header: P.BuildRequest, blobs: list[bytes]) -> Reply:
        """Import only, so the candidate's extensions build into its cache; nothing is trusted."""
        self._seal()
        why = self._narrow(None)
        if why:
            raise RuntimeError(f"the sandbox could not be narrowed before the candidate's import: {why}")
        path = Path(header["filename"])
        path.write_text(header["source"])
        _share_torch_header(header["source"], header.get("cpp_prefix_pch"))
        t0 = time.perf_counter()
        try:
            exec_module("kw_candidate", header["source"], str(path))
        except BaseException as exc:
            return P.BuildReply(status=P.Status.IMPORT_FAILED, error=_short(exc),
                                import_s=time.perf_counter() - t0), []
        return P.BuildReply(import_s=time.perf_counter() - t0), []

    def op_run(self, header: P.RunRequest, blobs: list[bytes]) -> Reply:
        """One correctness call on a copy of a staged set (or, for a set dropped after it, on the
        set itself when the judge asks), with memory poisoned first."""
        assert self.h is not None
        set_id = int(header["set_id"])
        with torch.no_grad():
            probe_bar = header.get("probe_bar_ms")
            res = self.h.run_checked(self.model, set_id, float(header.get("race_bar_ms", C.RACE_PENDING_MS)),
                                     in_place=bool(header.get("in_place")) and bool(header.get("drop")),
                                     probe_bar_ms=float(probe_bar) if probe_bar is not None else None)
        if header.get("drop"):
            del self.h.sets[set_id]
            release_free_memory()
        if self.h.cuda:
            res["gpu_reserved"] = torch.cuda.memory_reserved()
        out_blobs: list[bytes] = []
        snap = res.pop("out")
        if header.get("ipc") and self.h.cuda and res.get("plain"):
            try:
                return self._hand_over(snap, res), out_blobs
            except cuda_ipc.IpcError as exc:
                res["ipc_error"] = str(exc)[:300]
        spec = codec.encode(snap, out_blobs)
        return P.RunReply(**res, out=spec), out_blobs

    def _hand_over(self, snap: Any, res: dict[str, Any]) -> P.RunReply:
        """The checked output as CUDA IPC handles; it stays alive (and fetchable as bytes) here
        until the next timing batch or checked call replaces it."""
        assert self.h is not None
        snap = _contiguous(snap)
        records = [cuda_ipc.export(t) for t in tensor_leaves(snap)]
        self.h.last_outputs = [snap]
        return P.RunReply(**res, out=codec.encode_meta(snap), ipc=records)

    def op_warm(self, header: P.SetRequest, blobs: list[bytes]) -> Reply:
        """One unchecked call on a copy of a staged set: its first launch compiles what it JITs."""
        assert self.h is not None
        with torch.no_grad():
            self.h.call_once(self.model, int(header["set_id"]))
        return P.EmptyReply(), []


def _interpret_triton_on_cpu(device: str) -> None:
    """On the CPU, Triton has no driver: its kernels can only run in Triton's interpreter.

    Slow (seconds a call), so good for judging correctness, never for speed; set before the
    candidate's `@triton.jit` runs, which is when Triton reads it.
    """
    if not device.startswith("cuda"):
        os.environ.setdefault("TRITON_INTERPRET", "1")


def _share_torch_header(source: str, cpp_prefix_pch: str | None = None) -> None:
    """Let a load_inline C++ build reuse the precompiled torch header (only if it builds one),
    and an Inductor-proposed candidate's build the precompiled prelude the judge built for it."""
    root = os.environ.get(pch.ENV)
    if root and "load_inline" in source:
        pch.install(root)
    if cpp_prefix_pch:
        os.environ[pch.INDUCTOR_ENV] = cpp_prefix_pch
    else:
        os.environ.pop(pch.INDUCTOR_ENV, None)


def _use_build_dir(build: str) -> None:
    """Point the build caches at the candidate's content-keyed directory: a pre-started worker
    learns it only now. Compilers read these when they build, which has not happened yet (the
    driver's CUDA_CACHE_PATH was read at start-up, so that one cache stays per-worker)."""
    os.environ.update(limits.build_env(Path(build)))


def _copy_matching(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Copy reference parameters and buffers into same-named, same-shaped ones of ModelNew."""
    own = model.state_dict()
    copied = 0
    with torch.no_grad():
        for name, value in state.items():
            if name in own and own[name].shape == value.shape:
                own[name].copy_(value)
                copied += 1
    return copied


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[-6000:]


def _contiguous(tree: Any) -> Any:
    if isinstance(tree, (tuple, list)):
        items = [_contiguous(t) for t in tree]
        return tuple(items) if isinstance(tree, tuple) else items
    return tree.contiguous() if isinstance(tree, torch.Tensor) else tree

