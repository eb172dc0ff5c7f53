"""Pre-started worker pairs: one verdict each, built into the candidate's own cache, never stale."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from kernelwright import forms
from kernelwright.judge.pairs import PairPool, PairSpec, start_pair
from kernelwright.judge.result import Check
from kernelwright.judge.verify import VerifyOptions, pair_spec, verify_files
from kernelwright.sandbox import buildcache
from kernelwright.sandbox.confine import Confinement
from tests.conftest import TASKS

OPTS = VerifyOptions(device="cpu", threads=1, compile_baseline=False)
# The pool must hold exactly what a verdict with OPTS asks for (memory limit, confinement),
# which depends on this machine's RAM: take it from the judge rather than restating it.
SPEC = pair_spec(OPTS, "cpu")


def test_pool_hands_out_a_started_pair_once_and_only_for_its_spec() -> None:
    with PairPool() as pool:
        assert pool.take(SPEC) is None  # nothing started yet: the caller starts its own
        pool.refill(SPEC)
        pair = pool.take(SPEC)
        try:
            assert pair is not None and pair.alive() and pair.environment and pair.start_s > 0
            assert pool.take(SPEC) is None  # handed out once
        finally:
            pair.close()
        pool.refill(SPEC)
        assert pool.take(replace(SPEC, threads=2)) is None  # another spec: discarded
        pool.refill(SPEC)
        dead = pool.take(SPEC)
        dead.cand.kill()
        assert not dead.alive()
        dead.close()


def test_a_pooled_verdict_builds_into_the_candidates_cache_and_the_next_gets_new_workers(tmp_path) -> None:
    source = forms.FORMS["c"].skeleton()
    cand = tmp_path / "cand.py"
    cand.write_text(source)
    seen: list[tuple[int, int]] = []
    with PairPool() as pool:
        _recording(pool, seen)
        pool.refill(SPEC)
        first = verify_files(TASKS / "relu_add.py", cand, OPTS, pool=pool)
        second = verify_files(TASKS / "relu_add.py", cand, OPTS, pool=pool)
    for result in (first, second):
        assert result.accepted, result.reasons
        assert any(f.startswith("workers: pre-started") for f in result.findings)
    # Two verdicts, two distinct pairs: no worker ever serves a second candidate.
    assert len(seen) == 2 and not set(seen[0]) & set(seen[1])
    # The pre-started candidate worker learned its content-keyed build directory at load.
    built = list(Path(buildcache.build_dir(source, "cpu")).rglob("*.so"))
    assert built, "the C library was not built into the candidate's build directory"


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["nvrtc", "triton"])
def test_a_pooled_gpu_verdict_uses_the_started_cuda_context(tmp_path, name) -> None:
    """The pair's CUDA context exists before the candidate is known; its kernels still build and run."""
    cand = tmp_path / "cand.py"
    cand.write_text(forms.FORMS[name].skeleton())
    opts = VerifyOptions(device="cuda", compile_baseline=False)
    with PairPool() as pool:
        pool.refill(pair_spec(opts, "cuda"))
        result = verify_files(TASKS / "relu_add.py", cand, opts, pool=pool)
    assert result.accepted, result.reasons
    assert any(f.startswith("workers: pre-started") for f in result.findings)
    assert any(f.startswith("custom kernels ran") for f in result.findings), result.findings


def test_closing_the_pool_halfway_through_a_start_kills_the_workers_at_once() -> None:
    pool = PairPool()
    pool.refill(SPEC)
    pids = [w.proc.pid for w in (pool._pending.pair.ref, pool._pending.pair.cand)]
    pool.close()  # the pair is still importing torch: no wait for it
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    pool.refill(SPEC)  # closed: nothing new starts
    assert pool.take(SPEC) is None


