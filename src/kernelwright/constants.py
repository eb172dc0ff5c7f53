"""Every tunable number of the judge, in one place.

Tolerances, limits and exit codes live here so that a reader can audit what
"correct" and "fast" mean without hunting through the code.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ExitCode(enum.IntEnum):
    """Exit codes of `kernelwright verify` (a contract other tools script against)."""

    ACCEPTED = 0
    REJECTED = 1
    BAD_INPUT = 2


class WorkerExit(enum.IntEnum):
    """Exit codes a sandbox worker uses for its own, trusted-before-import failures."""

    OK = 0
    PROTOCOL_ERROR = 3
    HANDSHAKE_FAILED = 4


@dataclass(frozen=True)
class Tolerance:
    """Allowed error against a float64 reference.

    An element passes when |out - ref| <= atol * scale + rtol * |ref|, where
    `scale` is the RMS of the reference output: an absolute tolerance measured in
    units of the output's own size, so a near-constant or tiny output cannot be
    matched by zeros (exploit class 3).
    """

    rtol: float
    atol: float


# By output dtype. fp32 is tight enough that fp16/bf16/TF32 work done for an fp32
# task fails (exploit class 12: TF32 lands near 3e-4, bf16 near 4e-3).
TOLERANCES: dict[str, Tolerance] = {
    "float64": Tolerance(rtol=1e-7, atol=1e-7),
    "float32": Tolerance(rtol=1e-4, atol=1e-4),
    "float16": Tolerance(rtol=1e-2, atol=1e-2),
    "bfloat16": Tolerance(rtol=2e-2, atol=2e-2),
}
# Integer and bool outputs must match exactly.
EXACT = Tolerance(rtol=0.0, atol=0.0)
# The tolerance never drops below this many times the error that PyTorch's own
# native-precision eager run shows against float64: long reductions in fp32 are
# legitimately that far off, and a kernel must not be held to a stricter bar
# than the reference itself meets.
REFERENCE_ERROR_FACTOR = 4.0

# Input distributions applied to floating-point inputs; a task may rule some out.
DISTRIBUTIONS: tuple[str, ...] = ("task", "shifted", "scaled", "positive")
SHIFT = 3.0
SCALE = 16.0

MIN_TRIALS = 5

# Timing protocol.
TIMING_TARGET_BATCH_S = 0.02  # each trusted-clock batch lasts at least this long
# Past a few dozen calls a batch's clock bound gains nothing: the protocol's own per-call
# cost (L2 flush, perturbation, synchronize) dominates a fast kernel's batch anyway.
TIMING_MAX_CALLS_PER_BATCH = 64
# Sides whose batch sizes are within this factor of each other are timed in batches of the same
# size, the smallest of theirs (judge/timing.py `align_calls`).
CALLS_ALIGN_RATIO = 2.0
TIMING_BATCHES = 12  # rounds: each round times one batch of every side, in a random order
# On the CPU, when every side's calls are up to this long, each timed batch is run twice back to
# back, the first discarded (judge/timing.py `interleave`). A batch that follows a pause of its process (the
# other side's batch, a check) ran slower: on the 2-core machine the row-sum example's identity
# candidate read 0.36-0.43 ms a call in batches that followed one of the same process and
# 0.46-0.80 in every batch that followed a switch, and eager, alone in its process, nearly always
# followed one (1.12x for an identical candidate). `python benchmarks/switch_warmth.py` on that
# machine: batches after a switch 1.186x as long as after one of their own with no warm-up,
# 1.087x, 1.033x and 1.029x after a discarded 8, 24 and 64 calls.
# Longer calls are not warmed: a second call would double their timing.
CPU_PREWARM_MAX_CALL_MS = 5.0
# When the speedup's interval is wider than SPEEDUP_INTERVAL_MAX_WIDTH (high / low), rounds
# are added this many at a time, up to TIMING_MAX_ROUNDS or TIMING_EXTRA_S of extra timing;
# an interval still wide then is reported as such.
TIMING_EXTRA_ROUNDS = 6
TIMING_MAX_ROUNDS = 48
TIMING_EXTRA_S = 20.0
SPEEDUP_CONFIDENCE = 0.95
# The rounds of one verdict show the noise within its pair of worker processes, not between
# pairs: a process keeps its buffers, heap and cache state for the whole verdict. On the 2-core
# CPU machine the task's own code read 0.93-1.19x against itself over 16 fresh pairs
# (examples/layernorm, one thread each), each time with an interval a few percent wide. So the
# reported interval is widened by this factor each way (low / f, high * f). On the GPU the
# figure rests on the H200's agreement between kernelwright and do_bench, each in its own
# process (within 0.6% from 6.9 us to 2.7 ms, docs/gpu-validation.md section 14); fresh pairs
# there were not compared.
BETWEEN_PROCESS_SPREAD = {"cpu": 1.15, "cuda": 1.03}
# A CUDA call the device spends mostly idle, waiting for the host to launch its next kernel, is
# timed at the host's launch rate, and that moved far more between processes: on the H200,
# KernelBench's level-3 MobileNetV2 (1.76 ms of kernels a call) took 2.97-7.31 ms a call across
# nine fresh processes (benchmarks/process_spread.py, docs/gpu-validation.md section 24), and
# identity candidates of host-bound level-3 tasks read 0.58x-2.24x against themselves. Pinning
# both sides to one core did not help. So a verdict's intervals are further widened each way by
# 1 + (HOST_BOUND_SPREAD - 1) * (s - HOST_IDLE_FREE) / (1 - HOST_IDLE_FREE), where s is the larger
# share of a call that either side's device sat idle (beyond HOST_KERNEL_GAP_MS a kernel), from
# the judge's profile of one call; a share up to HOST_IDLE_FREE widens nothing.
HOST_BOUND_SPREAD = 2.5
HOST_IDLE_FREE = 0.1  # idle this small is the events' and profile's own slack in any call
HOST_KERNEL_GAP_MS = 0.004  # the device's own gap between back-to-back kernels, not the host's
HOST_FACTOR_NOTED = 1.05  # a widening from host-bound calls at least this large is a finding
# The process control: the task's Model is timed in the candidate's process too, and the 95%
# interval of its speedup over eager in the reference's (the same code in the two processes of
# this verdict) widens the verdict's intervals by max(high, 1 / low) each way. On the 2-core
# CPU machine the elementwise example's own Model read 0.97-1.57x against itself over six
# `verify` runs, three of them with the interval wholly above 1.05 (docs/judge.md); on the H200
# KernelBench's level3/40 GRU read 0.82x (0.73-0.94) against itself. A candidate's process can
# move its control only away from the eager figure, which widens its own intervals, or back
# towards it, which leaves them as BETWEEN_PROCESS_SPREAD alone makes them.
PROCESS_FACTOR_NOTED = 1.05  # a widening from the control at least this large is a finding
# The widening when the control, built before the candidate's code ran, then failed in the timing:
# the task's own code ran in the reference's worker, so what stopped it is the candidate's doing.
# As wide as the largest control seen on the CPU (1.57), so that breaking the control never
# narrows a candidate's intervals.
PROCESS_FACTOR_FALLBACK = 1.6
CONTROL_MAX_STATE_BYTES = 4 << 30  # a model with more weights than this is not built twice
CONTROL_MAX_SET_BYTES = 2 << 30  # nor timed twice when a call's inputs and outputs take more
SPEEDUP_INTERVAL_MAX_WIDTH = 1.08
# On the GPU, baseline batches timed again after the candidate's process is gone: while it lived
# (stopped between its own batches) GPU work it left queued could only have slowed the baselines.
POST_EXIT_BATCHES = 4
POST_EXIT_MARGIN = 0.9
TIMING_WARMUP_CALLS = 3
# Rotated input sets, distinct from the correctness sets. Every timed call's inputs are
# perturbed anyway (nothing can be cached across calls); the sets feed the fresh-versus-seen
# memoization check and keep a call's inputs out of the cache the last one left.
TIMING_INPUT_SETS = 6
TIMING_INPUT_BYTES_CAP = 1 << 30  # rotate fewer sets when inputs are large
# The judge compares outputs this many elements at a time, in float64 buffers reused from one
# stretch to the next (about 100 MiB whatever the output's size: a 6 GB output compared whole
# needed ~5x its float64 size at once, and buffers made afresh per stretch cost more in page
# faults than the arithmetic).
COMPARE_CHUNK_ELEMENTS = 1 << 22
CALIBRATION_REPEATS = 7
# A reported time this far below the judge's own clock is a patched timer.
TIMER_AGREEMENT_RATIO = 0.25
TIMER_AGREEMENT_SLACK_MS = 0.002
# Calls on inputs seen before this much faster than on fresh ones: memoization.
MEMO_RATIO = 0.5
MEMO_CONSISTENCY = 0.85  # share of timing sets that must show it
MEMO_MIN_GAP_MS = 0.005
# On the CPU the candidate's worker fills freed blocks of its recent outputs' sizes with NaN
# before each checked call; past this many bytes only the last call's (twice), so a large
# task's honest candidate is not killed for memory the poison itself took.
POISON_ALL_RECENT_BYTES = 256 << 20
SINGLE_CALL_CHECK_RATE = 0.125  # share of single-call timings whose output is checked
# A timed output is compared with the native-precision reference of its perturbed inputs (no
# float64 run: the trials have settled precision), so its tolerance factor is the trial's slack
# times this: the native reference's own error may add to the candidate's.
TIMED_OUTPUT_SLACK = 2.0
# Timed outputs the judge holds to check once the timing is over; past this, each is checked as
# it arrives, between batches (13 rounds of a 1 GB output would otherwise be 13 GB held).
TIMED_OUTPUTS_HELD_BYTES = 1 << 30
# A timed output with a tensor of more elements than this is fetched as this many of its elements
# per tensor, at positions the judge draws after the batch (a gigabyte a check otherwise crossed
# two pipes 13 times a verdict on KernelBench's level 2). Skipping work to gain time makes a share
# of the elements wrong, and a million positions find a share of 1e-5 with probability 1 - e^-10;
# the trials compare every element.
TIMED_SAMPLE_ELEMENTS = 1 << 20
# ...but only when sampling saves something: an output of at most this many times that many
# elements is fetched and compared whole. Drawing a million random positions and gathering them
# on both sides, and the reference's RMS for the sample's tolerance, cost more than moving the
# whole of a 1.5M-element output (on the 2-core machine 0.4 s of a 4 s verdict of the example).
TIMED_SAMPLE_MIN_RATIO = 4
# A worker gives its heap's freed pages back between requests once they reach this much
# (worker.harness.release_free_memory); below it they stay resident for the next request.
RELEASE_FREE_MIN_BYTES = 256 << 20
L2_FLUSH_BYTES = 256 << 20
# On CUDA each timed call's stream is held by a spin of this length, launched just before the
# call's start event, so the host's launch latency overlaps it and the events time GPU work.
# A host that takes longer to launch the call puts the rest of its time into the call's events:
# at 0.1 ms, five verdicts of the elementwise NVRTC example (11 us of kernel, its host launch
# in Python) on the H200 read 0.29-0.83x with batch spreads of 21-122%; at 0.3 ms, in the same
# call, 1.99x and 2.01x, spread 0.2% (gpu-validation.md section 29).
LAUNCH_HOLD_MS = 0.3
# Race check on each correctness call: GPU work still queued this long after the caller's
# stream finished, or an output that changes within RACE_SETTLE_S of return, is a race.
# A device-wide sync of an idle H200 takes well under 0.01 ms.
RACE_PENDING_MS = 0.05
# A checked call over RACE_PENDING_MS is run this many times more on the same inputs, and the
# median of all decides: one host-timed sync is noisy, an unjoined stream behind the hold is not.
RACE_CONFIRM_CALLS = 2
# Timed calls are a race when the median of every one's pending time so far passes the bar,
# read once there are this many (judge/timing.py): never on one call's reading alone.
RACE_MIN_TIMED_CALLS = 3
# The bar is RACE_PENDING_MS above what the task's own calls leave pending (judge/_support.py,
# `RaceBars`); a finding says so when that part is over this.
RACE_TASK_FINDING_MS = 0.01
RACE_SETTLE_S = 0.005
# The device-side race reading (worker/hold.py, `DeviceHold.probe_ms`): the launch hold enqueued
# again on the caller's stream once the call's output is copied, every thread slot of the device
# asked for. Work of another stream still running then keeps some of its blocks waiting, and the
# hold ends late by about as long: device time, none of the host sync's noise. A call is a race
# when that delay passes the task's own reading by RACE_PROBE_MS.
RACE_PROBE_MS = 0.015
# A checked (untimed) call's hold: long enough that the host has launched the call, copied its
# output and queued the race probe before the caller's stream can finish (worker/hold.py).
CHECKED_HOLD_MS = 1.0
# The queued clock bound (judge/timing.py, Harness.time_queued): CUDA calls shorter than
# QUEUED_BOUND_MAX_MS are bounded by batches launched back to back behind one hold of
# QUEUED_HOLD_MS, during which the host enqueues them all (about QUEUED_HOLD_FILL of it, at the
# host time a call last took), so the device runs them without a gap and the batch's wall time
# less the calibrated overhead is their device time. A per-call fenced batch pays a sync, the
# hold, a probe and a copy a call: on the H200 its bound read 0.18 ms for an 11 us kernel.
# The hold is 20 ms because the noise deduction is shared by the batch's calls: on the H100 a
# 5 ms hold fit 16-22 calls of an NVRTC candidate (0.15 ms of host time each), and three times
# 0.25 ms of noise ate its 11 us kernel whole (bound 0.0).
# QUEUED_BOUND_MAX_MS 0: off. On the H200 (section 29) the queued no-op's per-batch overhead came out 20.9-31.6 ms
# behind a 20 ms hold in eight verdicts (its noise 0.4-8.2 ms), so a candidate's batches were
# bounded by how that one calibration fell: 0.0 in all eight traced verdicts, and 0.35 ms a
# call, 25x the 14 us the NVRTC example takes, in one test run, which rejected it as `timer`.
# On the H100 (sections 30, 31), with the plans made in one copy and one gather a tensor and no
# flush between queued calls, the calibration still scattered (noise 0.5-6.6 ms) and the task's
# own Model was rejected as `timer` against itself: its process's batches ran 15-30 ms longer
# than the reference worker's calibration allows. It stays off until that per-process cost is
# understood (the per-step host times in `steps_ms`, gpu_validate.sh s33).
QUEUED_BOUND_MAX_MS = 0.0
QUEUED_HOLD_MS = 20.0
QUEUED_HOLD_FILL = 0.6
QUEUED_MIN_CALLS = 4
QUEUED_MAX_CALLS = 192  # far enough under the driver's queue of pending launches (about 1024)
# The queued bound deducts its noise once, not three times as a per-call batch's does: the series
# is held to the lower quartile of its batches' bounds, already about half the noise under
# their median, and three times the noise of a 192-call batch (0.3-0.6 ms) is 5-10 us a call.
QUEUED_NOISE_DEDUCTIONS = 1.0
QUEUED_FIRST_CALLS = 16  # a series' first queued batch, before any host time is known
# The host waits at most this long for every block of the launch hold to run on the device
# before it launches the call (worker/hold.py); past it, the call goes ahead and is counted.
HOLD_START_WAIT_S = 0.01
# Calls the probe's own length is calibrated over, on a busy stream (median).
RACE_PROBE_CALIBRATION_CALLS = 7
# Checked calls run on copies written into the buffers of the last copy of the same shapes
# (a result cache keyed by address then answers with a stale output); this many shapes' buffers
# are kept, a task's default shape and one variant, so a large task keeps few extra input sets.
CHECKED_BUFFER_SETS = 2

# A charged time under this fraction of the GPU kernel time the judge's own profile saw for one
# call is work done outside the timed stream (the profiled call runs with a warm L2, so an honest
# timed call, L2 flushed first, is no faster than it).
PROFILE_BOUND_SAFETY = 0.8
# Roofline: a time under this fraction of the physical floor is impossible.
ROOFLINE_SAFETY = 0.5
# On the CPU, inputs smaller than this may live in cache and beat DRAM bandwidth.
CPU_ROOFLINE_MIN_BYTES = 64 << 20

# Findings on speed that do not reject.
LARGE_SPEEDUP = 10.0

# Degenerate-task check: output changes across input sets by less than this
# (relative to its scale) means it barely depends on its inputs.
DEGENERATE_RELATIVE_CHANGE = 1e-3

# Sandbox limits (defaults; the CLI can override some).
WORKER_START_TIMEOUT_S = 120.0
IMPORT_TIMEOUT_S = 600.0  # candidate import includes its compile
CALL_TIMEOUT_S = 120.0
# A worker may use this share of the machine's RAM (two run at once beside the judge), never
# less than the floor; `limits.default_worker_memory` applies it.
WORKER_MEMORY_SHARE = 0.45
WORKER_MEMORY_FLOOR_BYTES = 4 << 30
# The reference worker holds the references (native and float64 outputs) of at most this share
# of the memory they live in (the GPU's free memory on CUDA; else the memory available, within
# the worker's limit); trial sets beyond it get theirs made when they are used.
REFERENCE_HELD_SHARE = 0.25
# Two sets' references (the one compared, the one made ahead) must fit in this share of that
# memory, or the task does not fit the machine (a task error with the numbers).
REFERENCE_HELD_SHARE_MAX = 0.6
# The input sets the reference worker holds staged at once (made ahead, not yet relayed) stay
# within this share of its memory limit; later trial sets are made when used. The rest is for
# a run's own needs: a copy of the inputs, the outputs, the task's temporaries.
REFERENCE_STAGED_SHARE = 0.35
# The reference worker skips its float64 run where the run's estimated need would pass this
# share of the worker's memory limit (or of the GPU's free memory): a margin for what the
# estimate (twice the native run's own peak) misses, since a worker over its limit is killed.
FLOAT64_MEMORY_SHARE = 0.8
# A float64 run slower than this makes the first set the only one with a float64 reference.
FLOAT64_RUN_BUDGET_S = 2.0
WORKER_FILE_SIZE_BYTES = 2 << 30
WORKER_MAX_PROCESSES = 4096  # per user, threads included (not enforced for root)
MEMORY_POLL_S = 0.1
# How often a judge waiting on a worker checks that nobody else has stopped it.
STOPPED_POLL_S = 0.1
# Only a short tail of a crashed worker's stderr is shown in a reason.
STDERR_TAIL_CHARS = 2500
COMPILER_OUTPUT_CHARS = 2000

# The message channel refuses frames larger than this share of the machine's RAM (at least
# MAX_FRAME_BYTES): an input set or output is one frame, and KernelBench's level-1 tasks pass
# 8-13 GB ones (a fixed 8 GiB refused level1/4's 8.6 GB inputs on the H200).
MAX_FRAME_BYTES = 8 << 30
# Buffer of each pipe between the judge and a worker (capped by /proc/sys/fs/pipe-max-size).
PIPE_BYTES = 1 << 20
MAX_FRAME_RAM_SHARE = 0.5
# A candidate's worker may send at most this plus twice the largest reference output it could
# be asked to match (a wrong dtype of twice the size still arrives, to be rejected by name).
CANDIDATE_FRAME_BASE_BYTES = 64 << 20

# -- search and reporting -----------------------------------------------------
# A kernel is reported as a speedup only when its fresh re-judgement is at least this
# much faster than eager: within a few percent it is a tie, whatever the medians say.
SPEEDUP_REPORT_MIN = 1.05
# Proposals a search makes unless told otherwise (optimize, bench --optimize, the Python API),
# failed ones included.
DEFAULT_BUDGET = 10
FINALIST_REJUDGES = 3  # accepted kernels re-judged, fastest first, until one holds up
# Fresh verdicts (each a new pair of worker processes) a finalist whose claim is near the bar
# must hold up in: one pair's interval does not cover the spread between pairs, and widening it
# by BETWEEN_PROCESS_SPREAD covers what was seen, with no margin (see search/finalize.py).
REJUDGE_REPLICAS = 2

# -- executors: builds ahead of verdicts (issue 16) ------------------------------
# The local executor's build pool (several slots): this many build workers when set, else one
# per core the slots leave (at least one).
BUILD_JOBS_ENV = "KERNELWRIGHT_BUILD_JOBS"
# Set to 0: `kernelwright verify` starts its workers only when its verdict asks for them, after
# torch's import, rather than as it starts (judge.pairs.prespawn); benchmarks/verify_latency.py
# compares the two.
PRESPAWN_ENV = "KERNELWRIGHT_PRESPAWN"
# How often the driver looks for finished builds while its slots judge (to hand out built jobs).
BUILD_POLL_S = 0.1
# Jobs a slot holds at once when the driver builds ahead: the one it judges and the next, so
# the driver keeps the rest to hand out as their builds finish.
HELD_WITH_BUILDS = 2
