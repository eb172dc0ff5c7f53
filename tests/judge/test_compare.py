"""Trusted comparison: scale-relative tolerances, exact NaN/Inf, structure and dtype."""

from __future__ import annotations

import math

import pytest
import torch

from kernelwright.compare import (compare_tensor, compare_tree, fold_references, real_leaves, relative_change,
                                       tolerance_for, zeros_would_pass)

META = {"type": "torch.Tensor", "device": "cpu"}


def _cmp(out: torch.Tensor, native: torch.Tensor, ref: torch.Tensor | None = None):
    return compare_tree(out, META, native, ref, "cpu", None, None)


def test_fp32_rounding_passes_but_half_precision_fails() -> None:
    ref = torch.randn(4096, dtype=torch.float64)
    native = ref.float()
    assert _cmp(native, native, ref).passed
    assert not _cmp(native.half().float(), native, ref).passed
    assert not _cmp(native.bfloat16().float(), native, ref).passed


def test_error_is_relative_to_the_output_scale() -> None:
    """A tiny output cannot be matched by zeros: the tolerance scales with the output."""
    ref = (torch.randn(1000, dtype=torch.float64) * 1e-6)
    native = ref.float()
    assert not _cmp(torch.zeros_like(native), native, ref).passed
    assert zeros_would_pass(torch.zeros(10), None, None, None)
    assert not zeros_would_pass(native, ref, None, None)



def test_zeros_pass_an_integer_output_only_when_it_is_all_zero() -> None:
    """KernelBench's argmax and argmin return int64 indices, compared exactly: zeros do not pass them
    (they were flagged as degenerate when only floating outputs were looked at)."""
    assert not zeros_would_pass(torch.tensor([0, 3, 1]), None, None, None)
    assert zeros_would_pass(torch.zeros(4, dtype=torch.int64), None, None, None)
    assert not zeros_would_pass(torch.tensor([False, True]), None, None, None)


def test_nan_and_inf_must_match_exactly() -> None:
    native = torch.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    assert _cmp(native.clone(), native).passed
    bad = native.clone()
    bad[1] = 0.0
    assert _cmp(bad, native).check == "nonfinite"
    flipped = native.clone()
    flipped[2] = -float("inf")
    assert _cmp(flipped, native).check == "nonfinite"
    extra = native.clone()
    extra[0] = float("nan")
    assert _cmp(extra, native).check == "nonfinite"


def test_fp32_overflow_pattern_comes_from_native_not_float64() -> None:
    ref = torch.tensor([1e39, 1.0], dtype=torch.float64)  # finite in float64
    native = ref.float()  # inf in float32
    assert _cmp(native.clone(), native, ref).passed


def test_shape_dtype_device_type_and_structure() -> None:
    native = torch.ones(3, 4)
    assert _cmp(torch.ones(4, 3), native).check == "shape"
    assert _cmp(torch.ones(3, 4, dtype=torch.float64), native).check == "dtype"
    assert compare_tree(native, {"type": "torch.Tensor", "device": "cuda:0"}, native, None,
                        "cpu", None, None).check == "device"
    assert compare_tree(native, {"type": "x.Sneaky", "device": "cpu"}, native, None,
                        "cpu", None, None).check == "output_type"
    assert compare_tree((native, native), [META, META], native, None, "cpu", None, None).check == "structure"


def test_integers_are_exact() -> None:
    native = torch.arange(10)
    assert _cmp(native.clone(), native).passed
    off = native.clone()
    off[3] += 1
    assert _cmp(off, native).check == "mismatch"


def test_slack_widens_the_tolerance() -> None:
    ref = torch.randn(100, dtype=torch.float64)
    native = ref.float()
    noisy = native + 3e-4 * float(ref.abs().max())
    tol = tolerance_for(torch.float32)
    assert not compare_tensor(noisy, native, ref, tol).passed
    assert compare_tensor(noisy, native, ref, tol, factor=20).passed


def test_relative_change() -> None:
    a = torch.randn(50)
    assert relative_change(a, a) == 0.0
    assert relative_change(a, a + 1) > 0.1


def test_all_finite_fast_path_agrees_with_the_masked_path() -> None:
    """The no-NaN shortcut and the masked general path give the same numbers and verdict."""
    from kernelwright.compare import compare_tensor, tolerance_for

    g = torch.Generator().manual_seed(0)
    native = torch.randn(4096, generator=g)
    ref = native.double() + 1e-9 * torch.randn(4096, generator=g, dtype=torch.float64)
    for noise in (1e-7, 1e-3):
        out = native + noise * torch.randn(4096, generator=g)
        fast = compare_tensor(out, native, ref, tolerance_for(native.dtype))
        # One matching NaN sends the same data down the masked path.
        nan = torch.tensor([float("nan")])
        masked = compare_tensor(torch.cat([out, nan]), torch.cat([native, nan]),
                                torch.cat([ref, nan.double()]), tolerance_for(native.dtype))
        assert fast.passed == masked.passed == (noise < 1e-5)
        for a, b in ((fast.max_abs_error, masked.max_abs_error), (fast.scale, masked.scale),
                     (fast.norm_error, masked.norm_error)):
            assert a == pytest.approx(b, rel=1e-12)


