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


# Run in a fresh interpreter: confinement cannot be undone, and pytest's process must stay free.
THREADS_THEN_FILTER = '''
import ctypes, socket, threading
from kernelwright.sandbox import confine
ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs, as limits.harden_self
go, result = threading.Event(), []
def later():
    go.wait()
    try:
        socket.socket(socket.AF_UNIX).close()
        result.append("allowed")
    except OSError as exc:
        result.append(exc.strerror)
t = threading.Thread(target=later)
t.start()  # a thread already running when the filter goes on, as the CUDA driver's are
print(repr(confine.deny_unix_sockets()))
go.set()
t.join()
print(result[0])
'''


def test_the_socket_filter_binds_threads_that_already_run():
    r = subprocess.run([sys.executable, "-c", THREADS_THEN_FILTER], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["''", "Permission denied"]


OWN_PROC_ONLY = '''
import ctypes, os, sys, threading
from kernelwright.sandbox import confine
ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)
print(confine.apply().filesystem)
def name_thread():  # what the CUDA driver does with the threads it starts
    with open(f"/proc/self/task/{threading.get_native_id()}/comm", "wb") as f:
        f.write(b"kw-named")
t = threading.Thread(target=name_thread)
t.start()
t.join()
print("named")
try:  # raising another process's OOM score needs no privilege: the judge would be killed first
    with open(f"/proc/{sys.argv[1]}/oom_score_adj", "w") as f:
        f.write("999")
    print("other written")
except OSError as exc:
    print("other", exc.strerror)
'''


@pytest.mark.skipif(landlock_abi() < 3, reason="needs Landlock ABI 3 (truncation rights)")
@pytest.mark.parametrize("confined", [True, False], ids=["confined", "unconfined"])
def test_a_worker_writes_its_own_proc_files_and_no_one_elses(tmp_path, confined):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        env = dict(os.environ, KERNELWRIGHT_CONFINE="1" if confined else "0", KERNELWRIGHT_WRITABLE=str(tmp_path))
        r = subprocess.run([sys.executable, "-c", OWN_PROC_ONLY, str(other.pid)], capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split("\n")
        assert lines[1] == "named", r.stdout
        score = Path(f"/proc/{other.pid}/oom_score_adj").read_text().strip()
    finally:
        other.kill()
        other.wait()
    if confined:
        assert lines[0].startswith("landlock") and lines[2] == "other Permission denied", r.stdout
        assert score != "999"
    else:
        assert lines[2] == "other written" and score == "999", r.stdout


# A build-only worker (the search's prebuild) runs the candidate's import without a setup;
# the socket filter must be on before it.
TRIES_SOCKET = '''
import os
import socket
import torch.nn as nn

try:
    socket.socket(socket.AF_UNIX).close()
    said = "allowed"
except OSError as exc:
    said = exc.strerror
os.makedirs(os.environ["TORCH_EXTENSIONS_DIR"], exist_ok=True)
with open(os.path.join(os.environ["TORCH_EXTENSIONS_DIR"], "said"), "w") as f:
    f.write(said)


class ModelNew(nn.Module):
    pass
'''


@pytest.mark.skipif(landlock_abi() < 6, reason="needs Landlock ABI 6 (kernel 6.12 or later)")
def test_a_build_only_worker_is_sealed_before_the_import(tmp_path):
    from kernelwright.judge.prebuild import prebuild
    from kernelwright.sandbox import buildcache

    source = TRIES_SOCKET + f"# {tmp_path}\n"  # its own build directory
    result = prebuild(source, "cand.py", "cpu")
    assert result.ok, result.error
    said = buildcache.build_dir(source, "cpu") / "torch_extensions" / "said"
    assert said.read_text() == "Permission denied"
