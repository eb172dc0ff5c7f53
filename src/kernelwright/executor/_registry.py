"""The executors by name (`--executor`)."""

from __future__ import annotations

from typing import Callable

from kernelwright.executor._base import Executor


def _local(address: str | None, slots: int | None) -> Executor:
    from kernelwright.executor._local import LocalExecutor

    return LocalExecutor(slots)


def _ray(address: str | None, slots: int | None) -> Executor:
    from kernelwright.executor._ray import RayExecutor

    if slots is not None:
        _refuse("--slots is the local executor's; a Ray cluster's slots are its GPUs (or, on the CPU, its nodes)")
    return RayExecutor(address)


EXECUTORS: dict[str, Callable[[str | None, int | None], Executor]] = {"local": _local, "ray": _ray}


def get_executor(name: str, address: str | None = None, slots: int | None = None) -> Executor:
    """The executor called `name` (`local` or `ray`); `address` is a Ray cluster's (ray only), `slots`
    the number of local judging slots (local only; None: one per visible GPU, one on the CPU)."""
    if name not in EXECUTORS:
        _refuse(f"unknown executor {name!r}: one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](address, slots)


def _refuse(message: str) -> None:
    from kernelwright.task.loader import InputError

    raise InputError(message)
