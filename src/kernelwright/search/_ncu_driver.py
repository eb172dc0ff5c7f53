"""Run a candidate a few times under Nsight Compute (started by `kernelwright.search.ncu`).

    python -m kernelwright.search._ncu_driver TASK CANDIDATE

Runs in its own sandboxed process; what it prints is feedback for proposers only.
"""

from __future__ import annotations

import sys
import types

import torch


def _load(path: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    with open(path) as fh:
        exec(compile(fh.read(), path, "exec"), module.__dict__)  # noqa: S102 - a sandboxed profiling run
    return module


def main() -> None:
    """Build ModelNew from the task's init inputs and call it three times on the task's inputs."""
    task = _load(sys.argv[1], "kw_task")
    cand = _load(sys.argv[2], "kw_candidate")
    model = cand.ModelNew(*task.get_init_inputs())
    if isinstance(model, torch.nn.Module):
        model = model.cuda()
    inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in task.get_inputs()]
    with torch.no_grad():
        for _ in range(3):
            model(*inputs)
    torch.cuda.synchronize()


if __name__ == "__main__":
    main()
