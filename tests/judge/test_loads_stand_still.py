"""A verdict's loads are background work (issue 16): the candidate's import, which builds a
candidate nobody built ahead, and the reference's model construction stand still while another
process on this machine times, as a build ahead does, whatever slot or executor they belong to."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from kernelwright.judge.verify import VerifyOptions, verify_files
from kernelwright.sandbox import node, quiet
from tests.conftest import TASKS
from tests.sandbox.test_node_quiet import HOLDER

# Unconfined so that it can leave the wall time its import (its "build") began where the test reads it.
CANDIDATE = """
import time
from pathlib import Path

import torch
import torch.nn as nn

Path({stamp!r}).write_text(repr(time.time()))


class ModelNew(nn.Module):
    def forward(self, x, y):
        return torch.relu(x) + y
"""


@pytest.fixture
def runtime(tmp_path, monkeypatch) -> dict[str, str]:
    """A private lock folder for the test and its children (real judges elsewhere keep theirs)."""
    monkeypatch.setenv(node.ENV_RUNTIME_DIR, str(tmp_path / "run"))
    monkeypatch.setattr(quiet, "_prober", None)
    return dict(os.environ)


def test_a_candidate_s_import_waits_while_another_process_times(tmp_path, runtime) -> None:
    stamp = tmp_path / "imported_at"
    cand = tmp_path / "cand.py"
    cand.write_text(CANDIDATE.format(stamp=str(stamp)))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, "cpu"], stdout=subprocess.PIPE, text=True, env=runtime)
    try:
        assert holder.stdout.readline().strip() == "in"  # another slot is timing from here on
        result: list = []
        opts = VerifyOptions(device="cpu", threads=1, timing=False, confine=False)
        judge = threading.Thread(target=lambda: result.append(verify_files(TASKS / "relu_add.py", cand, opts)))
        judge.start()
        time.sleep(6.0)  # a worker's start (torch's import) is about 3 s here; its load would follow
        assert not stamp.exists(), "the candidate's import ran while another process was timing"
        released = time.time()
    finally:
        holder.kill()
        holder.wait()
    judge.join(timeout=300)
    assert result and str(result[0].verdict) == "accepted", result
    assert float(stamp.read_text()) >= released - 0.05
