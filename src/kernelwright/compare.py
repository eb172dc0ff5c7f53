"""Trusted comparison of a candidate's output against the reference (pure functions).

Run where the references are: in the reference worker (`worker.reference`, op `compare`), on
the device the task ran on, so that no reference output ever crosses to the judge and a
gigabyte output is compared by the GPU rather than the judge's CPU. That process is on the
trusted side: it runs the task's code and this module, never the candidate's, and the judge
sets every tolerance it applies (CompareRequest). It sits beside `protocol`, outside both
`judge` and `worker`, because both import it; a candidate's worker never loads it
(tests/worker/test_boundary.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from kernelwright import constants as C
from kernelwright.protocol import Check


@dataclass(frozen=True)
class Comparison:
    """The outcome of comparing one output tree."""

    passed: bool
    max_abs_error: float
    max_rel_error: float  # max |out - ref| / scale
    scale: float
    norm_error: float  # max of |out - ref| / allowed; <= 1 passes
    check: Check | None = None
    detail: str = ""


def tolerance_for(dtype: torch.dtype, rtol: float | None = None, atol: float | None = None) -> C.Tolerance:
    """The table tolerance for an output dtype, with task overrides."""
    name = str(dtype).removeprefix("torch.")
    base = C.TOLERANCES.get(name, C.EXACT if not dtype.is_floating_point else C.TOLERANCES["float32"])
    return C.Tolerance(rtol=base.rtol if rtol is None else rtol, atol=base.atol if atol is None else atol)


def structure(tree: Any) -> Any:
    """The nesting of a tree: 'T' for a tensor, a list for a tuple or list, 'V' for a value."""
    if isinstance(tree, torch.Tensor):
        return "T"
    if isinstance(tree, (tuple, list)):
        return [structure(t) for t in tree]
    return "V"


def leaves(tree: Any) -> list[Any]:
    """Flatten tuples and lists."""
    if isinstance(tree, (tuple, list)):
        return [x for t in tree for x in leaves(t)]
    return [tree]


def fold_references(native: Any, ref64: Any | None, chunk: int = C.COMPARE_CHUNK_ELEMENTS) -> tuple[Any, Any]:
    """(native, ref64) with each floating native output folded into its float64 reference.

    Where the native output is NaN/Inf, or the float64 run is not finite, the float64 tensor
    takes the native value (in place); the native leaf becomes a storage-less `meta` tensor
    that keeps its shape and dtype. Every comparison reads the same numbers as before (the
    NaN/Inf pattern is the native run's; elsewhere the float64 value is used, as
    `compare_tensor` does), and the judge holds an output's float64 reference alone instead
    of it and its native copy: a third less for float32 outputs, a fifth for half precision.
    """
    if ref64 is None:
        return native, ref64

    def fold(n: Any, r: Any) -> Any:
        if not (isinstance(n, torch.Tensor) and n.is_floating_point() and not n.is_meta
                and isinstance(r, torch.Tensor) and r.dtype == torch.float64 and r.shape == n.shape
                and r.is_contiguous() and n.numel()):
            return n
        n_all, r_all = n.reshape(-1), r.view(-1)
        for a in range(0, n_all.numel(), chunk):
            nn, rr = n_all[a:a + chunk], r_all[a:a + chunk]
            off = ~(torch.isfinite(nn) & torch.isfinite(rr))
            if bool(off.any()):
                rr[off] = nn[off].to(torch.float64)
        return to_meta(n)

    def walk(n: Any, r: Any) -> Any:
        if isinstance(n, (tuple, list)) and isinstance(r, (tuple, list)) and len(n) == len(r):
            items = [walk(a, b) for a, b in zip(n, r)]
            return tuple(items) if isinstance(n, tuple) else items
        return fold(n, r)

    return walk(native, ref64), ref64


def to_meta(tree: Any) -> Any:
    """The tree with every tensor replaced by a storage-less `meta` tensor of its shape and dtype."""
    if isinstance(tree, torch.Tensor):
        return tree if tree.is_meta else torch.empty(tree.shape, dtype=tree.dtype, device="meta")
    if isinstance(tree, (tuple, list)):
        items = [to_meta(t) for t in tree]
        return tuple(items) if isinstance(tree, tuple) else items
    return tree


def real_leaves(native: Any, ref64: Any | None) -> list[Any]:
    """The native outputs' leaves, a folded one (see `fold_references`) replaced by its float64 reference."""
    refs = leaves(ref64) if ref64 is not None else []
    return [refs[i] if isinstance(n, torch.Tensor) and n.is_meta and i < len(refs) else n
            for i, n in enumerate(leaves(native))]


