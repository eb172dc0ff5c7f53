"""Where a bench's verdicts run: this process's judge (`local`) or a Ray cluster (`ray`).

One interface, `Executor.judge`: jobs in, one outcome per job out as each finishes;
`Executor.search` likewise runs whole searches (`bench --optimize`), each into a private
store. An executor only returns verdicts and private stores; the driver (bench/run.py) alone
writes the bench's store (merging each search's run into it) and results.jsonl, so many
judging slots never write one file. A verdict never depends on the
executor: each is the same `verify_files` on the same files, in the same sandboxed worker
processes, wherever it runs.
"""

from kernelwright.executor._base import (
    STORE_FILE,
    Executor,
    JudgeJob,
    JudgeOutcome,
    SearchJob,
    SearchOutcome,
    judge_here,
    search_here,
)
from kernelwright.executor._optimize import optimize_elsewhere
from kernelwright.executor._registry import EXECUTORS, get_executor

__all__ = ["EXECUTORS", "STORE_FILE", "Executor", "JudgeJob", "JudgeOutcome", "SearchJob", "SearchOutcome",
           "get_executor", "judge_here", "optimize_elsewhere", "search_here"]
