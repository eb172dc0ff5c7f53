"""A verify command's workers started as it starts (judge.pairs.prespawn): taken only for the spec
its verdict asks for, closed otherwise, and possible only because the command line's first
imports leave torch out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

from kernelwright import constants as C
from kernelwright.judge import pairs
from kernelwright.judge.verify import VerifyOptions, pair_spec, verify_files
from tests.conftest import TASKS

OPTS = VerifyOptions(device="cpu", threads=1, compile_baseline=False)
SPEC = pair_spec(OPTS, "cpu")


def _fresh_slot() -> None:
    pairs.drop_prespawned()
    pairs._Early.used = False


def test_the_command_line_and_what_prespawn_needs_import_no_torch() -> None:
    # Otherwise the workers would start only after torch's import, and nothing would be gained.
    code = ("import sys, kernelwright.cli.main, kernelwright.judge.pairs, kernelwright.judge.options; "
            "from kernelwright.sandbox import buildcache; buildcache.toolchain_id(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_the_toolchain_read_without_torch_is_the_one_torch_reports() -> None:
    code = ("from kernelwright.sandbox import buildcache; a = buildcache.torch_versions(); import torch; "
            "assert a == (torch.__version__, str(torch.version.cuda)), a; print(a)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_a_verdict_takes_the_prespawned_pair_only_for_its_own_spec(tmp_path) -> None:
    cand = tmp_path / "identity.py"
    cand.write_text((TASKS / "relu_add.py").read_text() + "\n\nclass ModelNew(Model):\n    pass\n")
    _fresh_slot()
    try:
        pairs.prespawn(replace(SPEC, threads=2))  # not what the verdict below asks for
        assert pairs._Early.slot is not None
        other = pairs._Early.slot[1]
        result = verify_files(TASKS / "relu_add.py", cand, replace(OPTS, timing=False))
        assert not any("spawned as the command started" in f for f in result.findings)
        for w in other.workers():  # discarded, and its processes are gone
            assert w.proc.wait(timeout=30) is not None

        _fresh_slot()
        pairs.prespawn(SPEC)
        mine = pairs._Early.slot[1]
        result = verify_files(TASKS / "relu_add.py", cand, replace(OPTS, timing=False))
        assert result.accepted, result.reasons
        assert any("spawned as the command started" in f for f in result.findings), result.findings
        assert all(w.proc.poll() is not None for w in mine.workers())  # one verdict, then closed
        assert pairs.take_prespawned(SPEC) is None  # handed out once
    finally:
        _fresh_slot()


def test_a_pair_nobody_takes_is_closed_at_exit() -> None:
    _fresh_slot()
    try:
        pairs.prespawn(SPEC)
        pair = pairs._Early.slot[1]
        pairs.drop_prespawned()  # what atexit runs
        for w in pair.workers():
            assert w.proc.wait(timeout=30) is not None
    finally:
        _fresh_slot()


def test_verify_of_a_bad_task_with_prespawned_workers_still_exits_2_with_a_verdict(tmp_path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("this is not python(\n")
    env = dict(os.environ, **{C.PRESPAWN_ENV: "1"})
    out = subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "verify", str(bad), str(bad), "--json",
                          "--device", "cpu"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2, out.stderr
    assert json.loads(out.stdout)["verdict"] == "error"


def test_the_verify_command_closes_a_pair_its_verdict_did_not_take(tmp_path) -> None:
    from click.testing import CliRunner

    from kernelwright.cli.main import main

    bad = tmp_path / "bad.py"
    bad.write_text("this is not python(\n")
    _fresh_slot()
    seen: list[pairs.Pair] = []
    spawn = pairs.spawn_pair

    def spy(spec: pairs.PairSpec, with_ref: bool = True) -> pairs.Pair:
        seen.append(spawn(spec, with_ref))
        return seen[-1]

    pairs.spawn_pair = spy  # type: ignore[assignment]
    try:
        out = CliRunner().invoke(main, ["verify", str(bad), str(bad), "--json", "--device", "cpu"])
        left = pairs._Early.slot  # before this test's own clean-up
        assert out.exit_code == 2, out.output
        assert len(seen) == 1 and left is None
        for w in seen[0].workers():  # closed when the command ended, not left for another verdict
            assert w.proc.wait(timeout=30) is not None
    finally:
        pairs.spawn_pair = spawn  # type: ignore[assignment]
        _fresh_slot()