@pytest.mark.parametrize("case", ["close", "one_bad", "nan_inf_match", "nan_moved", "inf_sign", "ints", "ints_bad"])
def test_chunked_comparison_gives_the_same_result_as_whole(case: str) -> None:
    """The judge compares large outputs a stretch at a time; the verdict, errors, scale and first
    failing index must not depend on the stretch."""
    g = torch.Generator().manual_seed(7)
    native = torch.randn(37, 53, generator=g)
    ref = native.double() + 1e-9
    out = native.clone()
    if case == "one_bad":
        out[30, 41] += 1.0
    if case in ("nan_inf_match", "nan_moved", "inf_sign"):
        for t in (native, out):
            t[2, 3], t[20, 50] = float("nan"), float("inf")
        ref = native.double()
    if case == "nan_moved":
        out[2, 3], out[2, 4] = 1.0, float("nan")
    if case == "inf_sign":
        out[20, 50] = float("-inf")
    if case.startswith("ints"):
        native = torch.randint(0, 9, (37, 53), generator=g)
        out, ref = native.clone(), native
        if case == "ints_bad":
            out[36, 52] += 1
    tol = tolerance_for(native.dtype)
    whole = compare_tensor(out, native, ref, tol, chunk=native.numel())
    for chunk in (1, 7, 64, 1000):
        part = compare_tensor(out, native, ref, tol, chunk=chunk)
        assert (part.passed, part.check, part.detail) == (whole.passed, whole.check, whole.detail), chunk
        for a, b in ((part.max_abs_error, whole.max_abs_error), (part.scale, whole.scale),
                     (part.norm_error, whole.norm_error)):
            assert a == pytest.approx(b, rel=1e-12, nan_ok=True)
    expected = {"close": True, "one_bad": False, "nan_inf_match": True, "nan_moved": False, "inf_sign": False,
                "ints": True, "ints_bad": False}[case]
    assert whole.passed is expected
    if case == "one_bad":
        assert "first at (30, 41)" in whole.detail
    if case == "nan_moved":
        assert whole.check == "nonfinite" and "at 2 elements; first at (2, 3)" in whole.detail


def test_relative_change_does_not_depend_on_the_stretch() -> None:
    g = torch.Generator().manual_seed(3)
    a = torch.randn(41, 17, generator=g)
    b = a + 0.01 * torch.randn(41, 17, generator=g)
    b[3, 3] = float("nan")
    whole = relative_change(a, b, chunk=a.numel())
    assert whole > 0
    for chunk in (1, 5, 100):
        assert relative_change(a, b, chunk=chunk) == pytest.approx(whole, rel=1e-12)


@pytest.mark.parametrize("case", ["close", "one_bad", "nan_inf_match", "nan_moved", "inf_sign", "overflow",
                                  "ref_inf_native_finite", "zeros", "half"])
def test_folded_references_give_every_comparison_unchanged(case: str) -> None:
    """The judge holds a floating output's float64 reference alone, the native NaN/Inf pattern
    folded into it: every verdict, error and detail is what native beside float64 gave."""
    g = torch.Generator().manual_seed(11)
    ref = torch.randn(29, 31, generator=g, dtype=torch.float64)
    native = ref.float()
    out = native.clone()
    if case == "one_bad":
        out[7, 9] += 1.0
    if case in ("nan_inf_match", "nan_moved", "inf_sign"):
        for t in (native, out):
            t[2, 3], t[20, 30] = float("nan"), float("inf")
        ref[2, 3], ref[20, 30] = 0.5, 1e300  # float64 disagrees at the non-finite places
    if case == "nan_moved":
        out[2, 3], out[2, 4] = 1.0, float("nan")
    if case == "inf_sign":
        out[20, 30] = float("-inf")
    if case == "overflow":
        ref[4, 4] = 1e39
        native = ref.float()  # inf in float32, finite in float64
        out = native.clone()
    if case == "ref_inf_native_finite":
        ref[5, 5] = float("inf")  # the float64 run overflowed where the native one did not
        out[5, 5] = native[5, 5]
    if case == "zeros":
        out = torch.zeros_like(native)
    if case == "half":
        native, out = ref.half(), ref.half()
    tol = tolerance_for(native.dtype)
    before = compare_tensor(out, native, ref, tol, chunk=100)
    zeros_before = zeros_would_pass(native, ref, None, None)
    folded, ref_after = fold_references((native.clone(),), (ref.clone(),))
    assert folded[0].is_meta and folded[0].dtype == native.dtype and folded[0].shape == native.shape
    after = compare_tensor(out, folded[0], ref_after[0], tol, chunk=100)
    assert (after.passed, after.check, after.detail) == (before.passed, before.check, before.detail)
    for a, b in ((after.max_abs_error, before.max_abs_error), (after.scale, before.scale),
                 (after.norm_error, before.norm_error)):
        assert a == pytest.approx(b, rel=1e-12, nan_ok=True)
    assert compare_tree(out, META, folded[0], ref_after[0], "cpu", None, None).passed == before.passed
    assert zeros_would_pass(folded, ref_after, None, None) == zeros_before
    assert real_leaves(folded, ref_after)[0] is ref_after[0]


