"""Tensor trees cross the channel as JSON and bytes: no pickle, closed node kinds."""

from __future__ import annotations

import pytest
import torch

from kernelwright.sandbox.codec import CodecError, decode, encode


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.int64, torch.bool, torch.uint8])
def test_tensor_round_trip(dtype: torch.dtype) -> None:
    t = (torch.randn(3, 5) * 10).to(dtype)
    blobs: list[bytes] = []
    back = decode(encode(t, blobs), blobs)
    assert back.dtype == dtype and torch.equal(back, t)


def test_tree_round_trip_and_non_contiguous() -> None:
    x = torch.randn(4, 6).t()
    tree = (x, [1, 2.5, "s", None], {"k": torch.zeros(0)})
    blobs: list[bytes] = []
    back = decode(encode(tree, blobs), blobs)
    assert torch.equal(back[0], x) and back[1] == [1, 2.5, "s", None] and back[2]["k"].numel() == 0


def test_arbitrary_objects_are_refused() -> None:
    with pytest.raises(CodecError):
        encode(object(), [])


@pytest.mark.parametrize("spec", [{"k": "pickle", "v": "x"}, {"k": "value", "v": {"a": 1}},
                                  {"k": "tensor", "dtype": "object", "shape": [1], "blob": 0}, {}])
def test_malformed_specs_are_refused(spec: dict) -> None:
    with pytest.raises(CodecError):
        decode(spec, [b"\0" * 8])


def test_subclass_type_is_recorded() -> None:
    class Sneaky(torch.Tensor):
        pass

    blobs: list[bytes] = []
    spec = encode(torch.ones(2).as_subclass(Sneaky), blobs)
    assert spec["type"].endswith("Sneaky")


def test_zero_dim_tensor_round_trip() -> None:
    """Loss tasks return 0-dim tensors."""
    t = torch.tensor(3.25)
    blobs: list[bytes] = []
    back = decode(encode(t, blobs), blobs)
    assert back.shape == () and back.item() == 3.25
