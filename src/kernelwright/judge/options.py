"""How to judge: the options of one verdict (no torch here: the command line reads them before
torch's import, to start a verdict's workers while it imports; judge.pairs.prespawn)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kernelwright import constants as C
from kernelwright.sandbox import limits
from kernelwright.sandbox.confine import ENV_CONFINE

__all__ = ["VerifyOptions"]


@dataclass(frozen=True)
class VerifyOptions:
    """How to judge. Defaults are the strict ones; tests may skip the slow baselines."""

    device: str | None = None  # None: cuda when available, else cpu
    trials: int = C.MIN_TRIALS
    compile_baseline: bool = True
    timing: bool = True
    strict_task: bool = False
    threads: int | None = None
    build_cache: bool = True
    memory_bytes: int = field(default_factory=limits.default_worker_memory)
    import_timeout_s: float = C.IMPORT_TIMEOUT_S
    call_timeout_s: float = C.CALL_TIMEOUT_S
    # The candidate's worker confined (no network, minimal file view, no signals out); off
    # by KERNELWRIGHT_CONFINE=0 in the environment. `require_confinement`: refuse to judge
    # where the kernel cannot enforce all of it.
    confine: bool = field(default_factory=lambda: os.environ.get(ENV_CONFINE, "1") != "0")
    require_confinement: bool = False
    # Rounds added while a speedup's interval is still wider than SPEEDUP_INTERVAL_MAX_WIDTH (up
    # to TIMING_MAX_ROUNDS); off in a search, whose verdicts rank kernels and whose claim is
    # the crowned kernel's fresh re-judgement, which adds them.
    extra_rounds: bool = True
    # Bytes of references (native and float64 outputs) the reference worker may hold at once;
    # None: a share of the memory they live in (constants.REFERENCE_HELD_SHARE).
    reference_memory_bytes: int | None = None
    # The candidate's worker makes each input set from its seed itself rather than receiving it
    # through the judge (checked against the reference's fingerprint); None: on CUDA, where
    # KernelBench's level-1 sets are gigabytes and the GPU makes them in milliseconds.
    local_inputs: bool | None = None
    # CUDA: a checked output goes from the candidate's worker to the reference worker in GPU
    # memory (worker/cuda_ipc.py) rather than as bytes through the judge; a failed hand-over
    # falls back to bytes for the rest of the verdict, with a finding.
    output_ipc: bool = True
    # The speedup vs torch.compile from a kept compile/eager ratio of the same task, device and
    # torch (judge/baselines.py) rather than a compile in every verdict; `bench` turns it on.
    compile_ratio_cache: bool = False
    # The task's own Model timed in the candidate's process beside eager in the reference's
    # (judge/phases/timed.py): how differently this pair of processes runs the same code widens
    # the intervals; it can never narrow them.
    process_control: bool = True
