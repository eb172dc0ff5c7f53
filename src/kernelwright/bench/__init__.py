"""Judging whole suites in KernelBench's layout (`kernelwright bench`).

`suite` finds the tasks and their candidates, `records` keeps one line per verdict in
`results.jsonl` (what makes an interrupted bench resume), `metrics` computes KernelBench's
fast_p and the geometric mean, `run` drives the judge over the suite.
"""

from kernelwright.bench.metrics import Summary, fast_p, geomean, summarize
from kernelwright.bench.records import BenchRow
from kernelwright.bench.run import BenchOptions, run_bench
from kernelwright.bench.suite import SuiteTask, find_candidates, find_tasks

__all__ = ["BenchOptions", "BenchRow", "Summary", "SuiteTask", "fast_p", "find_candidates", "find_tasks",
           "geomean", "run_bench", "summarize"]
