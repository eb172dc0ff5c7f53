"""What one judgement holds, and the requests every phase makes (trusted side)."""

from __future__ import annotations

import random
import secrets
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from kernelwright import constants as C
from kernelwright import protocol as P
from kernelwright.judge import _support as S
from kernelwright import compare as cmp
from kernelwright.judge import roofline, timing
from kernelwright.judge._support import InputSet, trace
from kernelwright.judge.pairs import PairPool
from kernelwright.judge.result import Check, Reason, Timing, TrialResult
from kernelwright.sandbox.codec import describe
from kernelwright.sandbox.process import Worker
from kernelwright.task.loader import CandidateSource, TaskSource
from kernelwright.task.metadata import TaskError

if TYPE_CHECKING:
    from kernelwright.judge.verify import VerifyOptions



class Rejected(Exception):
    """Stop judging: the candidate failed a check."""

    def __init__(self, check: Check, detail: str) -> None:
        super().__init__(detail)
        self.reason = Reason(check, detail)


class JudgementState:
    """The state every phase reads and writes; the phases are mixins over it."""

    build_dir: Path | None
    ceilings: roofline.CeilingCache
    ratios: roofline.JsonCache  # torch.compile's kept ratios to eager (judge/baselines.py)
    cal: timing.Calibration

    def __init__(self, task: TaskSource, cand: CandidateSource, opts: VerifyOptions, device: str,
                 pool: PairPool | None = None) -> None:
        self.task, self.cand, self.opts, self.device = task, cand, opts, device
        self.pool = pool
        self.cuda = device == "cuda"
        self.meta = task.meta
        self.findings: list[str] = []
        self.trials: list[TrialResult] = []
        self.phases: dict[str, float] = {}
        self.env: dict[str, Any] = {}
        self.sets: dict[int, InputSet] = {}
        self.rng = random.Random(secrets.randbits(64))
        self.timing: Timing | None = None
        self.candidate_ran = False
        self.prestaged: set[int] = set()  # sets the candidate got before the relay
        # The candidate's worker makes input sets itself (VerifyOptions.local_inputs); off for the
        # rest of the verdict once one set came out different from the reference's.
        self.local_inputs = opts.local_inputs if opts.local_inputs is not None else self.cuda
        self.profiled_kernel_ms: float | None = None  # GPU busy time of one profiled call (union of kernel intervals)
        self.profiled_kernels = 0  # kernels the candidate's profiled call launched
        self.float64 = True  # float64 references wanted; False once two sets' would not fit (ReferencePhase)
        self.hold_bytes = 0  # what the reference worker can give two sets' references (0: not yet known)
        self.gpu_room = 0  # CUDA: the GPU memory the reference worker may use in all (0: not known)
        self._one_timing_set_said = False  # the finding that a large task gets one timing set, once
        # CUDA: sets too large for the candidate's worker to copy before a checked call; trial sets
        # are then run in place, their last use (ReferencePhase._least_timing_sets decides)
        self.crowded = False
        self.compile_ratio: dict[str, float] | None = None  # a kept compile/eager ratio this verdict uses
        self.device_free: int | None = None  # CUDA: GPU bytes free once the reference's model loaded
        self.task_pending: list[float] = []  # CUDA: what the task's own calls left pending (ms), per set made
        self.task_probe: list[float] = []  # CUDA: how late the device probe behind them ran (ms), per set made
        # One request at a time on the reference's channel: a set is fetched ahead on a thread
        # while the main thread has outputs compared there.
        self.ref_lock = threading.Lock()
        # CUDA: checked outputs are handed to the reference worker in GPU memory (worker/cuda_ipc.py);
        # off for the rest of the verdict, with a finding, once a hand-over fails.
        self.ipc = self.cuda and opts.output_ipc
        self.cand_worker: Worker | None = None  # set once started: its message cap follows the outputs
        self.frame_cap = C.CANDIDATE_FRAME_BASE_BYTES
        self.inline_checks = 0  # timed outputs checked as they came, too large to hold (phases/timed.py)
        self.control_ready = False  # the task's Model was built in the candidate's process (the control)
        self.control_series: Any = None  # its timing series (timing.Series), when it was timed
        self.control_failed = False  # asked for, and the candidate's process could not build it
        self.quiet_period: ExitStack | None = None  # open while background work must stand still
        self.ref_environment: dict[str, Any] = {}  # the reference worker's setup reply's environment

    def _allow_outputs(self, out_bytes: int) -> None:
        """Let the candidate's worker send outputs of `out_bytes` (twice over), never more."""
        self.frame_cap = max(self.frame_cap, C.CANDIDATE_FRAME_BASE_BYTES + 2 * out_bytes)
        if self.cand_worker is not None:
            self.cand_worker.limit_messages(self.frame_cap)

    def _untimed_from_now(self) -> None:
        """Nothing of this verdict is timed or measured any more: the pool's next pair may set up.

        Its setup (CUDA init, the launch hold's calibration on every SM) would slow whatever ran
        beside it, so this comes after the last timed batch and the ceilings' measurement, never
        before; its imports may already be under way (PairPool.spawn_ahead).
        """
        if self.quiet_period is not None:
            self.quiet_period.close()  # background builds may run again
            self.quiet_period = None
        if self.pool is not None:
            from kernelwright.judge.phases.workers import pair_spec

            self.pool.refill(pair_spec(self.opts, self.device))

    # -- accounting ----------------------------------------------------------

    def _control_lost(self, why: str) -> None:
        """The process control did not run (phases/timed.py): the fallback widening, and why."""
        self.control_failed = True
        self.findings.append(
            "process control failed: the task's own Model did not run in the candidate's process, so the "
            f"speedup intervals are widened a further {C.PROCESS_FACTOR_FALLBACK:g}x each way: " + S.tail(why, 300))

    def _phase(self, name: str, t0: float) -> None:
        dt = time.perf_counter() - t0
        self.phases[name] = self.phases.get(name, 0.0) + dt
        trace(f"{name} {dt:.2f} s")

    @contextmanager
    def _step(self, name: str) -> Iterator[None]:
        """Account a sub-step of a phase (reported as phases_s["timing.<name>"] and so on)."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._phase(name, t0)

    # -- requests every phase makes -------------------------------------------

    def _ref_request(self, ref: Worker, header: Mapping[str, Any], blobs: list[bytes] | None = None,
                     timeout: float | None = None) -> tuple[dict[str, Any], list[bytes]]:
        t0 = time.perf_counter()
        with self.ref_lock:
            reply, rblobs, _ = ref.request(header, blobs, timeout or self.opts.call_timeout_s)
        gpu = (f", set {header.get('set_id')}: {int(reply['resident']) / 2**30:.1f} GiB held on the GPU, peak "
               f"{int(reply.get('peak', 0)) / 2**30:.1f}" if isinstance(reply.get("resident"), int) else "")
        trace(f"reference {header['op']}: {time.perf_counter() - t0:.2f} s, "
              f"{sum(len(b) for b in rblobs) / 2**20:.0f} MiB back{gpu}")
        if reply.get("status") != P.Status.OK:
            raise TaskError(f"the task failed in its reference run ({header['op']}): {reply.get('error')}")
        return reply, rblobs

    def _stage(self, cand: Worker, s: InputSet, reply: dict[str, Any], blobs: list[bytes]) -> None:
        reply, _, _ = cand.request(P.StageRequest(op=P.Op.STAGE, set_id=s.set_id, inputs=reply["inputs"]), blobs,
                                   timeout=self.opts.call_timeout_s)
        if reply.get("status") != P.Status.OK:
            raise Rejected(Check.CRASH, "staging inputs failed: " + S.tail(reply.get("error", ""), 400))

    def _candidate_makes(self, cand: Worker, s: InputSet) -> bool:
        """Have the candidate's worker make and stage set `s` from its seed; True when it did and
        its fingerprint is the reference's. False (local inputs off from now on, with a finding):
        the set must be relayed. Inputs are data, not secrets; a candidate that makes them
        wrongly or lies about them only has its own outputs checked against the true ones."""
        if not self.local_inputs or s.fingerprint is None:
            return False
        reply, _, _ = cand.request(P.MakeInputsRequest(
            op=P.Op.MAKE_INPUTS, set_id=s.set_id, seed=s.seed, distribution=s.distribution,
            variant=s.shape_variant, on_device=s.on_device, task_source=self.task.source,
            task_path=self.task.path.name), timeout=self.opts.call_timeout_s)  # no directory of the user's
        if reply.get("status") == P.Status.OK and reply.get("fingerprint") == s.fingerprint:
            return True
        self.local_inputs = False
        why = ("its inputs differ" if reply.get("status") == P.Status.OK
               else "it failed: " + S.tail(str(reply.get("error", "")), 200))
        self.findings.append(f"the task's get_inputs, run in the candidate's worker from the reference's seed, "
                             f"did not make the same input set ({why}); every set is relayed instead")
        return False

    def _make_deferred(self, ref: Worker, s: InputSet) -> None:
        """Make a deferred set's inputs and references when it is used (ReferencePhase does)."""
        raise NotImplementedError

    def _integrity(self, violations: Any, when: str) -> None:
        if violations:
            raise Rejected(Check.TAMPER, f"{when}: " + "; ".join(str(v) for v in violations[:6]))

    def _compare(self, ref: Worker, out_spec: Any, blobs: list[bytes], s: InputSet, plain: bool,
                 slack: list[float] | None = None, seed: int | None = None, index: int = 0,
                 sample: tuple[int, Any] | None = None, ipc: list[Any] | None = None) -> cmp.Comparison:
        """Have the reference worker compare a candidate's output (relayed as it came) with set
        `s`'s references, or with a reference of the set as perturbed for one timed call (`seed`).

        The judge sets the tolerance (the task's, times `slack` per output) and reads what the
        comparison found; a trial set's references are dropped there once compared. `sample`:
        the output is a sample of its elements (the positions' seed, the whole output's shapes).
        `ipc`: the output was handed over in GPU memory (worker/cuda_ipc.py), `blobs` empty; where
        the reference worker cannot read it, IpcFailed says why (nothing was compared).
        """
        if not plain:
            return _failed(Check.OUTPUT_TYPE, "the output must be exactly torch.Tensor "
                           f"(a tensor, or a tuple of them), got {describe(out_spec)}")
        drop = seed is None and s.variant != "timing"  # a trial set's references: used once
        req = P.CompareRequest(op=P.Op.COMPARE, set_id=s.set_id, out=out_spec, rtol=self.meta.rtol,
                               atol=self.meta.atol, slack=s.slack if slack is None else slack, device=self.device,
                               drop=drop)
        if seed is not None:
            req.update(seed=seed, index=index)
        if sample is not None:
            req.update(sample_seed=sample[0], sample_elements=C.TIMED_SAMPLE_ELEMENTS, shapes=sample[1])
        if ipc is not None:
            req["ipc"] = ipc
        reply, _ = self._ref_request(ref, req, blobs)
        if reply.get("ipc_failed"):
            raise IpcFailed(str(reply["ipc_failed"]))
        if drop:
            s.held = False
        try:
            check = None if reply.get("check") is None else Check(reply["check"])
            return cmp.Comparison(bool(reply["passed"]), float(reply["max_abs_error"]),
                                  float(reply["max_rel_error"]), float(reply["scale"]), float(reply["norm_error"]),
                                  check, str(reply.get("detail", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise TaskError(f"the reference worker's comparison reply is malformed: {exc}") from None

    def _warm_set(self) -> int:
        """The set used for warm-up, FLOP counting and profiling: the first default-shape trial."""
        return next(s.set_id for s in self.sets.values() if s.variant == "default")


class IpcFailed(Exception):
    """The reference worker could not read an output handed over in GPU memory."""


def _failed(check: Check, detail: str) -> cmp.Comparison:
    return cmp.Comparison(False, float("nan"), float("nan"), float("nan"), float("inf"), check, detail)
