"""Which kernels actually ran: custom work, or PyTorch's own ops (exploit class 14)."""

from __future__ import annotations

import re
from typing import Any

# Kernels that come with PyTorch and its libraries, not with a candidate.
_LIBRARY_KERNEL = re.compile(
    r"at::native|at::cuda|\bvoid at::|cutlass|cublas|cudnn|sm\d+_xmma|gemm|gemv|"
    r"ampere_|hopper_|volta_|turing_|nvjet|softmax_warp|cunn_|Memcpy|Memset|"
    r"c10::|splitKreduce|magma|cusparse|cufft|flash_fwd|fmha",
    re.IGNORECASE)

# CPU operators that only allocate, view or copy: the custom-kernel call shows up
# as none of these, so a forward made only of them did its work elsewhere.
_CPU_TRIVIAL = {
    "aten::empty", "aten::empty_like", "aten::empty_strided", "aten::zeros", "aten::zeros_like",
    "aten::ones", "aten::ones_like", "aten::full", "aten::full_like", "aten::view", "aten::reshape",
    "aten::contiguous", "aten::as_strided", "aten::detach", "aten::to", "aten::_to_copy",
    "aten::copy_", "aten::clone", "aten::t", "aten::transpose", "aten::permute", "aten::expand",
    "aten::unsqueeze", "aten::squeeze", "aten::select", "aten::slice", "aten::alias", "aten::lift_fresh",
    "aten::resize_", "aten::fill_", "aten::zero_", "aten::flatten", "aten::item",
    "aten::_local_scalar_dense", "aten::result_type", "aten::size", "aten::stride", "aten::numel",
}


def classify(rows: list[dict[str, Any]], cuda: bool) -> tuple[list[str], list[str]]:
    """Split a profile into (custom kernels, PyTorch compute ops or library kernels)."""
    custom: list[str] = []
    library: list[str] = []
    for row in rows:
        name = str(row.get("name", ""))
        if cuda and row.get("kind") == "kernel":
            (library if _LIBRARY_KERNEL.search(name) else custom).append(name)
        elif not cuda and row.get("kind") == "op":
            if name.startswith("aten::") and name not in _CPU_TRIVIAL:
                library.append(name)
            elif not name.startswith(("aten::", "profiler", "[", "cudaDevice", "cuda")):
                custom.append(name)
    return sorted(set(custom)), sorted(set(library))


def short(name: str) -> str:
    """A kernel name without its argument list, cut to a readable length."""
    base = name.split("(")[0].strip()
    base = base.removeprefix("void ")
    return base if len(base) <= 70 else base[:67] + "..."


def time_by_kernel(rows: list[dict[str, Any]], cuda: bool, top: int = 5) -> str:
    """"time by kernel: a 62% (12.3 us), b 30% ..." for one profiled call ('' when nothing timed).

    The numbers come from the candidate's process: feedback for proposers, never evidence.
    """
    kind = "kernel" if cuda else "op"
    timed = [r for r in rows if r.get("kind") == kind and float(r.get("self_us", 0)) > 0
             and (cuda or r.get("name") not in _CPU_TRIVIAL)]
    total = sum(float(r["self_us"]) for r in timed)
    if total <= 0:
        return ""
    timed.sort(key=lambda r: -float(r["self_us"]))
    parts = [f"{short(r['name'])} {100 * float(r['self_us']) / total:.0f}% ({float(r['self_us']):.1f} us)"
             for r in timed[:top]]
    return "time by kernel in one call: " + ", ".join(parts)


def findings(rows: list[dict[str, Any]], cuda: bool) -> list[str]:
    """Human findings about what ran."""
    timed = time_by_kernel(rows, cuda)
    return _ran(rows, cuda) + ([timed] if timed else [])


def _ran(rows: list[dict[str, Any]], cuda: bool) -> list[str]:
    custom, library = classify(rows, cuda)
    if cuda:
        if not custom:
            ran = ", ".join(sorted({short(n) for n in library})[:5]) or "no kernel at all"
            return [f"no custom kernel ran: every kernel came from PyTorch or its libraries ({ran})"]
        out = [f"custom kernels ran: {', '.join(sorted({short(n) for n in custom})[:6])}"]
        if library:
            out.append("PyTorch/library kernels also ran: "
                       + ", ".join(sorted({short(n) for n in library})[:5]))
        return out
    if library:
        return [f"PyTorch compute ops ran in the candidate's forward: {', '.join(library[:8])}"
                + ("" if custom else "; no custom kernel was seen")]
    return ["no PyTorch compute op ran in the candidate's forward: the work was done by custom code"]