def test_fold_leaves_integer_outputs_and_outputs_without_float64() -> None:
    ints, f = torch.arange(6), torch.ones(3)
    folded, refs = fold_references((ints, f, 2.0), (ints, f.double(), 2.0))
    assert folded[0] is ints and folded[1].is_meta and folded[2] == 2.0
    assert fold_references(f, None) == (f, None)


def _naive(out: torch.Tensor, native: torch.Tensor, ref: torch.Tensor, tol, factor: float):
    """The comparison written whole, in the plainest way: what compare_tensor must agree with."""
    o, n = out.double().flatten(), native.double().flatten()
    r = ref.double().flatten() if ref.shape == native.shape else n
    pattern = (torch.isnan(o) != torch.isnan(n)) | (torch.isinf(o) != torch.isinf(n)) \
        | (torch.isinf(o) & torch.isinf(n) & (o != n))
    if bool(pattern.any()):
        return False, None, None
    finite = torch.isfinite(n)
    r = torch.where(finite & torch.isfinite(r), r, n)
    o, r = torch.where(finite, o, 0.0), torch.where(finite, r, 0.0)
    scale = math.sqrt(float((r * r).sum()) / max(int(finite.sum()), 1)) or 1.0
    diff = (o - r).abs()
    norm = diff / (r.abs() * factor * tol.rtol + factor * tol.atol * scale).clamp_min(1e-300)
    bad = norm > 1.0
    first = int(bad.nonzero()[0, 0]) if bool(bad.any()) else None
    return not bool(bad.any()), float(norm.max()), (first, float(o[first]), float(r[first])) if first is not None else None


@pytest.mark.parametrize("seed", range(12))
def test_stretched_comparison_agrees_with_the_plain_one(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    n = 1000 + seed * 37
    ref64 = torch.randn(n, generator=g, dtype=torch.float64) * (10.0 ** (seed % 4))
    native = ref64.float()
    out = native + torch.randn(n, generator=g) * 1e-7 * (10.0 ** (seed % 5))
    if seed % 3 == 0:  # the same NaN/Inf in both, and a float64 reference that overflowed
        idx = torch.randperm(n, generator=g)[:5]
        native[idx[:2]] = float("nan")
        out[idx[:2]] = float("nan")
        native[idx[2]] = float("inf")
        out[idx[2]] = float("inf")
        ref64[idx[3]] = float("inf")
    if seed % 4 == 1:  # a few wrong elements
        out[torch.randperm(n, generator=g)[:3]] += 1.0
    tol = tolerance_for(torch.float32, None, None)
    ok, norm, first = _naive(out, native, ref64, tol, 1.5)
    for chunk in (64, 333, n):
        c = compare_tensor(out, native, ref64, tol, 1.5, chunk=chunk)
        assert c.passed is ok, (chunk, c.detail)
        assert c.norm_error == pytest.approx(norm, rel=1e-9), chunk
        if first is not None:
            idx, got, expected = first
            assert f"first at ({idx},): got {got:.6g}, expected {expected:.6g}" in c.detail, c.detail


def test_zeros_are_made_on_the_outputs_device(monkeypatch):
    # KernelBench's level1/90 (cumprod: outputs mostly zero) was a task error on the H200: the
    # zeros were made on the CPU and compared with a CUDA output. `meta` stands in for the GPU.
    import kernelwright.compare as cmp_mod

    seen = []

    def compare(got, native, ref, tol, *a, **k):
        seen.append((got.device.type, native.device.type))
        return cmp_mod.Comparison(True, 0.0, 0.0, 1.0, 0.0)

    monkeypatch.setattr(cmp_mod, "compare_tensor", compare)
    assert zeros_would_pass([torch.empty(8, 3, device="meta")], None, None, None)
    assert seen == [("meta", "meta")]