def test_the_next_pair_imports_ahead_stopped_while_timed_and_sets_up_once_nothing_is(monkeypatch, tmp_path) -> None:
    from kernelwright.judge.phases.timed import TimedPhase
    from kernelwright.sandbox import quiet

    cand = tmp_path / "cand.py"
    cand.write_text(forms.FORMS["c"].skeleton())
    pending_at: dict[str, bool] = {}
    with PairPool() as pool:
        real_floor, real_check = TimedPhase._floor, TimedPhase._check_timed_outputs

        def floor(self, *a, **k):
            # The ceilings may be measured here: the next pair is spawned (importing) but not set
            # up, and it stands still with all background work.
            held = pool._pending
            pending_at["floor"] = (held is not None and not held.go.is_set() and quiet._depth > 0
                                   and all(_stopped(w.proc.pid) for w in (held.pair.ref, held.pair.cand)))
            return real_floor(self, *a, **k)

        def check(self, *a, **k):
            # Told to set up, and not held still by the quiet period: it starts while the outputs are checked.
            held = pool._pending
            pending_at["timed outputs"] = held is not None and held.go.is_set() and quiet._depth == 0
            return real_check(self, *a, **k)

        monkeypatch.setattr(TimedPhase, "_floor", floor)
        monkeypatch.setattr(TimedPhase, "_check_timed_outputs", check)
        result = verify_files(TASKS / "relu_add.py", cand, OPTS, pool=pool)
    assert result.accepted, result.reasons
    assert pending_at == {"floor": True, "timed outputs": True}


