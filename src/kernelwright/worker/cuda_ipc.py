"""A checked output handed from the candidate's worker to the reference worker in GPU memory.

On CUDA a correctness call's output (a gigabyte on KernelBench's level 2) otherwise went to the
host, through two pipes and back to the GPU: seconds a trial. Instead the candidate's worker
exports the snapshot's allocation as a CUDA IPC handle (64 bytes, legacy `cuIpcGetMemHandle`),
the judge relays the handle with the output's claimed shapes and dtypes, and the reference
worker opens it, copies the bytes into memory of its own and closes it before comparing.

What the handle can and cannot do, seen from the reference worker (trusted) taking a handle
from the adversary:
- It names an allocation the candidate's process exported; opening it maps that memory, and
  nothing of the reference's or the judge's, into the reference worker. The reference only
  reads it, once, into its own buffer.
- The bytes are the candidate's to choose, exactly as the bytes it sends down a pipe are: it
  may even write them while they are copied. What is compared is the copy.
- Its claims are bounded before any read: offset plus the claimed shape's bytes must lie
  inside the mapped allocation (`cuMemGetAddressRange`), so a read never leaves it. A handle
  that does not open, or claims that do not fit, is a failed hand-over (`IpcError`): the judge
  then has the output sent as bytes, as on the CPU.

Runs in both workers (the candidate's exports, the reference's imports); driver API through
ctypes, on the primary context torch made current on this thread.
"""

from __future__ import annotations

import ctypes
from typing import Any

import torch

_CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS = 1


class IpcError(RuntimeError):
    """A handle could not be exported, opened or read within its allocation."""


class _Handle(ctypes.Structure):
    _fields_ = [("reserved", ctypes.c_char * 64)]


_LIB: Any = None


def _lib() -> Any:
    global _LIB
    if _LIB is None:
        try:
            lib = ctypes.CDLL("libcuda.so.1")
            lib.cuMemGetAddressRange_v2.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(ctypes.c_size_t),
                                                    ctypes.c_uint64]
            lib.cuIpcGetMemHandle.argtypes = [ctypes.POINTER(_Handle), ctypes.c_uint64]
            lib.cuIpcOpenMemHandle_v2.argtypes = [ctypes.POINTER(ctypes.c_uint64), _Handle, ctypes.c_uint]
            lib.cuIpcCloseMemHandle.argtypes = [ctypes.c_uint64]
            _LIB = lib
        except (OSError, AttributeError) as exc:
            raise IpcError(f"the CUDA driver library is not usable here: {exc}") from None
    return _LIB


def _check(rc: int, what: str) -> None:
    if rc != 0:
        raise IpcError(f"{what} failed (CUresult {rc})")


def _range(ptr: int) -> tuple[int, int]:
    base, size = ctypes.c_uint64(), ctypes.c_size_t()
    _check(_lib().cuMemGetAddressRange_v2(ctypes.byref(base), ctypes.byref(size), ctypes.c_uint64(ptr)),
           "cuMemGetAddressRange")
    return base.value, size.value


def export(t: torch.Tensor) -> dict[str, Any]:
    """The handle of the allocation holding contiguous CUDA tensor `t`, and where `t` starts in it."""
    if not (t.is_cuda and t.is_contiguous()):
        raise IpcError("only a contiguous CUDA tensor can be handed over")
    ptr = t.data_ptr()
    base, _ = _range(ptr)
    handle = _Handle()
    _check(_lib().cuIpcGetMemHandle(ctypes.byref(handle), ctypes.c_uint64(base)), "cuIpcGetMemHandle")
    # bytes(handle), not handle.reserved: a c_char array's value stops at its first zero byte.
    return {"handle": bytes(handle).hex(), "offset": ptr - base}


def copy_in(records: list[dict[str, Any]], metas: list[torch.Tensor]) -> list[torch.Tensor]:
    """Tensors of this process holding the bytes each record's handle names, shaped as the
    matching claimed `meta` tensor; every handle closed before returning."""
    lib = _lib()
    opened: dict[str, tuple[int, int]] = {}
    out: list[torch.Tensor] = []
    try:
        for rec, meta in zip(records, metas, strict=True):
            key = str(rec["handle"])
            raw = bytes.fromhex(key)
            if len(raw) != 64:
                raise IpcError("a CUDA IPC handle is 64 bytes")
            if key not in opened:
                ptr = ctypes.c_uint64()
                handle = _Handle()
                ctypes.memmove(ctypes.addressof(handle), raw, 64)
                _check(lib.cuIpcOpenMemHandle_v2(ctypes.byref(ptr), handle, _CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS),
                       "cuIpcOpenMemHandle")
                opened[key] = (ptr.value, _range(ptr.value)[1])
            base, size = opened[key]
            offset = int(rec["offset"])
            nbytes = meta.numel() * meta.element_size()
            if offset < 0 or offset + nbytes > size:
                raise IpcError(f"the output claims {nbytes} bytes at offset {offset} of an allocation of {size}")
            out.append(_view(base + offset, nbytes).clone().view(meta.dtype).reshape(meta.shape)
                       if nbytes else torch.empty(meta.shape, dtype=meta.dtype, device="cuda"))
        torch.cuda.synchronize()  # every copy done before a mapping goes
    finally:
        for ptr, _ in opened.values():
            lib.cuIpcCloseMemHandle(ctypes.c_uint64(ptr))
    return out


class _Raw:
    """A device pointer as torch can view it (`__cuda_array_interface__`), no copy."""

    def __init__(self, ptr: int, nbytes: int) -> None:
        self.__cuda_array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "data": (ptr, False), "version": 3}


def _view(ptr: int, nbytes: int) -> torch.Tensor:
    return torch.as_tensor(_Raw(ptr, nbytes), device="cuda")
