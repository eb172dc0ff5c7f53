"""Encode trees of tensors and plain values as JSON plus raw bytes, without pickle.

Decoding accepts only a closed set of node kinds, so a hostile worker can at
worst send wrong numbers, never code.
"""

from __future__ import annotations

from typing import Any

import torch

_DTYPES: dict[str, torch.dtype] = {
    str(d).removeprefix("torch."): d
    for d in (
        torch.float64, torch.float32, torch.float16, torch.bfloat16,
        torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool,
        torch.complex64, torch.complex128,
    )
}


class CodecError(ValueError):
    """A value cannot be encoded, or a received tree is malformed."""


def dtype_name(dtype: torch.dtype) -> str:
    """'float32' for torch.float32."""
    return str(dtype).removeprefix("torch.")


def encode(obj: Any, blobs: list[bytes]) -> Any:
    """Turn `obj` into a JSON-able spec, appending tensor bytes to `blobs`."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        name = dtype_name(t.dtype)
        if name not in _DTYPES:
            raise CodecError(f"unsupported tensor dtype {t.dtype}")
        cpu = t.to("cpu", copy=False).contiguous()
        # A view, not a copy: the channel writes straight from the tensor's memory.
        raw = memoryview(cpu.reshape(-1).view(torch.uint8).numpy()).cast("B") if cpu.numel() else b""
        blobs.append(raw)
        return {
            "k": "tensor", "dtype": name, "shape": list(cpu.shape),
            "device": str(t.device), "type": _qualname(type(obj)), "blob": len(blobs) - 1,
        }
    if isinstance(obj, (tuple, list)):
        return {"k": "tuple" if isinstance(obj, tuple) else "list", "items": [encode(o, blobs) for o in obj]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise CodecError("only dicts with string keys can be sent")
        return {"k": "dict", "items": {k: encode(v, blobs) for k, v in obj.items()}}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"k": "value", "v": obj}
    if isinstance(obj, torch.dtype):
        return {"k": "dtype", "v": dtype_name(obj)}
    raise CodecError(f"cannot send a value of type {_qualname(type(obj))}")


def decode(spec: Any, blobs: list[bytes]) -> Any:
    """Rebuild a tree from `encode`'s spec; tensors come back on the CPU."""
    try:
        kind = spec["k"]
        if kind == "tensor":
            dtype = _DTYPES[spec["dtype"]]
            shape = [int(s) for s in spec["shape"]]
            raw = blobs[int(spec["blob"])]
            if not raw:
                return torch.empty(shape, dtype=dtype)
            buf = raw if isinstance(raw, bytearray) else bytearray(raw)
            flat = torch.frombuffer(buf, dtype=torch.uint8)
            return flat.view(dtype).reshape(shape)
        if kind in ("tuple", "list"):
            items = [decode(s, blobs) for s in spec["items"]]
            return tuple(items) if kind == "tuple" else items
        if kind == "dict":
            return {str(k): decode(v, blobs) for k, v in spec["items"].items()}
        if kind == "value":
            v = spec["v"]
            if v is not None and not isinstance(v, (bool, int, float, str)):
                raise CodecError("bad value node")
            return v
        if kind == "dtype":
            return _DTYPES[spec["v"]]
    except (KeyError, IndexError, TypeError, RuntimeError) as exc:
        raise CodecError(f"malformed value tree: {exc}") from exc
    raise CodecError(f"unknown node kind {kind!r}")


def encode_meta(obj: Any) -> Any:
    """A spec of `obj`'s structure, shapes and dtypes with no data: a tensor node has no blob.

    For what the reference worker tells the judge about the outputs it keeps; read back with
    `decode_meta`, never with `decode` (which refuses a tensor node without a blob)."""
    if isinstance(obj, torch.Tensor):
        name = dtype_name(obj.dtype)
        if name not in _DTYPES:
            raise CodecError(f"unsupported tensor dtype {obj.dtype}")
        return {"k": "tensor", "dtype": name, "shape": list(obj.shape), "device": str(obj.device),
                "type": _qualname(type(obj)), "blob": None}
    if isinstance(obj, (tuple, list)):
        return {"k": "tuple" if isinstance(obj, tuple) else "list", "items": [encode_meta(o) for o in obj]}
    return encode(obj, [])  # plain values and dtypes carry no blobs anyway (a dict of tensors would fail here)


def decode_meta(spec: Any) -> Any:
    """Rebuild `encode_meta`'s tree: each tensor a storage-less `meta` tensor of its shape and dtype."""
    try:
        kind = spec["k"]
        if kind == "tensor":
            return torch.empty([int(s) for s in spec["shape"]], dtype=_DTYPES[spec["dtype"]], device="meta")
        if kind in ("tuple", "list"):
            items = [decode_meta(s) for s in spec["items"]]
            return tuple(items) if kind == "tuple" else items
    except (KeyError, IndexError, TypeError, RuntimeError) as exc:
        raise CodecError(f"malformed value tree: {exc}") from exc
    return decode(spec, [])


def describe(spec: Any) -> Any:
    """The metadata of a spec (types, dtypes, shapes, devices) without data."""
    kind = spec.get("k") if isinstance(spec, dict) else None
    if kind == "tensor":
        return {k: spec.get(k) for k in ("type", "dtype", "shape", "device")}
    if kind in ("tuple", "list"):
        return [describe(s) for s in spec.get("items", [])]
    if kind == "dict":
        return {k: describe(v) for k, v in spec.get("items", {}).items()}
    return spec


def _qualname(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}"
