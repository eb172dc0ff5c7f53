"""The requests between the judge and its workers: ops, request and reply shapes, shared names.

Both sides import this module and nothing else of each other: the judge (`kernelwright.judge`,
trusted) builds requests and reads replies with it; the worker (`kernelwright.worker`, which
shares a process with the candidate) serves them with it. It plays the part of pygpubench's
`protocol.h`.

It lives at `kernelwright/protocol.py`, beside the two packages rather than inside either, so
that the layout states the rule without exceptions: `kernelwright.judge` imports nothing of
`kernelwright.worker`, and `kernelwright.worker` nothing of `kernelwright.judge`
(tests/worker/test_boundary.py holds both to it). It imports only the standard library: no
torch, nothing that runs, so it costs a worker nothing to load and a reader little to audit.

On the wire a request is one JSON header (plus raw byte blobs, `sandbox.codec`) sent over
the authenticated channel (`sandbox.channel`). The shapes are `TypedDict`s: a request built
with one is the plain dict that goes on the wire, so typing a call changes no byte of it.
Names below are `str` enums; JSON writes them as their values ("load", "ok"), and the worker
reads plain strings back (`Op(header["op"])`).

What a worker replies is evidence at best: the reference worker is trusted (it never runs
candidate code), the candidate worker is not after its `load`, so the judge checks every
candidate reply against what it holds itself.
"""

from __future__ import annotations

import enum
from typing import Any, TypedDict

# `python -m ENTRY_MODULE ROLE RFD WFD` starts a worker (sandbox.process spawns it).
ENTRY_MODULE = "kernelwright.worker.entry"
# The channel's HMAC key: this many bytes, written to the worker's read pipe before anything else.
SECRET_BYTES = 32
# Set in a reference worker's environment when its verdict will compile the torch.compile
# baseline: torch.compile's modules are imported while the worker starts (sandbox.process).
PRELOAD_COMPILER_ENV = "KERNELWRIGHT_PRELOAD_COMPILER"


class _Name(str, enum.Enum):
    """A wire name: equal to, hashed, printed and formatted as its string value."""

    __str__ = str.__str__
    __format__ = str.__format__


class Check(_Name):
    """Why a candidate was rejected: one stable name per defense.

    A `str` in every way that shows: equal to, hashed, printed and formatted as its value,
    and written as the value in JSON (`--json`, the store), so `r.check == "mismatch"` and
    f"{r.check}" mean what they always did. Defined here because the reference worker names
    what a comparison found (CompareReply) and the judge records it (`judge.result`).
    """

    TASK = "task"
    IMPORT = "import"
    COMPILE = "compile"
    SIGNATURE = "signature"
    CRASH = "crash"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    PROTOCOL = "protocol"
    OUTPUT_TYPE = "output_type"
    SHAPE = "shape"
    DTYPE = "dtype"
    DEVICE = "device"
    STRUCTURE = "structure"
    NONFINITE = "nonfinite"
    MISMATCH = "mismatch"
    INPUT_MUTATION = "input_mutation"
    RACE = "race"
    TIMED_OUTPUT = "timed_output"
    TAMPER = "tamper"
    TIMER = "timer"
    MEMOIZATION = "memoization"
    ROOFLINE = "roofline"


class Role(_Name):
    """Which side of the task a worker serves."""

    REFERENCE = "reference"  # the task's Model; trusted, never imports the candidate
    CANDIDATE = "candidate"  # ModelNew; compromised from its load on


class Op(_Name):
    """Every request kind the judge sends."""

    # Both roles (worker.common.RoleBase).
    SETUP = "setup"
    STAGE = "stage"
    TIME = "time"
    TOUCH = "touch"
    FETCH = "fetch"
    INTEGRITY = "integrity"
    LOAD = "load"  # each role its own: the task's Model, or the candidate's ModelNew
    PROFILE = "profile"  # the kernels of one call of the role's model
    # The candidate role (worker.candidate).
    BUILD = "build"
    RUN = "run"
    WARM = "warm"
    MAKE_INPUTS = "make_inputs"  # make a set from its seed here rather than receive it (MakeInputsRequest)
    # The reference role (worker.reference).
    MAKE_SET = "make_set"
    COMPARE = "compare"  # a candidate's output, relayed by the judge, against the references held here
    DEPENDENCE = "dependence"  # how much two sets' references differ (the degenerate-task check)
    FORGET = "forget"  # drop sets' references no check will use again (ForgetRequest)
    INPUTS = "inputs"
    COMPILE = "compile"
    FLOPS = "flops"
    CEILINGS = "ceilings"
    # Forget the verdict (its task, model, sets and references): the worker is kept for the next
    # verdict of the same task (judge.pairs, PairPool(keep_reference=True)).
    RESET = "reset"
    # The request loop itself (worker.entry): exit at once.
    EXIT = "exit"


