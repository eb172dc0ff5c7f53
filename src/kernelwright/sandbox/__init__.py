"""Process isolation: spawned, limited, killable workers with a private channel."""

from kernelwright.sandbox.process import SandboxConfig, Worker, WorkerFailure

__all__ = ["SandboxConfig", "Worker", "WorkerFailure"]
