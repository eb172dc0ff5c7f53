"""The ncu summary: parsing Nsight Compute's CSV, and nothing (never an error) without ncu."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kernelwright.search import ncu

CSV = '''==PROF== Connected to process 123
"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"
"0","123","python","h","elementwise_kernel(const float *, float *, int)","1","7","(256, 1, 1)","(6124, 1, 1)","0","9.0","GPU Speed Of Light Throughput","DRAM Frequency","Ghz","2.62"
"0","123","python","h","elementwise_kernel(const float *, float *, int)","1","7","(256, 1, 1)","(6124, 1, 1)","0","9.0","GPU Speed Of Light Throughput","Memory Throughput","%","88.41"
"0","123","python","h","elementwise_kernel(const float *, float *, int)","1","7","(256, 1, 1)","(6124, 1, 1)","0","9.0","GPU Speed Of Light Throughput","Duration","us","21.82"
"0","123","python","h","elementwise_kernel(const float *, float *, int)","1","7","(256, 1, 1)","(6124, 1, 1)","0","9.0","GPU Speed Of Light Throughput","Compute (SM) Throughput","%","31.07"
'''


def test_summarize_reads_duration_and_throughputs():
    s = ncu.summarize(CSV)
    assert s == "ncu: elementwise_kernel 21.82 us, memory 88.41% of peak, compute 31.07% of peak"


def test_summarize_of_junk_is_empty():
    assert ncu.summarize("") == "" and ncu.summarize("==PROF== error\n") == ""


@pytest.mark.skipif(shutil.which("ncu") is not None, reason="ncu is installed here")
def test_no_ncu_means_no_summary(tmp_path: Path):
    assert not ncu.available()
    assert ncu.profile(tmp_path / "task.py", tmp_path / "cand.py") == ""
