"""A batch's perturbation plans, made together, move exactly what the reference's `perturb` moves
for each call: the reference reproduces any checked call's inputs from (seed, index) alone."""

import torch

from kernelwright.worker.harness import apply_perturbation, perturb, perturb_plans


def _sets() -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(37, 11, generator=g), torch.arange(50, dtype=torch.int64)),
            (torch.randn(5, generator=g), torch.randn(3, 3, generator=g).t())]  # a non-contiguous leaf: left alone


def test_plans_made_together_move_what_perturb_moves_call_by_call():
    sets = _sets()
    ids = [0, 1, 0, 1, 0]
    seed = 123456789
    plans = perturb_plans([(sets[s], i) for i, s in enumerate(ids)], seed)
    for i, s in enumerate(ids):
        before = [t.clone() for t in sets[s]]
        undo = apply_perturbation(plans[i])
        batched = [t.clone() for t in sets[s]]
        undo()
        assert all(torch.equal(a, b) for a, b in zip(sets[s], before)), "the undo restores the set"
        alone = [t.clone() for t in sets[s]]
        perturb(tuple(alone), seed, i)
        assert all(torch.equal(a, b) for a, b in zip(batched, alone)), f"call {i} moved other values"
        assert any(not torch.equal(a, b) for a, b in zip(batched, before)), f"call {i} moved nothing"


def test_each_call_moves_other_positions():
    sets = _sets()
    plans = perturb_plans([(sets[0], i) for i in range(4)], 7)
    positions = {tuple(p[0][1].tolist()) for p in plans}
    assert len(positions) == 4
