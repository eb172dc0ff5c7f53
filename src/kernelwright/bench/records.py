"""One record per judged candidate, appended to `OUT/results.jsonl` as it comes.

The file is the bench's memory: a record's `key` is a digest of everything the verdict
depends on (task name and source, candidate source, device, the judge's settings), so a resumed
bench skips exactly what was judged already and judges again whatever changed. Each line is
written with one `write` and synced; a line cut short by a kill is dropped on the next start.
"""

from __future__ import annotations

from collections.abc import Iterable

import enum
import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = "results.jsonl"


class Verdict(str, enum.Enum):
    """A bench record's verdict: the judge's three, and one for a task without a candidate."""

    __str__ = str.__str__
    __format__ = str.__format__

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    ERROR = "error"  # the task (or a file) is wrong, or does not fit the machine: no verdict on the candidate
    MISSING = "missing"  # no candidate for this task in --candidates



class ErrorCheck(str, enum.Enum):
    """Reasons the bench itself gives, where a record is not the judge's verdict on a candidate."""

    __str__ = str.__str__
    __format__ = str.__format__

    TASK = "task"  # the task or a file is wrong, or the task does not fit the machine
    INTERNAL = "internal"  # kernelwright itself failed: a bug to report, never the candidate's fault
    NO_KERNEL = "no_kernel"  # --optimize: the engineer found no kernel the judge accepted
    # A remote judging slot was lost (its worker or node died) on both tries: never the
    # candidate's fault; judged again when the bench is run again (executor/_ray.py).
    INFRASTRUCTURE = "infrastructure"


@dataclass(frozen=True)
class BenchRow:
    """One candidate's verdict within a bench (or a task's lack of any candidate)."""

    task: str  # the task's name in the suite, "level1/23_Softmax.py"
    candidate: str  # the candidate's path relative to --candidates ("" when missing)
    verdict: Verdict
    key: str  # digest of the task and candidate sources, device and judge settings
    device: str
    speedup_vs_eager: float | None = None  # the judge's point estimate (median ratio)
    speedup_vs_compile: float | None = None
    eager_interval: tuple[float, float] | None = None  # 95% interval of speedup_vs_eager
    compile_interval: tuple[float, float] | None = None
    candidate_ms: float | None = None  # per call, on the judge's own clock
    eager_ms: float | None = None
    compile_ms: float | None = None
    reasons: list[dict[str, str]] = field(default_factory=list)  # {"check", "detail"}, the judge's order
    seconds: float = 0.0  # wall time of this verdict
    phases_s: dict[str, float] = field(default_factory=dict)  # the verdict's own split of its time (phases_s)
    # The judge's findings: what it scaled down and why, a degenerate task, a noisy timing.
    findings: list[str] = field(default_factory=list)
    # CUDA: the most GPU work a checked trial left queued once the caller's stream was done (ms),
    # what the race check measures; a `race` rejection's own figure is in its reason.
    max_pending_ms: float | None = None
    # CUDA: the latest a checked trial's device-wide probe ran (ms; worker/hold.py), the race
    # check's device-side reading. None on the CPU or without a probe.
    max_probe_ms: float | None = None
    # CUDA: the intervals' further widening because a side's calls were host-bound (1.0: none).
    host_factor: float = 1.0
    # The process control's widening (the task's Model in the candidate's process against eager
    # in the reference's; judge/timing.process_factor); None where no control ran.
    process_factor: float | None = None
    run_id: str | None = None  # the store's run and candidate ids, where recorded
    candidate_id: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the judge accepted the candidate."""
        return self.verdict == Verdict.ACCEPTED

    def to_dict(self) -> dict[str, Any]:
        """A plain dict for the JSON line."""
        d = asdict(self)
        d["verdict"] = self.verdict.value
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BenchRow:
        """The record a JSON line holds (unknown fields from newer versions are ignored)."""
        known = {f: d[f] for f in cls.__dataclass_fields__ if f in d}
        known["verdict"] = Verdict(known["verdict"])
        for f in ("eager_interval", "compile_interval"):
            if known.get(f) is not None:
                known[f] = tuple(known[f])
        return cls(**known)


def verdict_key(task_name: str, task_source: str, candidate_source: str, device: str,
                settings: dict[str, Any]) -> str:
    """What a verdict depends on, as a digest (the resume key).

    The task's name is part of it: two tasks of a suite with the same source each get their
    own record under their own name.
    """
    h = hashlib.sha256()
    for part in (task_name, task_source, candidate_source, device, json.dumps(settings, sort_keys=True)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def load(out: Path) -> list[BenchRow]:
    """The records in `out/results.jsonl`, dropping a last line a kill cut short (and repairing the file)."""
    path = out / RESULTS
    if not path.exists():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
        with open(path, "r+b") as f:
            f.truncate(len(data))
    rows = []
    for line in data.decode(errors="replace").splitlines():
        if line.strip():
            try:
                rows.append(BenchRow.from_dict(json.loads(line)))
            except (ValueError, TypeError):
                continue  # a line another version wrote, or damaged by hand: judged again
    return rows


def append(out: Path, row: BenchRow) -> None:
    """Add one record durably (one write, then fsync)."""
    line = (json.dumps(row.to_dict(), allow_nan=False, sort_keys=True) + "\n").encode()
    fd = os.open(out / RESULTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


DEGENERATE_PREFIX = "degenerate task: "  # how the judge words each degenerate-task finding


def degenerate(findings: Iterable[str]) -> list[str]:
    """What the judge found degenerate about a task in these findings, each once, in order."""
    return list(dict.fromkeys(f.removeprefix(DEGENERATE_PREFIX) for f in findings if f.startswith(DEGENERATE_PREFIX)))