def compare_tree(out: Any, out_meta: Any, native: Any, ref64: Any | None, device: str,
                 rtol: float | None, atol: float | None, slack: list[float] | None = None,
                 scales: list[float | None] | None = None) -> Comparison:
    """Compare a decoded candidate output with the native and float64 references.

    `out_meta` is what the worker claimed about each leaf (type, device); `slack`
    multiplies each leaf's tolerance (from the reference's own error); `scales`, where given,
    are the leaves' scales (for outputs compared on a sample of their elements: the scale of
    the whole output, `rms`).
    """
    if structure(out) != structure(native):
        return _fail(Check.STRUCTURE, f"the output is shaped like {structure(out)}; "
                     f"the reference returns {structure(native)} (T: a tensor)")
    outs, metas, natives = leaves(out), leaves(out_meta), leaves(native)
    refs = leaves(ref64) if ref64 is not None else natives
    if len(outs) != len(natives) or len(refs) != len(natives):
        return _fail(Check.STRUCTURE, f"the output has {len(outs)} tensors; the reference has {len(natives)}")
    worst = Comparison(True, 0.0, 0.0, 0.0, 0.0)
    for i, (o, m, n, r) in enumerate(zip(outs, metas, natives, refs)):
        where = f"output {i}: " if len(outs) > 1 else ""
        if not isinstance(n, torch.Tensor):
            if o != n:
                return _fail(Check.MISMATCH, f"{where}expected the value {n!r}, got {o!r}")
            continue
        if not isinstance(o, torch.Tensor) or not isinstance(m, dict) or m.get("type") != "torch.Tensor":
            got = m.get("type") if isinstance(m, dict) else type(o).__name__
            return _fail(Check.OUTPUT_TYPE, f"{where}the output must be exactly torch.Tensor, got {got}")
        if tuple(o.shape) != tuple(n.shape):
            return _fail(Check.SHAPE, f"{where}shape {tuple(o.shape)}, expected {tuple(n.shape)}")
        if o.dtype != n.dtype:
            return _fail(Check.DTYPE, f"{where}dtype {o.dtype}, expected {n.dtype}")
        if not str(m.get("device", "")).startswith(device.split(":")[0]):
            return _fail(Check.DEVICE, f"{where}on {m.get('device')}, expected {device}")
        tol = tolerance_for(n.dtype, rtol, atol)
        factor = slack[i] if slack and i < len(slack) else 1.0
        c = compare_tensor(o, n, r, tol, factor, scale=scales[i] if scales and i < len(scales) else None)
        if not c.passed:
            return Comparison(False, c.max_abs_error, c.max_rel_error, c.scale, c.norm_error,
                              c.check, where + c.detail)
        if c.norm_error >= worst.norm_error:
            worst = c
    return worst


