"""Background processes stand still while the judge times (sandbox.quiet)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelwright.sandbox import node, quiet

SPIN = "import time\nwhile True:\n    sum(range(1000))\n"


@pytest.fixture(autouse=True)
def _private_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A lock folder of this test's own: another kernelwright timing on the machine meanwhile
    (a second test run) would stop the work registered here and add signals to the records."""
    monkeypatch.setenv(node.ENV_RUNTIME_DIR, str(tmp_path / "run"))
    monkeypatch.setattr(quiet, "_prober", None)


def _state(pid: int) -> str:
    # Field 3 of /proc/PID/stat: R running, S sleeping, T stopped.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _wait_state(pid: int, want: set[str], timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = _state(pid)
        if s in want:
            return s
        time.sleep(0.01)
    return _state(pid)


@pytest.fixture
def spinner():
    proc = subprocess.Popen([sys.executable, "-c", SPIN], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def test_registered_group_is_stopped_while_quiet_and_continued_after(spinner) -> None:
    with quiet.background(quiet.ProcessGroup(spinner.pid)):
        assert _wait_state(spinner.pid, {"R", "S"}) in {"R", "S"}
        with quiet.quiet():
            assert quiet.is_quiet()
            assert _wait_state(spinner.pid, {"T"}) == "T"
            with quiet.quiet():  # re-entrant: the inner exit does not continue anything
                pass
            assert _wait_state(spinner.pid, {"T"}) == "T"
        assert not quiet.is_quiet()
        assert _wait_state(spinner.pid, {"R", "S"}) in {"R", "S"}


def test_work_registered_during_a_quiet_period_is_stopped_at_once_and_never_left_stopped(spinner) -> None:
    with quiet.quiet():
        with quiet.background(quiet.ProcessGroup(spinner.pid)):
            assert _wait_state(spinner.pid, {"T"}) == "T"
        # Unregistered while still quiet: continued, so its owner can wait for or kill it.
        assert _wait_state(spinner.pid, {"R", "S"}) in {"R", "S"}


class _Recorder:
    def __init__(self) -> None:
        self.signals: list[int] = []

    def signal(self, sig: int) -> None:
        self.signals.append(sig)


def test_the_judge_is_quiet_exactly_around_its_timing(judge) -> None:
    """A real verdict stops background work once for its timing and continues it after."""
    rec = _Recorder()
    with quiet.background(rec):
        result = judge("gelu_mul", Path(__file__).parents[1] / "fixtures" / "candidates" / "gelu_mul_torch.py")
    assert result.accepted, result.reasons
    assert rec.signals == [signal.SIGSTOP, signal.SIGCONT, signal.SIGCONT]  # the last: unregistering
