"""The executors by name (`--executor`)."""

from __future__ import annotations

from typing import Callable

from kernelwright.executor._base import Executor


def _local(address: str | None) -> Executor:
    from kernelwright.executor._local import LocalExecutor

    return LocalExecutor()


def _ray(address: str | None) -> Executor:
    from kernelwright.executor._ray import RayExecutor

    return RayExecutor(address)


EXECUTORS: dict[str, Callable[[str | None], Executor]] = {"local": _local, "ray": _ray}


def get_executor(name: str, address: str | None = None) -> Executor:
    """The executor called `name` (`local` or `ray`); `address` is a Ray cluster's (ray only)."""
    if name not in EXECUTORS:
        from kernelwright.task.loader import InputError

        raise InputError(f"unknown executor {name!r}: one of {', '.join(EXECUTORS)}")
    return EXECUTORS[name](address)
