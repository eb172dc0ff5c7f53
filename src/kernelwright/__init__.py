"""kernelwright: faster PyTorch kernels, and proof that they are correct and faster.

`kernelwright.verify` and `kernelwright.optimize` are the Python API (see
`kernelwright.api`). They are loaded on first use, so `import kernelwright` stays fast and
imports neither torch nor the LLM SDKs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from kernelwright.api import optimize, verify

__all__ = ["__version__", "optimize", "verify"]


def __getattr__(name: str) -> Any:
    if name in ("verify", "optimize"):
        from kernelwright import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
