"""Turn a verdict into the short feedback a proposer gets back.

Proposers see what the judge saw, trimmed: the first compiler errors, where outputs
differ and by how much, the timings against eager, and which kernels ran. They never
see seeds, inputs or reference values: feedback says where a kernel is wrong, not what
the right answer is.
"""

from __future__ import annotations

import re

from kernelwright.judge.result import JudgeResult

FEEDBACK_CHARS = 2400  # per verdict: enough for a few compiler errors, small enough for a prompt
_ERROR_LINE = re.compile(r"error|Error|undefined|expected|cannot|invalid|no member|not declared", re.ASCII)


def trim_compiler_output(text: str, limit: int = FEEDBACK_CHARS) -> str:
    """The lines that carry errors, first ones first, within `limit` characters."""
    lines = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    picked = [ln for ln in lines if _ERROR_LINE.search(ln)] or lines[-20:]
    out: list[str] = []
    size = 0
    for ln in picked:
        ln = ln if len(ln) <= 300 else ln[:297] + "..."
        if size + len(ln) > limit:
            out.append(f"... ({len(picked) - len(out)} more lines)")
            break
        out.append(ln)
        size += len(ln) + 1
    return "\n".join(out)


def _timing_lines(result: JudgeResult) -> list[str]:
    t = result.timing
    if t is None or t.candidate_ms is None:
        return []
    line = f"candidate {t.candidate_ms.median:.4f} ms per call (spread {t.candidate_ms.spread:.0%})"
    if t.eager_ms is not None:
        line += f"; eager PyTorch {t.eager_ms.median:.4f} ms"
    if t.speedup_vs_eager is not None:
        line += f"; speedup {t.speedup_vs_eager:.2f}x over eager"
    if t.compile_ms is not None and t.speedup_vs_compile is not None:
        line += f", {t.speedup_vs_compile:.2f}x over torch.compile"
    if t.floor_ms:
        line += f"; just moving this task's bytes takes about {t.floor_ms:.4f} ms here"
    return [line]


def _profile_lines(result: JudgeResult) -> list[str]:
    keep = ("custom kernels ran", "no custom kernel", "PyTorch/library kernels", "PyTorch compute ops",
            "no PyTorch compute op", "time by kernel", "ncu:")
    return [f for f in result.findings if f.startswith(keep)]


def feedback(result: JudgeResult) -> str:
    """A few lines for the next prompt: why it failed, or how fast it was and what ran."""
    lines: list[str] = []
    if not result.accepted:
        for reason in result.reasons[:2]:
            detail = reason.detail
            if reason.check in ("compile", "import"):
                detail = trim_compiler_output(detail)
            lines.append(f"REJECTED ({reason.check}): {detail}")
        failed = [t for t in result.correctness if not t.passed]
        if failed:
            t = failed[0]
            lines.append(f"first failing trial: inputs from the '{t.distribution}' distribution"
                         f" ({t.shape_variant} shapes), max abs error {t.max_abs_error:.3g},"
                         f" max error relative to the output's scale {t.max_rel_error:.3g}")
    else:
        lines.append("ACCEPTED: correct on every trial")
    lines += _timing_lines(result) + _profile_lines(result)
    text = "\n".join(lines)
    return text if len(text) <= 2 * FEEDBACK_CHARS else text[: 2 * FEEDBACK_CHARS] + "\n..."