class Status(_Name):
    """A reply's `status`."""

    OK = "ok"
    ERROR = "error"  # the handler raised: `error`, `traceback`, `error_type` say what
    IMPORT_FAILED = "import_failed"  # load or build: the candidate did not import (or compile)
    CONSTRUCT_FAILED = "construct_failed"  # load: ModelNew(*init_inputs) raised


class Target(_Name):
    """What a `time` request calls."""

    NOOP = "noop"  # the calibration target (both roles)
    MODEL = "model"  # the candidate's ModelNew
    EAGER = "eager"  # the task's Model
    COMPILED = "compiled"  # torch.compile of the task's Model (after a `compile` request)
    # The task's Model in the candidate's process, timed beside eager in the reference's: how
    # differently the two processes run the same code (it can only widen the intervals).
    CONTROL = "control"


Spec = Any  # a tree encoded by sandbox.codec; its tensors' bytes travel as blobs
ShapeVariant = dict[str, Any]  # module globals of the task overridden for one shape
Ceilings = dict[str, float]  # copy_bytes_per_s, matmul_flops_per_s_<dtype>


# -- requests ----------------------------------------------------------------


class BareRequest(TypedDict):
    """What every request has, its op; alone, a request with no arguments (fetch, integrity,
    ceilings, exit)."""

    op: Op


class SetupRequest(BareRequest):
    """Create the harness on a device with a thread count (before any untrusted code)."""

    device: str
    threads: int | None


class StageRequest(BareRequest):
    """Keep an input set under `set_id` (the candidate gets its sets this way, relayed)."""

    set_id: int
    inputs: Spec


class TimeRequest(BareRequest):
    """One timing batch: a call per entry of `set_ids`, perturbed under `seed` when given; with
    `queued` (CUDA), the calls launched back to back behind one hold (`Harness.time_queued`)."""

    target: Target
    set_ids: list[int]
    snap: bool
    seed: int | None


class QueuedTimeRequest(TimeRequest, total=False):
    """A TimeRequest whose calls run back to back behind one hold (CUDA; `Harness.time_queued`).
    A subclass rather than a NotRequired key: typing.NotRequired needs Python 3.11."""

    queued: bool


class TouchRequest(BareRequest):
    """Read every tensor of these sets (one cache state for all of them)."""

    set_ids: list[int]


class LoadReferenceRequest(BareRequest):
    """Import the task and build its Model under the weight seed."""

    source: str
    path: str
    weight_seed: int
    eval_mode: bool


class LoadCandidateRequest(BareRequest, total=False):
    """Import the candidate (its build), build ModelNew, copy the reference's weights."""

    cpp_prefix_pch: str | None  # a precompiled Inductor C++ prelude's include dir (sandbox.pch)
    source: str
    filename: str
    build_dir: str | None
    init_inputs: Spec
    state: Spec
    weight_seed: int
    eval_mode: bool
    # With these, the task's Model is built too (same seed and weights): the timing's control.
    control_source: str | None
    control_path: str


class BuildRequest(BareRequest, total=False):
    """Import the candidate only, so its extensions land in the build cache."""

    cpp_prefix_pch: str | None  # as LoadCandidateRequest's

    source: str
    filename: str


class SetRequest(BareRequest):
    """A request about one staged set: warm, profile, compile, flops."""

    set_id: int


class FetchRequest(BareRequest, total=False):
    """fetch: the kept output of the last timing batch; with `send` False nothing is sent (a
    baseline's: every side's process does the same work between batches, no bytes move). With
    `sample_seed`, each tensor of more than `sample_elements` elements is sent as that many of
    its elements, at positions drawn under the seed (worker.harness.sample_tree)."""

    send: bool
    sample_seed: int
    sample_elements: int


class DropSetRequest(BareRequest):
    """run (a correctness call) or inputs (send a staged set), then drop the set when asked."""

    set_id: int
    drop: bool


class RunRequest(DropSetRequest, total=False):
    """run: one correctness call; GPU work still pending past `race_bar_ms` after the caller's
    stream finished is a race (the judge's bar: RACE_PENDING_MS plus the task's own reading)."""

    race_bar_ms: float
    probe_bar_ms: float  # CUDA: the device probe's bar (judge._support.RaceBars); absent: not checked
    ipc: bool  # CUDA: hand the output over as CUDA IPC handles (worker.cuda_ipc), not as bytes
    in_place: bool  # with `drop`: run on the staged set itself, no copy (a set too large for two)