def compare_tensor(out: torch.Tensor, native: torch.Tensor, ref: torch.Tensor,
                   tol: C.Tolerance, factor: float = 1.0, chunk: int = C.COMPARE_CHUNK_ELEMENTS,
                   scale: float | None = None) -> Comparison:
    """Element-wise check against a float64 reference, NaN/Inf matched against the native output.

    Runs over `chunk` elements at a time in two passes (the output's scale first, then the
    tolerance), so memory stays bounded for any output size; the result does not depend on
    the chunk size. `scale` replaces the reference's own RMS (a sample's, see `rms`).
    """
    if out.numel() == 0:
        return Comparison(True, 0.0, 0.0, 0.0, 0.0)
    if native.is_meta:  # folded into `ref` (fold_references), which carries its NaN/Inf pattern
        native = ref
    o_all, n_all = out.reshape(-1), native.reshape(-1)
    r_all = ref.reshape(-1) if ref.shape == native.shape else n_all
    spans = [(a, min(a + chunk, o_all.numel())) for a in range(0, o_all.numel(), chunk)]
    if not native.dtype.is_floating_point and not native.is_complex():
        nbad, first = 0, None
        for a, b in spans:
            bad = o_all[a:b] != n_all[a:b]
            k = int(bad.sum())
            if k and first is None:
                first = a + int(bad.nonzero()[0, 0])
            nbad += k
        if nbad:
            idx = _unravel(first, out.shape)
            return _fail(Check.MISMATCH, f"{nbad} of {out.numel()} elements differ; "
                         f"first at {idx}: got {out[idx].item()}, expected {native[idx].item()}")
        return Comparison(True, 0.0, 0.0, 0.0, 0.0)
    # Pass 1: the NaN/Inf pattern and the scale (root-mean-square of the finite reference).
    # Every stretch is converted into the same float64 buffers: a fresh allocation per stretch
    # is page-faulted in anew each time, which cost more than the arithmetic (0.5 GiB outputs).
    width = spans[0][1] - spans[0][0]
    bufs = _Buffers(width, r_all.dtype, r_all.device)
    sumsq, count = 0.0, 0
    wrong, where = 0, ""  # NaN/Inf pattern differences, and the first
    masked = False  # some stretch holds NaN/Inf: pass 2 masks those stretches
    for a, b in spans:
        o, r = bufs.load(o_all, r_all, a, b)
        if _all_finite(o) and _all_finite(r) and (r_all is n_all or _all_finite(n_all[a:b])):
            count += b - a  # the common case, with no masks
            sumsq += float(torch.dot(r, r))
            continue
        o, n, r = _f64(o_all, n_all, r_all, a, b)
        k, first_here = _pattern(o, n, a, out.shape)
        wrong, where = wrong + k, where or first_here
        o, r, finite = _masked(o, n, r)
        count += int(finite.sum())
        sumsq += float(r.square().sum())
        masked = True
    if wrong:
        return _fail(Check.NONFINITE, f"NaN/Inf differ from the reference at {wrong} elements; first at {where}")
    if scale is None:
        scale = math.sqrt(sumsq) / max(count, 1) ** 0.5
    scale = scale if scale > 0 else 1.0
    # Pass 2: each element against its tolerance: |out - ref| / (factor * (rtol |ref| + atol scale)).
    max_abs = max_norm = 0.0
    nbad, first, got, expected = 0, 0, 0.0, 0.0
    for a, b in spans:
        o, r = bufs.load(o_all, r_all, a, b)
        if masked and not (_all_finite(o) and _all_finite(r) and _all_finite(n_all[a:b])):
            o, n, r = _f64(o_all, n_all, r_all, a, b)
            o, r, _ = _masked(o, n, r)
        diff = torch.sub(o, r, out=bufs.diff[:b - a]).abs_()
        max_abs = max(max_abs, float(diff.max()))
        # Into out's buffer (done with): the reference may be a view of the judge's own copy.
        allowed = torch.abs(r, out=bufs.o[:b - a]).mul_(factor * tol.rtol).add_(factor * tol.atol * scale)
        allowed.clamp_min_(1e-300)
        norm = diff.div_(allowed)
        max_norm = max(max_norm, float(norm.max()))
        bad = torch.gt(norm, 1.0, out=bufs.bad[:b - a])
        k = int(bad.sum())
        if k and not nbad:
            j = int(bad.nonzero()[0, 0])
            o1, n1, r1 = _f64(o_all, n_all, r_all, a + j, a + j + 1)
            first, got, expected = a + j, float(o1[0]), float(r1[0] if torch.isfinite(r1[0]) else n1[0])
        nbad += k
    if not nbad:
        return Comparison(True, max_abs, max_abs / scale, scale, max_norm)
    return Comparison(False, max_abs, max_abs / scale, scale, max_norm, Check.MISMATCH,
                      _outside_detail(nbad, out.numel(), tol, factor, scale, max_abs, _unravel(first, out.shape),
                                      got, expected))


