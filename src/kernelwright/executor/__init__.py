"""Where a bench's verdicts run: this process's judge (`local`) or a Ray cluster (`ray`).

One interface, `Executor.judge`: jobs in, one outcome per job out as each finishes. An
executor only returns verdicts; the driver (bench/run.py) alone writes the store and
results.jsonl, so many judging slots never write one file. A verdict never depends on the
executor: each is the same `verify_files` on the same files, in the same sandboxed worker
processes, wherever it runs.
"""

from kernelwright.executor._base import Executor, JudgeJob, JudgeOutcome, judge_here
from kernelwright.executor._registry import EXECUTORS, get_executor

__all__ = ["EXECUTORS", "Executor", "JudgeJob", "JudgeOutcome", "get_executor", "judge_here"]