class DropOnlyRequest(DropSetRequest, total=False):
    """inputs with `send` False: the drop alone (the candidate made that set itself)."""

    send: bool


class MakeInputsRequest(BareRequest):
    """The candidate makes an input set from its seed, as the reference did, and stages it.

    Inputs are data, not secrets: what the candidate must not see is the reference's outputs.
    A set it makes wrongly only makes its own outputs wrong. The reply's fingerprint, which
    the judge compares with the reference's, catches a task whose get_inputs gives different
    inputs in two processes, so that an honest candidate is never judged on other inputs."""

    set_id: int
    seed: int
    distribution: str
    variant: ShapeVariant | None
    on_device: bool  # made under a torch.device context, as the reference made it (MakeSetReply)
    task_source: str
    task_path: str


class MakeSetRequest(BareRequest):
    """Make an input set from a secret seed; with `reference`, its native and float64 outputs,
    which stay in this worker (on the device they were made on) until a `compare` drops them.

    `float64` False: no float64 outputs. `hold_bytes` > 0: the memory this worker can give two
    sets' references; `memory_bytes` > 0: what this worker may use. Where two sets' native and
    float64 outputs would not fit the first, or the float64 run would not fit the second (or
    the GPU memory left of `room_bytes`), it is skipped (`ref64_skipped`, with the reason in `ref64_error`). `rtol`/`atol`
    are the task's overrides (None: the table's), for the reference's own error (`slack`) and,
    with `degenerate`, whether zeros would pass (`zeros_pass`).
    """

    set_id: int
    seed: int
    distribution: str
    variant: ShapeVariant | None
    reference: bool
    float64: bool
    hold_bytes: int
    memory_bytes: int
    room_bytes: int  # CUDA: the GPU memory this worker may use in all (0: not known); the rest is the candidate's
    fingerprint: bool  # the judge will have the candidate make this set too (MakeInputsRequest)
    rtol: float | None
    atol: float | None
    degenerate: bool


class CompareRequest(BareRequest, total=False):
    """Compare a candidate's output (`out` and the blobs, relayed untouched by the judge) with
    the references of `set_id`, under the tolerance the judge sets (`rtol`, `atol`, a factor per
    output in `slack`), on `device` (where the output must claim to be). With `seed`, the
    reference is made now, in native precision, on the set as perturbed for timed call `index`
    under that seed (a timed output); without, the set's own references are used and, with
    `drop`, released after."""

    set_id: int
    out: Spec
    rtol: float | None
    atol: float | None
    slack: list[float]
    device: str
    drop: bool
    seed: int
    index: int
    # A sampled timed output (FetchRequest): the positions' seed and count, and the whole
    # output's leaf shapes as the candidate's worker gave them.
    sample_seed: int
    sample_elements: int
    shapes: list[Any]
    # The output handed over in GPU memory (RunReply.ipc): `out` then has no blobs.
    ipc: list[Any]


class DependenceRequest(BareRequest):
    """The largest change between the references of two held sets, relative to their scale."""

    set_ids: list[int]


class ForgetRequest(BareRequest):
    """Drop these sets' references (their inputs stay staged): no check will compare against them."""

    set_ids: list[int]


# -- replies -----------------------------------------------------------------
# Every reply has a `status`; a failed one (Status.ERROR) has only ErrorReply's keys.


class EmptyReply(TypedDict, total=False):
    """stage, warm: nothing but the status (which the request loop fills in: Status.OK)."""

    status: Status


class ErrorReply(TypedDict):
    """What the request loop sends when a handler raised."""

    status: Status
    error: str
    traceback: str
    error_type: str


class SetupReply(EmptyReply, total=False):
    """The device as the worker sees it, and what hardening could not be applied."""

    environment: dict[str, Any]
    hardening: list[str]
    confinement: dict[str, str]  # candidate workers: sandbox.confine.Confinement, as a dict
    startup_s: dict[str, float]  # seconds by step of the worker's start (imports, CUDA, hold): a diagnostic


class TimeReply(EmptyReply, total=False):
    """Per-call times as the worker measured them; which call's output it kept (`snapped`)."""

    host_ms: list[float]
    event_ms: list[float]
    not_plain: int
    snapped: int
    pending_ms: list[float]  # CUDA, per call: GPU work still queued once its stream was done (ms)
    probe_ms: list[float]  # CUDA, per call: how late the device probe behind it ran (ms); [] without one
    enqueue_ms: float  # a queued batch: the host's time to enqueue all of its calls (ms)
    # A per-call batch: the worker's host time a call by step (prepare, hold, call, consume,
    # sync; ms). Traced for diagnosis only: no verdict reads it.
    steps_ms: dict[str, float]


