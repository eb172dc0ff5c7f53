"""The candidate's confinement: what it reports, and refusing to judge without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelwright.judge.verify import VerifyOptions, verify_files
from kernelwright.sandbox.confine import Confinement, landlock_abi
from kernelwright.task.loader import InputError
from tests.conftest import TASKS

# Creates a file at import: it must never exist when the judge refuses to run the candidate.
MARKS_IMPORT = '''
import torch
import torch.nn as nn
import torch.nn.functional as F

open({marker!r}, "w").close()


class ModelNew(nn.Module):
    def forward(self, x):
        return F.gelu(x * 2 + 1) * torch.sigmoid(x)
'''


def test_missing_lists_every_part_not_fully_enforced():
    full = Confinement(network="namespace", unix_sockets="seccomp", filesystem="landlock abi 7",
                       signals="landlock scope", ptrace="landlock")
    assert full.missing() == []
    assert Confinement().missing() == ["filesystem", "unix_sockets", "signals", "ptrace", "network"]
    tcp_only = Confinement(network="tcp only (landlock)", unix_sockets="seccomp", filesystem="landlock abi 4",
                           ptrace="landlock")
    assert tcp_only.missing() == ["signals", "network"]


def test_required_confinement_refuses_before_the_candidate_runs(tmp_path):
    marker = tmp_path / "imported"
    cand = tmp_path / "cand.py"
    cand.write_text(MARKS_IMPORT.format(marker=str(marker)))
    opts = VerifyOptions(device="cpu", threads=1, compile_baseline=False, timing=False, confine=False,
                         require_confinement=True)
    with pytest.raises(InputError, match="--require-confinement"):
        verify_files(TASKS / "gelu_mul.py", cand, opts)
    assert not marker.exists()


def test_an_unconfined_verdict_says_so(tmp_path):
    cand = tmp_path / "cand.py"
    cand.write_text(MARKS_IMPORT.format(marker=str(tmp_path / "imported")))
    result = verify_files(TASKS / "gelu_mul.py", cand, VerifyOptions(device="cpu", threads=1, compile_baseline=False,
                                                                     timing=False, confine=False))
    assert result.accepted, result.reasons
    assert result.environment["confinement"]["filesystem"] == "none"
    assert any(f.startswith("sandbox: not confined: filesystem, unix_sockets, signals, ptrace, network") for f in result.findings)


@pytest.mark.skipif(landlock_abi() < 6, reason="needs Landlock ABI 6 (kernel 6.12 or later)")
def test_cli_reports_the_confinement_and_refuses_when_told(tmp_path):
    cand = tmp_path / "cand.py"
    cand.write_text(MARKS_IMPORT.format(marker=str(tmp_path / "imported")).replace("open(", "len(")
                    .replace(', "w").close()', ")"))
    base = [sys.executable, "-m", "kernelwright.cli.main", "verify", str(TASKS / "gelu_mul.py"), str(cand),
            "--device", "cpu", "--no-timing", "--json"]
    ok = subprocess.run(base + ["--require-confinement"], capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-2000:]
    conf = json.loads(ok.stdout)["environment"]["confinement"]
    assert conf["network"] == "namespace" and conf["signals"] == "landlock scope", conf
    refused = subprocess.run(base + ["--require-confinement", "--no-confine"], capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["verdict"] == "error"


def test_every_directory_a_rule_names_exists_before_the_worker_starts(tmp_path):
    # Regression test for a fixed bug; before the fix: on a fresh cache the precompiled-header
    # directory did not exist when a confined worker started, its Landlock rule was skipped, and
    # the header the judge built moments later could not be read (a compile error).
    from kernelwright.sandbox import confine
    from kernelwright.sandbox.limits import confine_env

    env = confine_env(tmp_path / "scratch", tmp_path / "build", True, str(tmp_path / "pch"))
    named = env[confine.ENV_WRITABLE].split(os.pathsep) + [env[confine.ENV_READABLE]]
    assert str(tmp_path / "pch") in named
    assert all(Path(p).is_dir() for p in named), named
