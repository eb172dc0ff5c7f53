"""Where the original module of a result comes from: the caller's instance, or the task file."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn as nn

from kernelwright.api._signature import InputSignature, task_signatures
from kernelwright.api._verified_module import forked_rng, seed_all

# The seed both the original (from a task file) and ModelNew are built under, in this
# process: the same seed for both, as the judge does, so a ModelNew parameter that is not
# copied by name still starts from the same values as its counterpart in Model.
_BUILD_SEED = 0


class Origin(Protocol):
    """The original module, the weights to copy into ModelNew, and how to build ModelNew."""

    def parts(self, device: str) -> tuple[nn.Module, dict[str, torch.Tensor], list[Any], int, bool]:
        """(original module, its state by name, ModelNew's init inputs, build seed, eval mode)."""
        ...


class ModuleOrigin:
    """The caller's own module: its current weights; ModelNew takes no init inputs."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def parts(self, device: str) -> tuple[nn.Module, dict[str, torch.Tensor], list[Any], int, bool]:
        """See Origin.parts; the weights are read now, so later training of the module is not seen."""
        state = {k: v.detach() for k, v in self.module.state_dict().items()}
        return self.module, state, [], _BUILD_SEED, False


class TaskOrigin:
    """A task file, executed in this process; Model is built once, on first use."""

    def __init__(self, path: Path) -> None:
        from kernelwright.task.loader import load_task

        self.path = path
        self.meta = load_task(path).meta
        self._module: types.ModuleType | None = None
        self._model: nn.Module | None = None

    def task_module(self) -> types.ModuleType:
        """The task file as a module (executed once)."""
        if self._module is None:
            name = f"kernelwright_task_{abs(hash(str(self.path.resolve())))}"
            module = types.ModuleType(name)
            module.__file__ = str(self.path)
            sys.modules[name] = module
            try:
                exec(compile(self.path.read_text(encoding="utf-8"), str(self.path), "exec"), module.__dict__)
            except BaseException:
                sys.modules.pop(name, None)
                raise
            self._module = module
        return self._module

    def signatures(self, device: str) -> tuple[InputSignature, ...]:
        """The default shape's signature, then the metadata shapes', on the judge's device."""
        return task_signatures(self.task_module(), self.meta.shapes, device)

    def parts(self, device: str) -> tuple[nn.Module, dict[str, torch.Tensor], list[Any], int, bool]:
        """See Origin.parts; Model(*get_init_inputs()) is built under the seed ModelNew gets."""
        task = self.task_module()
        with forked_rng(device):
            seed_all(_BUILD_SEED)
            init = list(task.get_init_inputs())
            if self._model is None:
                seed_all(_BUILD_SEED)
                model = task.Model(*init)
                if self.meta.eval_mode:
                    model.eval()
                self._model = model.to(device)
        state = {k: v.detach() for k, v in self._model.state_dict().items()}
        return self._model, state, init, _BUILD_SEED, self.meta.eval_mode