class TouchReply(EmptyReply, total=False):
    """The sum of what was read."""

    sum: float


class FetchReply(EmptyReply, total=False):
    """The kept output of the last timing batch (sampled: `shapes` are the whole leaves')."""

    out: Spec
    shapes: list[Any]


class IntegrityReply(EmptyReply, total=False):
    """What changed in guarded functions and global flags."""

    violations: list[str]


class LoadReferenceReply(EmptyReply, total=False):
    """The task's init inputs and its Model's state, for the candidate's ModelNew."""

    init_inputs: Spec
    state: Spec
    device_free: int  # CUDA: bytes free on the GPU once the model is loaded (where references are held)


class LoadCandidateReply(EmptyReply, total=False):
    """How the import went; on success, what was copied and the integrity after import."""

    error: str
    compile_error: bool
    import_s: float
    construct_s: float
    copied: int
    state_keys: int
    integrity: list[str]
    control_error: str  # why the control (the task's Model) could not be built; "" when it was


class BuildReply(EmptyReply, total=False):
    """How the build-only import went."""

    error: str
    import_s: float


class RunReply(EmptyReply, total=False):
    """One correctness call: its output, whether every leaf is a plain tensor, input mutation."""

    out: Spec
    plain: bool
    types: Any
    mutated: bool
    race: str | None  # what was still running after return, when anything was
    pending_ms: float | None  # CUDA: GPU work still queued once the caller's stream was done (ms)
    probe_ms: float | None  # CUDA: how late a device-wide probe behind the call ran (ms; hold.py)
    ipc: list[Any]  # per tensor leaf: {"handle": hex, "offset": int}; `out` then has no blobs
    ipc_error: str  # asked for IPC, the output was sent as bytes instead: why
    # CUDA: what the worker's allocator held after the call, in bytes, as the worker says (a
    # figure for KERNELWRIGHT_TRACE only: no decision reads it)
    gpu_reserved: int


class ProfileRow(TypedDict):
    """One kernel (CUDA) or operator (CPU) of a profiled call."""

    kind: str  # "kernel" | "op"
    name: str
    self_us: float
    count: int


class ProfileReply(EmptyReply, total=False):
    """What one call ran."""

    rows: list[ProfileRow]


class MakeSetReply(EmptyReply, total=False):
    """An input set's size and, when asked, what the judge needs of the references kept here."""

    nbytes: int
    mutated: bool
    outputs: Spec  # the native outputs' structure, shapes and dtypes (sandbox.codec.encode_meta): no data
    out_bytes: int  # the native outputs' size
    held_bytes: int  # what this worker now holds for the set's references
    has_ref64: bool
    slack: list[float]  # per output: the native run's own error against float64, as a tolerance factor
    zeros_pass: bool  # an all-zero output would pass (asked with `degenerate`)
    ref64_error: str
    ref64_skipped: bool  # not made: it would not fit beside the native outputs (MakeSetRequest)
    fingerprint: list[Any]  # of the inputs made (worker.inputs.fingerprint)
    on_device: bool  # made on the GPU (a torch.device context), not on the CPU
    native_s: float  # seconds the task's own run took (device work included)
    ref64_s: float  # seconds the float64 run took
    pending_ms: float  # CUDA: GPU work the task's own call left pending after its stream finished (ms)
    probe_ms: float  # CUDA: how late the device probe behind the task's own call ran (ms)
    resident: int  # CUDA: GPU memory this worker holds once the set is made (its sets and references)
    peak: int  # CUDA: the most GPU memory it held while making the set (its runs' temporaries included)


class MakeInputsReply(EmptyReply, total=False):
    """What the candidate's worker made: its size and fingerprint (worker.inputs.fingerprint)."""

    nbytes: int
    fingerprint: list[Any]


class CompareReply(EmptyReply, total=False):
    """What a comparison found (`compare.Comparison`'s fields; `check` None when it passed)."""

    passed: bool
    max_abs_error: float
    max_rel_error: float
    scale: float
    norm_error: float
    check: Check | None
    detail: str
    ipc_failed: str  # the handed-over output could not be read (nothing compared): why


class DependenceReply(EmptyReply, total=False):
    """compare.relative_change of the two sets' references."""

    change: float


class InputsReply(EmptyReply, total=False):
    """A staged input set, for the judge to relay to the candidate."""

    inputs: Spec


class CompileReply(EmptyReply, total=False):
    """torch.compile and its warm-up took this long (not part of any timing)."""

    seconds: float


class FlopsReply(EmptyReply, total=False):
    """FLOPs of one call as torch's counter sees them."""

    flops: int
