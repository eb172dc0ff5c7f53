"""The errors the Python API raises, beyond those of the judge and the loader."""

from __future__ import annotations

from kernelwright.task.loader import InputError


class ConversionError(InputError):
    """An nn.Module (with its example inputs) cannot be turned into a task the judge can rebuild.

    A subclass of `InputError`, so of `ValueError`: the same family as a malformed task file
    (exit code 2 on the command line). The message is one paragraph: what failed, why, and
    what to do instead.
    """


class UnverifiedInputError(ValueError):
    """A verified module was called on inputs outside what the judge checked (`fallback="error"`)."""


class KernelRejectedError(RuntimeError):
    """`result.module` was asked for, but no kernel was accepted: there is nothing verified to run."""


class KernelFallbackWarning(UserWarning):
    """A verified module ran the original module on inputs the kernel was not verified on."""
