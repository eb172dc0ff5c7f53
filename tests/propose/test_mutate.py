"""Parameter mutation: finds launch/tiling literals, moves them one step, keeps both sides consistent."""

from __future__ import annotations

import random

from kernelwright.propose.base import Parent, ProposalRequest
from kernelwright.propose.mutate import MutationProposer, find_tunables, has_fresh_step, mutate, neighbours, steps

TRITON = '''
BLOCK_M, BLOCK_N, BLOCK_K = 64, 64, 32
grid = (triton.cdiv(M, BLOCK_M),)
kernel[grid](x, y, BLOCK_SIZE=1024, num_warps=4, num_stages=3)
'''

CUDA = '''
#define TILE 16
constexpr int kThreads = 256;
const int vec_width = 4;
src = """
__global__ void k(float* x) { int i = threadIdx.x + blockIdx.x * kThreads; }
"""
k<<<blocks, kThreads>>>(x);
'''


def test_finds_python_triton_and_c_parameters():
    names = {(t.name, t.value) for t in find_tunables(TRITON)}
    assert names == {("BLOCK_M", 64), ("BLOCK_N", 64), ("BLOCK_K", 32), ("BLOCK_SIZE", 1024),
                     ("num_warps", 4), ("num_stages", 3)}
    assert {(t.name, t.value) for t in find_tunables(CUDA)} == {("TILE", 16), ("kThreads", 256),
                                                                  ("vec_width", 4)}


def test_ignores_unrelated_numbers():
    assert find_tunables("n = 1024\nx = torch.randn(64, 64)\nscale = 2\n") == []


def test_neighbours_respect_limits():
    [warps] = [t for t in find_tunables("f(num_warps=32)")]
    assert neighbours(warps) == [16]  # 64 warps is over the hardware's limit
    [odd] = find_tunables("BLOCK = 96\n")
    assert all(v != 96 and v > 0 for v in neighbours(odd))


def test_mutate_changes_one_or_two_parameters_and_says_which():
    for seed in range(8):
        new, note = mutate(TRITON, random.Random(seed))
        assert new != TRITON and " -> " in note
        changed = [(a, b.value) for a, b in zip(find_tunables(TRITON), find_tunables(new)) if a.value != b.value]
        assert 1 <= len({a.name for a, _ in changed}) <= 2
        for old, value in changed:
            assert value in neighbours(old) and f"{old.name} {old.value} -> {value}" in note


def test_same_named_definitions_move_together():
    src = "BLOCK = 128\ncode = '#define BLOCK 128'\n"
    new, _ = mutate(src, random.Random(1))
    values = {t.value for t in find_tunables(new)}
    assert len(values) == 1 and values != {128}


def test_proposer_needs_a_parent_and_tunables():
    p = MutationProposer()
    req = ProposalRequest("task", "t", "cpp", "cpu", "optimize")
    assert p.propose(req).failure
    req = ProposalRequest("task", "t", "cpp", "cpu", "optimize", parents=(Parent("c-1", "x = 1\n", "accepted"),))
    assert "no launch or tiling parameter" in p.propose(req).failure
    req = ProposalRequest("task", "t", "triton", "cuda", "optimize", parents=(Parent("c-2", TRITON, "accepted"),),
                          seed=5)
    prop = p.propose(req)
    assert prop.source and prop.source != TRITON and prop.parent_ids == ("c-2",)


def test_applicable_only_with_a_tunable_parent():
    p = MutationProposer()
    no = ProposalRequest("task", "t", "cpp", "cpu", "optimize", parents=(Parent("c-1", "x = 1\n", "accepted"),))
    yes = ProposalRequest("task", "t", "cpp", "cpu", "optimize", parents=(Parent("c-2", TRITON, "accepted"),))
    assert not p.applicable(no) and p.applicable(yes)
    assert not p.applicable(ProposalRequest("task", "t", "cpp", "cpu", "optimize"))


def test_constexpr_derived_from_the_shape_is_not_a_knob():
    src = "def k(x, XBLOCK: tl.constexpr):\n    R0_BLOCK: tl.constexpr = 1024\n\nXBLOCK = 8\n"
    assert [(t.name, t.value) for t in find_tunables(src)] == [("XBLOCK", 8)]


RANGED = '''
constexpr int OMP_TEAM_CAP = 4;  // range 1..4
constexpr int64_t OMP_CHUNK_0 = 97984;  // range 1..97984
constexpr int64_t OMP_CHUNK_1 = 200000;
'''


def test_a_stated_range_bounds_the_knob_and_allows_large_values():
    found = {t.name: t for t in find_tunables(RANGED)}
    # Without a range, 97984 would be a size, not a knob; with one it is a chunk.
    assert set(found) == {"OMP_TEAM_CAP", "OMP_CHUNK_0"}
    assert found["OMP_TEAM_CAP"].bounds == (1, 4) and neighbours(found["OMP_TEAM_CAP"]) == [2]
    # Halved and doubled whatever the value, clamped so that the range's end stays reachable.
    assert neighbours(found["OMP_CHUNK_0"]) == [48992]
    [mid] = [t for t in find_tunables(RANGED.replace("= 97984;", "= 30001;")) if t.name == "OMP_CHUNK_0"]
    assert neighbours(mid) == [15000, 60002]
    [top] = [t for t in find_tunables(RANGED.replace("= 97984;", "= 60000;")) if t.name == "OMP_CHUNK_0"]
    assert neighbours(top) == [30000, 97984]
    assert find_tunables("constexpr int OMP_TEAM_CAP = 1;  // range 1..1\n")[0].bounds == (1, 1)
    assert neighbours(find_tunables("constexpr int OMP_TEAM_CAP = 1;  // range 1..1\n")[0]) == []


def test_steps_enumerate_every_one_and_two_knob_move():
    assert sorted(note for _, note in steps(RANGED, 1)) == ["OMP_CHUNK_0 97984 -> 48992", "OMP_TEAM_CAP 4 -> 2"]
    [(both, note)] = steps(RANGED, 2)
    assert note == "OMP_CHUNK_0 97984 -> 48992, OMP_TEAM_CAP 4 -> 2"
    assert "OMP_TEAM_CAP = 2;" in both and "OMP_CHUNK_0 = 48992;" in both


def test_applicable_until_every_step_of_the_parent_was_proposed():
    p = MutationProposer()
    req = ProposalRequest("task", "t", "c", "cpu", "optimize", parents=(Parent("c-1", RANGED, "accepted"),))
    sources = set()
    for seed in range(3):
        assert p.applicable(req)
        prop = p.propose(ProposalRequest(**{**req.__dict__, "seed": seed}))
        assert prop.source and prop.source not in sources and prop.parent_ids == ("c-1",)
        sources.add(prop.source)
    # Three moves exist (each knob alone, both): all proposed, so none is left for this parent.
    assert not p.applicable(req) and not has_fresh_step(RANGED, sources | {RANGED})
    assert p.propose(req).failure
