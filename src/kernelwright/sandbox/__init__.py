"""Process isolation: spawned, limited, killable workers with a private channel.

Nothing is imported eagerly: a worker process loads only what its request loop uses
(`channel`, `codec`, `limits`, `pch`), never the judge's spawning side (`process`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernelwright.sandbox.process import SandboxConfig, Worker, WorkerFailure

__all__ = ["SandboxConfig", "Worker", "WorkerFailure"]


def __getattr__(name: str) -> Any:
    """`from kernelwright.sandbox import Worker` and friends, loaded on first use."""
    if name in __all__:
        from kernelwright.sandbox import process

        return getattr(process, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
