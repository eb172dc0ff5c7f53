"""FLOPs of one call, counted by torch's own formulas (`torch.utils.flop_counter`) without its
FlopCounterMode: every TorchDispatchMode subclass has its `__torch_dispatch__` wrapped to keep
Dynamo out, and that wrapper imports torch._dynamo, Inductor and SymPy at the first dispatch
(about 800 modules: 0.8 s on the 2-core machine, 3-6 s a verdict on the H200 host; the meta
device's Python kernels import them too, so the count runs on a real call). This mode opts out
of the wrapper, which only matters inside a compiled region, and counts exactly as
FlopCounterMode does: an op with no formula is decomposed where it can be, and what runs is
counted by the formula of its overload packet. Runs in the reference worker, on the task's model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

_aten = torch.ops.aten
# Queries of a tensor's layout: answered by the tensor itself (FlopCounterMode skips them too).
_METADATA = {_aten.sym_is_contiguous.default, _aten.is_contiguous.default, _aten.is_contiguous.memory_format,
             _aten.is_strides_like_format.default, _aten.is_non_overlapping_and_dense.default,
             _aten.size.default, _aten.sym_size.default, _aten.stride.default, _aten.sym_stride.default,
             _aten.storage_offset.default, _aten.sym_storage_offset.default, _aten.numel.default,
             _aten.sym_numel.default, _aten.dim.default, torch.ops.prim.layout.default}


class FlopCount(TorchDispatchMode):
    """`with FlopCount() as c: model(*inputs)`; then `c.total` is the FLOPs counted."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # Nothing is compiled under this mode: no Dynamo guard (and no Dynamo import) is needed.
        return False

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _METADATA:
            return NotImplemented
        if func not in flop_registry and func is not torch.ops.prim.device.default:
            with self:
                out = func.decompose(*args, **kwargs)
                if out is not NotImplemented:
                    return out
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out
