"""Loading and validating KernelBench-format tasks and candidates."""

from kernelwright.task.loader import (
    CandidateSource, InputError, TaskSource, load_candidate, load_task,
)
from kernelwright.task.metadata import TaskError, TaskMeta

__all__ = ["CandidateSource", "InputError", "TaskError", "TaskMeta", "TaskSource",
           "load_candidate", "load_task"]
