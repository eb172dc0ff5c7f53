"""Crown the best kernel of a run, only after a fresh judge agrees.

The search's verdicts came from one long-lived process; the kernel we report is
judged again by `kernelwright verify` in a new process, with the torch.compile
baseline, and reported only if it is accepted again and clearly faster than eager.
A cheat that slipped through once, a crash, or a tie is never reported as a speedup.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kernelwright import constants as C


@dataclass(frozen=True)
class BestKernel:
    """The reported kernel: where it was written and what the fresh judge measured."""

    candidate_id: str
    path: str
    proposer: str
    speedup_vs_eager: float
    speedup_vs_compile: float | None
    candidate_ms: float | None
    # 95% intervals of the speedups, when the fresh judge gave them.
    speedup_vs_eager_interval: tuple[float, float] | None = None
    speedup_vs_compile_interval: tuple[float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class Crowning:
    """The outcome: a best kernel, or none and why."""

    best: BestKernel | None
    note: str
    rejudged: list[dict[str, Any]]  # one entry per finalist: id, verdict, speedup, reason
    verdict: dict[str, Any] | None = None  # the crowned kernel's fresh verdict (`verify --json`)


def rejudge(task_path: Path, candidate_path: Path, device: str, compile_baseline: bool = True) -> dict[str, Any]:
    """Run `kernelwright verify --json` in a new process; its JSON object, or an error dict.

    With the compile baseline, the task's compile/eager ratio is kept (`--kept-compile-ratio`):
    a second re-judgement of a marginal claim, or of the next finalist, and the next run on
    this task take their speedup vs torch.compile from it rather than compiling again (about
    6 s on the 2-core CPU machine). The claim, the speedup vs eager, is timed every time.
    """
    cmd = [sys.executable, "-m", "kernelwright.cli.main", "verify", str(task_path), str(candidate_path),
           "--json", "--device", device]
    cmd.append("--kept-compile-ratio" if compile_baseline else "--no-compile-baseline")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=C.REJUDGE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"verdict": "error", "error": f"the re-judgement took over {C.REJUDGE_TIMEOUT_S:g} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    try:
        return dict(json.loads(lines[-1]))
    except (IndexError, ValueError):
        return {"verdict": "error", "error": "the re-judgement printed no verdict: " + proc.stderr[-500:]}


def crown(store: Any, run_id: str, task_path: Path, out_dir: Path, device: str,
          compile_baseline: bool = True) -> Crowning:
    """Re-judge the fastest accepted kernels; write the first that holds up to out_dir/best.py."""
    accepted = [c for c in store.candidates(run_id) if c.verdict == "accepted" and c.source]
    accepted.sort(key=lambda c: -(c.speedup_vs_eager or 0.0))
    by_source = {}
    for c in accepted:  # fastest first, so the first record of each source is kept
        by_source.setdefault(c.source, c)
    finalists = list(by_source.values())[:C.FINALIST_REJUDGES]
    log: list[dict[str, Any]] = []
    for cand in finalists:
        if (cand.speedup_vs_eager or 0.0) < C.SPEEDUP_REPORT_MIN:
            break  # sorted: nothing after this one was faster in the search either
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "best.py"
        # The source unchanged: the same bytes hit the same build cache entry.
        path.write_text(cand.source)
        res = rejudge(task_path, path, device, compile_baseline)
        for _ in range(C.REJUDGE_REPLICAS - 1):
            if res.get("verdict") != "accepted" or not marginal(res, device):
                break
            # Again in another fresh pair of processes: a claim near the bar counts only if it
            # holds in each.
            res = _worse(res, rejudge(task_path, path, device, compile_baseline))
        timing = res.get("timing") or {}
        speed = timing.get("speedup_vs_eager")
        entry = {"candidate_id": cand.id, "verdict": res.get("verdict"), "speedup_vs_eager": speed,
                 "reasons": res.get("reasons") or ([{"check": "error", "detail": res["error"]}]
                                                   if "error" in res else [])}
        log.append(entry)
        if res.get("verdict") == "accepted" and holds_up(speed, _interval(timing.get("speedup_vs_eager_interval"))):
            (out_dir / "best.json").write_text(json.dumps(
                {"run_id": run_id, "candidate_id": cand.id, "proposer": cand.proposer,
                 "lineage": [c.id for c in store.lineage(cand.id)], "verdict": res},
                indent=1, allow_nan=False))
            cm = (timing.get("candidate_ms") or {}).get("median")
            best = BestKernel(cand.id, str(path), cand.proposer, float(speed), timing.get("speedup_vs_compile"), cm,
                              _interval(timing.get("speedup_vs_eager_interval")),
                              _interval(timing.get("speedup_vs_compile_interval")))
            return Crowning(best, "re-judged in a fresh process", log, res)
        path.unlink(missing_ok=True)
    if not accepted:
        note = "no candidate was accepted"
    elif not log:
        note = f"no accepted candidate was at least {C.SPEEDUP_REPORT_MIN:g}x faster than eager"
    elif any(e["verdict"] == "accepted" for e in log):
        note = (f"no finalist's re-judged speedup was at least {C.SPEEDUP_REPORT_MIN:g}x faster than eager at the "
                "low end of its 95% interval")
    else:
        note = "no finalist held up when re-judged in a fresh process"
    return Crowning(None, note, log)


def marginal(res: dict[str, Any], device: str) -> bool:
    """True when a re-judgement claims a speedup, but by less than one more between-process spread.

    Its interval is already widened by that spread, which covers the readings seen between
    fresh pairs of processes; a claim whose low end clears the bar by less than the spread
    again is re-judged once more (the largest of those readings sat at the edge of it).
    """
    timing = res.get("timing") or {}
    iv = _interval(timing.get("speedup_vs_eager_interval"))
    if not holds_up(timing.get("speedup_vs_eager"), iv):
        return False
    spread = C.BETWEEN_PROCESS_SPREAD["cuda" if device.startswith("cuda") else "cpu"]
    low = iv[0] if iv is not None else float(timing.get("speedup_vs_eager") or 0.0)
    return low < C.SPEEDUP_REPORT_MIN * spread


def _worse(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Of two re-judgements of one kernel, the one that claims less, its interval widened to both.

    The 95% interval of one verdict covers the noise within that pair of processes, not
    between pairs: on the 2-core CPU machine the task's own code read 0.90-1.19x against
    itself from one fresh pair to the next (examples/layernorm), each time with a narrow
    interval. So the claim is the lower figure, its interval running from the lower low to
    the higher high.
    """
    if b.get("verdict") != "accepted":
        return b
    ta, tb = a.get("timing") or {}, b.get("timing") or {}
    worse = b if (tb.get("speedup_vs_eager") or 0.0) < (ta.get("speedup_vs_eager") or 0.0) else a
    out = dict(worse)
    timing = dict(worse.get("timing") or {})
    for key in ("speedup_vs_eager_interval", "speedup_vs_compile_interval"):
        ia, ib = _interval(ta.get(key)), _interval(tb.get(key))
        if ia and ib:
            timing[key] = [min(ia[0], ib[0]), max(ia[1], ib[1])]
    out["timing"] = timing
    out.setdefault("findings", [])
    out["findings"] = list(out["findings"]) + [
        f"re-judged {C.REJUDGE_REPLICAS} times in fresh processes: speedups vs eager "
        f"{ta.get('speedup_vs_eager') or 0:.2f}x and {tb.get('speedup_vs_eager') or 0:.2f}x; the lower is the claim"]
    return out


def holds_up(speed: float | None, interval: tuple[float, float] | None) -> bool:
    """A re-judged speedup counts as faster only when its interval's low end clears the bar.

    Without an interval (too few rounds for one) the figure itself must clear it.
    """
    if speed is None:
        return False
    return (interval[0] if interval is not None else speed) >= C.SPEEDUP_REPORT_MIN


def _interval(value: Any) -> tuple[float, float] | None:
    """A [low, high] pair from a verdict's JSON, or None when the judge gave none."""
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]), float(value[1])
    return None
