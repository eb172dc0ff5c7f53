"""The Inductor proposer: torch.compile's own generated kernels as a standalone candidate.

No LLM: the task is compiled with Inductor in a child process (`capture`), and the
generated wrapper and kernels are rewritten into a `ModelNew` file that needs only
torch and the kernels' toolchain (`standalone`): C++ built as a plain shared library
called through ctypes on the CPU, plain `@triton.jit` kernels with literal launch parameters on CUDA. It gives the
search a strong, verified starting point, and the parameter-mutation proposer
something to vary.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from kernelwright.propose.base import Proposal, ProposalRequest
# Imported under another name: `capture` stays the submodule, as `import ....capture` expects.
from kernelwright.propose.inductor.capture import InductorError
from kernelwright.propose.inductor.capture import capture as run_capture
from kernelwright.propose.inductor.standalone import Unsupported, build_candidate

__all__ = ["InductorError", "InductorProposer", "Unsupported", "generate_candidate"]

# The form Inductor writes on each device, and the ProposalRequest target it answers.
_TARGET_FOR_DEVICE = {"cpu": "cpp", "cuda": "triton"}


def _read_task(task: str | Path) -> tuple[str, Path | None]:
    """(task source, its path) from a path or from source text (text has a newline, a path none)."""
    if isinstance(task, Path) or "\n" not in task:
        return Path(task).read_text(encoding="utf-8"), Path(task)
    return task, None


def generate_candidate(task: str | Path, device: str = "cpu", *, timeout_s: float = 300.0,
                       threads: int | None = None) -> str:
    """Standalone ModelNew source from Inductor's output for a task (a path or its source text).

    `threads` is the OpenMP team size Inductor generates CPU kernels for (default: the
    CPUs this process may use); at run time kernels never use more threads than torch
    is set to. Raises InductorError (Unsupported included) with a one-sentence reason.
    """
    if device not in _TARGET_FOR_DEVICE:
        raise InductorError(f"device {device!r} is not supported: use cpu or cuda")
    source, path = _read_task(task)
    return build_candidate(source, run_capture(source, device, timeout_s=timeout_s, threads=threads,
                                               task_path=path))


class InductorProposer:
    """Proposes Inductor's generated code, made standalone; one compile per task and device.

    Every call for the same task source and device returns the same proposal from an
    in-process cache (the compile is deterministic; a timeout is not cached, so it may be
    retried). Parents and stages are ignored: this proposer only ever translates.
    """

    def __init__(self, name: str = "inductor", timeout_s: float = 300.0, threads: int | None = None) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.threads = threads
        self._cache: dict[tuple[str, str], Proposal] = {}
        self._lock = threading.Lock()

    def propose(self, request: ProposalRequest) -> Proposal:
        """The candidate for the request's task and device, or a failure sentence; never raises."""
        # Inductor writes its own form whatever the LLMs are asked for (request.target):
        # C++ on the CPU, Triton on CUDA. Both are judged alike.
        form = _TARGET_FOR_DEVICE.get(request.device)
        if form is None:
            return Proposal(self.name, None, failure=f"Inductor does not generate code for device "
                                                     f"{request.device!r}")
        key = (hashlib.sha256(request.task_source.encode()).hexdigest(), request.device)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        proposal, cacheable = self._generate(request)
        if cacheable:
            with self._lock:
                self._cache[key] = proposal
        return proposal

    def _generate(self, request: ProposalRequest) -> tuple[Proposal, bool]:
        try:
            source = generate_candidate(request.task_source, request.device, timeout_s=self.timeout_s,
                                        threads=self.threads)
        except InductorError as exc:
            return Proposal(self.name, None, failure=str(exc)), "did not finish within" not in str(exc)
        except Exception as exc:  # a writer bug must not stop the search; it is reported instead
            return Proposal(self.name, None, failure=f"the Inductor proposer failed unexpectedly "
                                                     f"({type(exc).__name__}: {exc})"), False
        form = "C++" if request.device == "cpu" else "Triton"
        return Proposal(self.name, source, note=f"Inductor's generated {form} kernels, standalone"), True