def _stopped(pid: int) -> bool:
    """The process is stopped (SIGSTOP), or already gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t", "Z")
    except FileNotFoundError:
        return True


def _recording(pool: PairPool, seen: list[tuple[int, int]]) -> None:
    real_take = pool.take

    def take(spec: PairSpec, task: str = ""):
        pair = real_take(spec, task)
        if pair is not None:
            seen.append((pair.ref.proc.pid, pair.cand.proc.pid))
        return pair

    pool.take = take  # type: ignore[method-assign]


_ZEROS = ("import torch\nimport torch.nn as nn\n\n\nclass ModelNew(nn.Module):\n"
          "    def forward(self, *args):\n        return torch.zeros_like(args[0])\n")


def test_a_kept_reference_serves_the_next_verdicts_of_its_task_and_only_of_it(tmp_path) -> None:
    """A search's pool keeps the reference worker across verdicts of one task (a fresh candidate
    worker each time); a cheat's verdict in between changes nothing for the honest one after it,
    and another task gets a reference of its own."""
    honest, cheat = tmp_path / "honest.py", tmp_path / "zeros.py"
    honest.write_text(forms.FORMS["c"].skeleton())
    cheat.write_text(_ZEROS)
    seen: list[tuple[int, int]] = []
    with PairPool(keep_reference=True) as pool:
        _recording(pool, seen)
        first = verify_files(TASKS / "relu_add.py", honest, OPTS, pool=pool)
        if Confinement(**first.environment["confinement"]).missing():
            pytest.skip("the candidate's worker cannot be fully confined here: no reference is ever kept")
        second = verify_files(TASKS / "relu_add.py", cheat, OPTS, pool=pool)
        third = verify_files(TASKS / "relu_add.py", honest, OPTS, pool=pool)
        other = verify_files(TASKS / "gelu_mul.py", _skeleton_for(tmp_path), OPTS, pool=pool)
    assert first.accepted and third.accepted, (first.reasons, third.reasons)
    assert not second.accepted and second.reasons[0].check == Check.MISMATCH, second.reasons
    assert other.accepted, other.reasons
    reused = "the reference worker is the one of an earlier verdict of this task"
    assert not any(reused in f for f in first.findings)
    assert all(any(reused in f for f in r.findings) for r in (second, third))
    assert not any(reused in f for f in other.findings)
    # The first verdict started its own pair (nothing was pooled yet): three taken from the pool.
    refs, cands = [r for r, _ in seen], [c for _, c in seen]
    assert len(seen) == 3 and refs[0] == refs[1] and refs[2] != refs[0]
    assert len(set(cands)) == 3


def _skeleton_for(tmp_path: Path) -> Path:
    # gelu_mul takes the same one input as relu_add; the C skeleton computes relu_add, so give
    # gelu_mul the task's own Model as its candidate (honest, plain PyTorch).
    path = tmp_path / "gelu_identity.py"
    path.write_text((TASKS / "gelu_mul.py").read_text().replace("class Model(", "class ModelNew("))
    return path


def test_an_unconfined_candidates_reference_is_never_kept(tmp_path) -> None:
    honest = tmp_path / "honest.py"
    honest.write_text(forms.FORMS["c"].skeleton())
    opts = replace(OPTS, confine=False)
    seen: list[tuple[int, int]] = []
    with PairPool(keep_reference=True) as pool:
        _recording(pool, seen)
        for _ in range(3):
            result = verify_files(TASKS / "relu_add.py", honest, opts, pool=pool)
            assert result.accepted, result.reasons
            assert not any("earlier verdict of this task" in f for f in result.findings)
    assert len(seen) == 2 and seen[0][0] != seen[1][0]


def test_a_reference_stopped_by_another_process_or_failed_is_closed_not_kept() -> None:
    with PairPool(keep_reference=True) as pool:
        for spoil in ("stopped", "dead"):
            pool.take(SPEC, "t")  # a verdict under way
            pair = start_pair(SPEC)
            pair.cand.close()
            if spoil == "stopped":
                pair.ref.external_stops = 1
            else:
                pair.ref.proc.kill()
                pair.ref.proc.wait()
            pool.give_back(pair.ref, pair.environment, SPEC, "t")
            assert pool._kept is None and pair.ref.proc.poll() is not None
        pool.take(SPEC, "t")
        pair = start_pair(SPEC)
        pair.cand.close()
        pool.give_back(pair.ref, pair.environment, SPEC, "t")  # healthy: kept, told to forget
        assert pool._kept is not None and pool._kept.ref is pair.ref
        assert pool.take(SPEC, "another task") is None  # the kept one is for "t": closed
        assert pair.ref.proc.poll() is not None


def test_a_pool_told_the_next_task_spawns_a_reference_only_for_a_new_one() -> None:
    """bench tells the pool each next job's task: the same task gets the kept reference and a
    candidate worker spawned ahead; another task gets a whole pair spawned ahead."""
    with PairPool(keep_reference=True) as pool:
        pool.take(SPEC, "a")
        pair = start_pair(SPEC)
        pair.cand.close()
        pool.give_back(pair.ref, pair.environment, SPEC, "a")
        pool.expect("a")
        pool.spawn_ahead(SPEC)
        assert pool._pending.pair.ref is None  # the kept one serves "a"
        same = pool.take(SPEC, "a")
        assert same is not None and same.ref is pair.ref and same.ref.reused
        pool.expect("b")
        pool.spawn_ahead(SPEC)  # "a" is under way and will come back, but "b" is next
        assert pool._pending.pair.ref is not None
        pool.give_back(same.ref, same.environment, SPEC, "a")
        same.cand.close()
        other = pool.take(SPEC, "b")
        assert other is not None and other.ref is not pair.ref and pair.ref.proc.poll() is not None
        other.close()


def test_a_reference_started_for_the_compile_baseline_imports_the_compiler_as_it_starts() -> None:
    """A crown's pair is spawned during the search: its reference imports torch.compile's modules
    then, not inside the re-judgement's timing; any pair still serves any verdict."""
    from kernelwright.protocol import PRELOAD_COMPILER_ENV

    assert pair_spec(replace(OPTS, compile_baseline=True), "cpu").preload_compiler
    assert not pair_spec(replace(OPTS, compile_baseline=True, compile_ratio_cache=True), "cpu").preload_compiler
    assert not SPEC.preload_compiler
    preloading = replace(SPEC, preload_compiler=True)
    assert preloading == SPEC  # not part of what a pair is for
    with PairPool() as pool:
        pool.refill(preloading)
        pair = pool.take(SPEC)
        try:
            assert pair is not None and pair.alive()
            environ = Path(f"/proc/{pair.ref.proc.pid}/environ").read_bytes().split(b"\0")
            assert f"{PRELOAD_COMPILER_ENV}=1".encode() in environ
            cand_env = Path(f"/proc/{pair.cand.proc.pid}/environ").read_bytes().split(b"\0")
            assert not any(e.startswith(PRELOAD_COMPILER_ENV.encode()) for e in cand_env)
        finally:
            pair.close()
