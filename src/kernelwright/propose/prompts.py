"""Prompts as templates: one jinja2 file per stage, plus target rules in one table.

Templates live in `kernelwright/propose/templates/`; nothing else in the package
builds prompt text, so a prompt change is a template change.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2

from kernelwright.propose.base import ProposalRequest

TARGETS: dict[str, tuple[str, str]] = {
    # target -> (name used in prose, the form the kernel must take)
    "cuda": ("CUDA C++", "Write the kernels in CUDA C++ and build them with "
             "torch.utils.cpp_extension.load_inline (cuda_sources for the kernels, cpp_sources for the "
             "declarations); launch them on the current CUDA stream (at::cuda::getCurrentCUDAStream())."),
    "triton": ("Triton", "Write the kernels in Triton (@triton.jit) and launch them from forward with an "
               "explicit grid; keep block sizes and num_warps as visible constants."),
    "cpp": ("C++ (CPU)", "Write the kernels in C++ for the CPU and build them with "
            "torch.utils.cpp_extension.load_inline (functions=[...]); use all cores with OpenMP only "
            "through at::parallel_for, and keep the same thread count as PyTorch."),
}


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("kernelwright.propose", "templates"),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)  # prompts are plain text, never HTML


def target_name(target: str) -> str:
    """'CUDA C++', 'Triton' or 'C++ (CPU)'."""
    return TARGETS[target][0]


def render(request: ProposalRequest) -> tuple[str, str]:
    """(system prompt, user prompt) for a request's stage."""
    name, rules = TARGETS[request.target]
    device_name = "an NVIDIA GPU" if request.device == "cuda" else "the CPU"
    system = _env().get_template("system.j2").render(target_name=name, target_rules=rules,
                                                     device_name=device_name)
    parents = list(request.parents)
    user = _env().get_template(f"{request.stage}.j2").render(
        task_source=request.task_source.strip(), target_name=name, device_facts=request.device_facts,
        examples=list(request.examples), parent=parents[0] if parents else None, parents=parents,
        best_speedup=request.best_speedup)
    return system, user