class _Buffers:
    """One stretch's float64 copies of the output and the reference, reused stretch after stretch
    (a float64 reference is read in place, never written)."""

    def __init__(self, width: int, ref_dtype: torch.dtype, device: torch.device) -> None:
        self.o = torch.empty(width, dtype=torch.float64, device=device)
        self.r = torch.empty(width if ref_dtype != torch.float64 else 0, dtype=torch.float64, device=device)
        self.diff = torch.empty(width, dtype=torch.float64, device=device)
        self.bad = torch.empty(width, dtype=torch.bool, device=device)

    def load(self, o_all: torch.Tensor, r_all: torch.Tensor, a: int, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """out[a:b] and ref[a:b] as float64 (out's a view of a buffer that pass 2 overwrites)."""
        o = self.o[:b - a]
        o.copy_(o_all[a:b])
        if r_all.dtype == torch.float64:
            return o, r_all[a:b]
        r = self.r[:b - a]
        r.copy_(r_all[a:b])
        return o, r


def _f64(o_all: torch.Tensor, n_all: torch.Tensor, r_all: torch.Tensor, a: int,
         b: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return o_all[a:b].to(torch.float64), n_all[a:b].to(torch.float64), r_all[a:b].to(torch.float64)


def _pattern(o: torch.Tensor, n: torch.Tensor, offset: int, shape: torch.Size) -> tuple[int, str]:
    """How many places out's NaN/Inf (or the Inf signs) differ from the native output's, and the
    first ("index: got x, expected y"). The pattern comes from the native-precision run: float64
    does not overflow where float32 does, and the task's own dtype defines the contract."""
    n_nan, o_nan = torch.isnan(n), torch.isnan(o)
    n_inf, o_inf = torch.isinf(n), torch.isinf(o)
    bad = (n_nan != o_nan) | (n_inf != o_inf) | (n_inf & o_inf & (n != o))
    k = int(bad.sum())
    if not k:
        return 0, ""
    j = int(bad.nonzero()[0, 0])
    return k, f"{_unravel(offset + j, shape)}: got {o[j].item()}, expected {n[j].item()}"


def _masked(o: torch.Tensor, n: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Past the pattern check, non-finite places agree: zeroed in out and reference they count
    as exact matches. (out, reference, the native output's finite mask)."""
    finite = torch.isfinite(n)
    r = torch.where(finite & torch.isfinite(r), r, n)
    return torch.where(finite, o, 0.0), torch.where(finite, r, 0.0), finite


def _unravel(flat: int, shape: torch.Size) -> tuple[int, ...]:
    idx = []
    for dim in reversed(tuple(shape)):
        idx.append(flat % dim)
        flat //= dim
    return tuple(reversed(idx))


def _all_finite(t: torch.Tensor) -> bool:
    """No NaN or Inf in a float64 tensor, in one pass (NaN and Inf survive a sum; an overflowing
    sum of finite values only sends the caller down the general path, never a wrong answer)."""
    return math.isfinite(float(t.sum()))


def _outside_detail(nbad: int, numel: int, tol: C.Tolerance, factor: float, scale: float, max_abs: float,
                    idx: tuple[int, ...], got: float, expected: float) -> str:
    return (f"{nbad} of {numel} elements outside tolerance "
            f"(rtol {tol.rtol * factor:.2g}, atol {tol.atol * factor:.2g} x scale {scale:.3g}); "
            f"max abs error {max_abs:.3g}; first at {idx}: got {got:.6g}, expected {expected:.6g}")


def reference_slack(native: Any, ref64: Any | None, rtol: float | None, atol: float | None) -> list[float]:
    """Per output: how far the task's own native-precision run is from float64, as a tolerance
    factor (at least 1); empty without float64 references."""
    if ref64 is None:
        return []
    out = []
    for n, r in zip(leaves(native), leaves(ref64)):
        if isinstance(n, torch.Tensor) and n.is_floating_point() and isinstance(r, torch.Tensor) \
                and r.shape == n.shape:
            c = compare_tensor(n, n, r, tolerance_for(n.dtype, rtol, atol))
            out.append(max(1.0, C.REFERENCE_ERROR_FACTOR * c.norm_error))
        else:
            out.append(1.0)
    return out


def held_bytes(tree: Any) -> int:
    """Bytes of the tensors of a tree that hold storage (a folded, `meta` leaf holds none)."""
    return sum(t.numel() * t.element_size() for t in leaves(tree) if isinstance(t, torch.Tensor) and not t.is_meta)


def rms(t: torch.Tensor, chunk: int = C.COMPARE_CHUNK_ELEMENTS) -> float:
    """Root-mean-square of a tensor's finite elements, as `compare_tensor` takes a scale."""
    flat = t.reshape(-1)
    sumsq, count = 0.0, 0
    for a in range(0, flat.numel(), chunk):
        x = flat[a:a + chunk].to(torch.float64)
        ok = torch.isfinite(x)
        sumsq += float(torch.where(ok, x, 0.0).square().sum())
        count += int(ok.sum())
    return math.sqrt(sumsq / count) if count else 0.0


def device_of(tree: Any) -> torch.device:
    """Where a tree's first tensor with storage lives (the CPU when it has none)."""
    return next((t.device for t in leaves(tree) if isinstance(t, torch.Tensor) and not t.is_meta),
                torch.device("cpu"))


def zeros_would_pass(native: Any, ref64: Any | None, rtol: float | None, atol: float | None) -> bool:
    """True when an all-zero output would pass: the task cannot tell work from no work."""
    natives = leaves(native)
    refs = leaves(ref64) if ref64 is not None else natives
    for n, r in zip(natives, refs):
        if not isinstance(n, torch.Tensor) or not n.numel():
            continue
        if not n.is_floating_point():
            # Integers and booleans are compared exactly: zeros pass only where every element is 0.
            if bool(n.any()):
                return False
            continue
        # A zero broadcast to the output's shape, not allocated: on a large task a real
        # all-zero tensor would be another output's worth of the judge's memory.
        # On the reference's device: a native output folded into its float64 one is a meta tensor.
        where = r.device if isinstance(r, torch.Tensor) and not r.is_meta else n.device
        zeros = torch.zeros((), dtype=n.dtype, device=where).expand(n.shape)
        if not compare_tensor(zeros, n, r, tolerance_for(n.dtype, rtol, atol)).passed:
            return False
    return True


def relative_change(a: Any, b: Any, chunk: int = C.COMPARE_CHUNK_ELEMENTS) -> float:
    """Largest change between two outputs relative to their scale (for the dependence check)."""
    worst = 0.0
    for x, y in zip(leaves(a), leaves(b)):
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape \
                and x.is_floating_point() and x.numel():
            xs, ys = x.reshape(-1), y.reshape(-1)
            sumsq, count, biggest = 0.0, 0, 0.0
            for a0 in range(0, xs.numel(), chunk):
                x64, y64 = xs[a0:a0 + chunk].double(), ys[a0:a0 + chunk].double()
                ok = torch.isfinite(x64) & torch.isfinite(y64)
                if bool(ok.any()):
                    sumsq += float((x64[ok] ** 2).sum())
                    count += int(ok.sum())
                    biggest = max(biggest, float((x64[ok] - y64[ok]).abs().max()))
            if not count:
                continue
            worst = max(worst, biggest / (math.sqrt(sumsq / count) or 1.0))
        elif isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.shape == y.shape:
            worst = max(worst, 0.0 if torch.equal(x, y) else 1.0)
        else:
            worst = max(worst, 1.0)
    return worst


def _fail(check: Check, detail: str) -> Comparison:
    return Comparison(False, float("nan"), float("nan"), float("nan"), float("inf"), check, detail)
