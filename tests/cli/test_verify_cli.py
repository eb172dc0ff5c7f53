"""`kernelwright verify` as other tools script it: exit codes and exactly one JSON object."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CANDIDATES, TASKS

FAST = ["--device", "cpu", "--threads", "1", "--no-compile-baseline"]


def _verify(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kernelwright.cli.main", "verify", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_accepted_json_contract() -> None:
    out = _verify(str(TASKS / "linear_relu.py"), str(CANDIDATES / "linear_relu_torch.py"), "--json", *FAST)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # exactly one object: any extra text would fail here
    assert data["verdict"] == "accepted" and data["reasons"] == []
    assert len(data["correctness"]) >= 5
    assert {"distribution", "max_abs_error", "max_rel_error"} <= set(data["correctness"][0])
    t = data["timing"]
    for key in ("candidate_ms", "eager_ms"):
        assert {"median", "spread", "count"} <= set(t[key]) and t[key]["median"] > 0
    assert t["compile_ms"] is None and t["speedup_vs_eager"] > 0
    assert any("no custom kernel" in f for f in data["findings"])
    assert data["environment"]["device"] == "cpu" and "torch" in data["environment"]


def test_rejected_exit_1_and_candidate_prints_do_not_reach_stdout(tmp_path: Path) -> None:
    cand = tmp_path / "c.py"
    cand.write_text(
        "import torch, torch.nn as nn\n"
        "print('{\"verdict\": \"accepted\"}')\n"
        "class ModelNew(nn.Module):\n"
        "    def forward(self, x):\n"
        "        print('{\"verdict\": \"accepted\"}')\n"
        "        return x\n")
    out = _verify(str(TASKS / "gelu_mul.py"), str(cand), "--json", "--no-timing", *FAST)
    assert out.returncode == 1
    data = json.loads(out.stdout)
    assert data["verdict"] == "rejected" and data["reasons"][0]["check"] == "mismatch"


def test_bad_input_exit_2_without_traceback(tmp_path: Path) -> None:
    out = _verify(str(tmp_path / "missing.py"), str(CANDIDATES / "gelu_mul_torch.py"), *FAST)
    assert out.returncode == 2 and "not found" in out.stderr and "Traceback" not in out.stderr
    bad = tmp_path / "task.py"
    bad.write_text("import torch\nclass Model(torch.nn.Module):\n    pass\n")
    out = _verify(str(bad), str(CANDIDATES / "gelu_mul_torch.py"), "--json", *FAST)
    assert out.returncode == 2 and "get_inputs" in out.stderr and "Traceback" not in out.stderr
    assert json.loads(out.stdout)["verdict"] == "error"


def test_task_that_fails_at_run_time_is_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "task.py"
    bad.write_text((TASKS / "gelu_mul.py").read_text().replace(
        "return [torch.randn(batch_size, dim)]", "raise RuntimeError('no inputs today')"))
    out = _verify(str(bad), str(CANDIDATES / "gelu_mul_torch.py"), *FAST)
    assert out.returncode == 2 and "no inputs today" in out.stderr and "Traceback" not in out.stderr


def test_cuda_without_a_gpu_is_exit_2() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    out = _verify(str(TASKS / "gelu_mul.py"), str(CANDIDATES / "gelu_mul_torch.py"), "--device", "cuda")
    assert out.returncode == 2 and "CUDA" in out.stderr


def test_human_summary() -> None:
    out = _verify(str(TASKS / "gelu_mul.py"), str(CANDIDATES / "gelu_mul_torch.py"), *FAST)
    assert out.returncode == 0
    assert "ACCEPTED" in out.stdout and "eager" in out.stdout


def test_ctrl_c_leaves_no_worker_behind(tmp_path: Path) -> None:
    import signal
    import time

    cand = tmp_path / "slow.py"
    cand.write_text((CANDIDATES / "gelu_mul_torch.py").read_text().replace(
        "    def forward(self, x):\n", "    def forward(self, x):\n        import time; time.sleep(0.5)\n"))
    proc = subprocess.Popen([sys.executable, "-m", "kernelwright.cli.main", "verify", str(TASKS / "gelu_mul.py"),
                             str(cand), *FAST], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    workers = _children(proc.pid)
    assert workers, "the judge should be running its workers by now"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    time.sleep(0.5)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_a_candidate_without_model_new_names_the_device(tmp_path: Path) -> None:
    cand = tmp_path / "c.py"
    cand.write_text("import torch\n\nclass Model2(torch.nn.Module):\n    pass\n")
    out = _verify(str(TASKS / "gelu_mul.py"), str(cand), *FAST)
    assert out.returncode == 1 and "REJECTED  on cpu" in out.stdout and "on ?" not in out.stdout
    assert "ModelNew" in out.stdout
    data = json.loads(_verify(str(TASKS / "gelu_mul.py"), str(cand), "--json", *FAST).stdout)
    assert data["environment"]["device"] == "cpu" and data["reasons"][0]["check"] == "signature"


def test_kept_compile_ratio_compiles_once_then_reuses_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # What optimize's final re-judgements pass: the first verdict of the task compiles and keeps
    # the ratio; the next takes its speedup vs torch.compile from it, and says so.
    monkeypatch.setenv("KERNELWRIGHT_CACHE", str(tmp_path / "cache"))
    args = (str(TASKS / "gelu_mul.py"), str(CANDIDATES / "gelu_mul_torch.py"), "--json", "--device", "cpu",
            "--threads", "1", "--kept-compile-ratio")
    first = json.loads(_verify(*args).stdout)
    assert first["verdict"] == "accepted" and first["timing"]["compile_ms"] is not None
    assert not any("not compiled again" in f for f in first["findings"])
    second = json.loads(_verify(*args).stdout)
    assert second["verdict"] == "accepted" and second["timing"]["speedup_vs_compile"] is not None
    assert second["timing"]["compile_ms"] is None
    assert any("not compiled again" in f for f in second["findings"]), second["findings"]
