"""A bench of the small suite, judged once for the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.suite_fixture import make_suite
from tests.bench.test_bench_cli import _bench

# Timed (the report plots speedups), without the slow torch.compile baseline on the CPU.
TIMED = ["--device", "cpu", "--no-compile-baseline", "--threads", "1"]


@pytest.fixture(scope="session")
def benched(tmp_path_factory) -> tuple[Path, Path]:
    """(OUT, store) of a bench of tests/bench's small suite: honest and cheating candidates, a broken task."""
    root = tmp_path_factory.mktemp("bench")
    suite, cands = make_suite(root)
    out, store = root / "out", root / "s.db"
    r = _bench(str(suite), "--candidates", str(cands), "--out", str(out), *TIMED, store=store)
    assert r.returncode == 0, r.stderr
    return out, store
