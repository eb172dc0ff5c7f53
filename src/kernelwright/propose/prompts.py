"""Prompts as templates: one jinja2 file per stage; target rules and skeletons from `kernelwright.forms`.

Templates live in `kernelwright/propose/templates/`; nothing else in the package
builds prompt text, so a prompt change is a template change.
"""

from __future__ import annotations

from functools import lru_cache

import jinja2

from kernelwright import forms
from kernelwright.propose.base import ProposalRequest

@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("kernelwright.propose", "templates"),
                              undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)  # prompts are plain text, never HTML


def target_name(target: str) -> str:
    """How prompts name a target form ('CUDA C++ compiled by NVRTC', 'Triton', ...)."""
    return forms.get(target).language


def render(request: ProposalRequest) -> tuple[str, str]:
    """(system prompt, user prompt) for a request's stage."""
    form = forms.get(request.target)
    name = form.language
    device_name = "an NVIDIA GPU" if request.device == "cuda" else "the CPU"
    system = _env().get_template("system.j2").render(target_name=name, target_rules=form.rules,
                                                     device_name=device_name, skeleton=form.skeleton().strip())
    parents = list(request.parents)
    user = _env().get_template(f"{request.stage}.j2").render(
        task_source=request.task_source.strip(), target_name=name, device_facts=request.device_facts,
        examples=list(request.examples), parent=parents[0] if parents else None, parents=parents,
        best_speedup=request.best_speedup)
    return system, user
