"""The result records of `verify` and `optimize`: frozen, JSON-ready, with `.module`."""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from kernelwright.api._errors import KernelRejectedError
from kernelwright.api._signature import InputSignature
from kernelwright.judge.result import Reason, Timing, TimingStats

# What `result.module` does on a call outside what was verified.
Fallback = Literal["error", "original"]

if TYPE_CHECKING:
    from kernelwright.api._origin import Origin
    from kernelwright.api._verified_module import VerifiedModule


@dataclass(frozen=True, kw_only=True)
class KernelResult:
    """What `kernelwright.verify` found: the verdict, why, how fast, and the kernel itself.

    `verdict` is "accepted" (correct and honest) or "rejected"; `reasons` say why a
    candidate was rejected (`check`, `detail`, as `kernelwright verify --json` prints them);
    `timing` holds the candidate's and the baselines' per-call milliseconds and the
    speedups (None when timing was off or the candidate failed before it); `signatures`
    are the argument lists the kernel was checked on. `details` is the judge's whole
    verdict as a dict (correctness per trial, environment, phases).
    """

    verdict: str
    reasons: tuple[Reason, ...] = ()
    timing: Timing | None = None
    findings: tuple[str, ...] = ()
    kernel_path: str | None = None
    kernel_source: str | None = None
    task_path: str = ""
    device: str = "cpu"
    signatures: tuple[InputSignature, ...] = ()
    fallback: Fallback = "error"
    details: dict[str, Any] = field(default_factory=dict, compare=False)
    _origin: Origin | None = field(default=None, repr=False, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def accepted(self) -> bool:
        """True when a kernel was accepted: `module` then runs it."""
        return self.verdict == "accepted" and self.kernel_source is not None

    @property
    def checks(self) -> list[str]:
        """The names of the checks that rejected the candidate."""
        return [r.check for r in self.reasons]

    @property
    def speedup_vs_eager(self) -> float | None:
        """Eager time over the kernel's time, on the judge's clock; None when not timed."""
        return None if self.timing is None else self.timing.speedup_vs_eager

    @property
    def speedup_vs_compile(self) -> float | None:
        """torch.compile's time over the kernel's; None when not timed or without that baseline."""
        return None if self.timing is None else self.timing.speedup_vs_compile

    @property
    def module(self) -> VerifiedModule:
        """The verified kernel as a drop-in nn.Module (built once, on first use).

        Runs the kernel on the verified signatures and, elsewhere, raises
        UnverifiedInputError or runs the original module, as `fallback` says. Raises
        KernelRejectedError when no kernel was accepted.
        """
        if "module" not in self._cache:
            self._cache["module"] = self.build_module()
        module: VerifiedModule = self._cache["module"]
        return module

    def build_module(self, fallback: Fallback | None = None) -> VerifiedModule:
        """A new drop-in module for the accepted kernel, with this (or the result's) fallback policy.

        Imports the candidate in this process (its code runs here), builds ModelNew as the
        judge did, and copies the original module's current weights into it by name.
        """
        if not self.accepted:
            why = "; ".join(f"{r.check}: {r.detail}" for r in self.reasons[:2]) or "no reason recorded"
            raise KernelRejectedError(
                f"no kernel was accepted ({why}), so there is nothing verified to run; result.module never "
                "returns unverified code. Look at result.reasons, fix the candidate, and verify again.")
        if self._origin is None or self.kernel_source is None:
            raise KernelRejectedError("this result was not made by kernelwright.verify or kernelwright.optimize "
                                      "in this process, so it has no original module to build from")
        from kernelwright.api._verified_module import VerifiedModule, build_kernel

        original, state, init, seed, eval_mode = self._origin.parts(self.device)
        kernel = build_kernel(self.kernel_source, self.kernel_path or "<kernel>", self.device, init, state,
                              seed, eval_mode)
        return VerifiedModule(kernel, original, self.signatures, fallback or self.fallback, self.kernel_path)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict (NaN and infinities become None)."""
        out: dict[str, Any] = _plain({
            "verdict": self.verdict,
            "reasons": [dataclasses.asdict(r) for r in self.reasons],
            "timing": dataclasses.asdict(self.timing) if self.timing else None,
            "speedup_vs_eager": self.speedup_vs_eager,
            "speedup_vs_compile": self.speedup_vs_compile,
            "findings": list(self.findings),
            "kernel": {"path": self.kernel_path, "source": self.kernel_source} if self.kernel_source else None,
            "task_path": self.task_path,
            "device": self.device,
            "signatures": [s.to_dict() for s in self.signatures],
            "fallback": self.fallback,
            "judge": self.details,
        })
        return out


@dataclass(frozen=True, kw_only=True)
class OptimizeResult(KernelResult):
    """What `kernelwright.optimize` found: the best kernel, re-judged in a fresh process, if any.

    `verdict` is "accepted" when a kernel was re-judged correct and at least 1.05x faster
    than eager (the same bar as `kernelwright optimize`), else "rejected" with the reason in
    `note` and `reasons`. `run_id` names the run in the store (`kernelwright show RUN`);
    `summary` is the dict `kernelwright optimize --json` prints.
    """

    run_id: str = ""
    note: str = ""
    summary: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict: the verify fields plus run_id, note and the search summary."""
        out = super().to_dict()
        out.update({"run_id": self.run_id, "note": self.note, "search": _plain(self.summary)})
        return out


def timing_from_dict(d: dict[str, Any] | None) -> Timing | None:
    """A Timing from the `timing` object of a `--json` verdict (unknown keys ignored)."""
    if not d:
        return None

    def stats(s: Any) -> TimingStats | None:
        if not isinstance(s, dict):
            return None
        known = {f.name for f in dataclasses.fields(TimingStats)}
        return TimingStats(**{k: v for k, v in s.items() if k in known})

    def interval(v: Any) -> tuple[float, float] | None:
        return (float(v[0]), float(v[1])) if isinstance(v, (list, tuple)) and len(v) == 2 else None

    return Timing(candidate_ms=stats(d.get("candidate_ms")), eager_ms=stats(d.get("eager_ms")),
                  compile_ms=stats(d.get("compile_ms")), speedup_vs_eager=d.get("speedup_vs_eager"),
                  speedup_vs_compile=d.get("speedup_vs_compile"), floor_ms=d.get("floor_ms"),
                  speedup_vs_eager_interval=interval(d.get("speedup_vs_eager_interval")),
                  speedup_vs_compile_interval=interval(d.get("speedup_vs_compile_interval")),
                  rounds=int(d.get("rounds") or 0), profile_busy_ms=d.get("profile_busy_ms"),
                  flop_floor_ms=d.get("flop_floor_ms"), host_factor=float(d.get("host_factor") or 1.0),
                  process_factor=d.get("process_factor"), control_ms=stats(d.get("control_ms")))


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
