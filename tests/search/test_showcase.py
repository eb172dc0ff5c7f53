"""The main job without an API key: Inductor's C++ kernel, then mutate's children of it, judged on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright.search.run import OptimizeRequest, optimize_task
from kernelwright.store import Store

# The README's first command's task. Its kernel runs for milliseconds, well clear of the timer
# checks' noise floor on a loaded 2-core machine (a 0.07 ms kernel was once rejected there
# as a timer disagreement when other jobs held both cores).
TASK = Path(__file__).resolve().parents[2] / "examples" / "elementwise" / "task.py"


@pytest.mark.slow
def test_inductor_then_mutate_children_with_their_lineage(tmp_path: Path) -> None:
    with Store(tmp_path / "kw.db") as store:
        req = OptimizeRequest(task=TASK, models=["inductor", "mutate"], budget=4, device="cpu",
                              out_dir=tmp_path / "out", parallel=1, seed=3, compile_baseline=False)
        summary = optimize_task(req, store)
        cands = store.candidates(summary["run_id"])
        assert summary["stop_reason"] == "proposal budget of 4 spent", summary
        [root] = [c for c in cands if c.proposer == "inductor"]
        children = [c for c in cands if c.proposer == "mutate"]
        assert root.verdict == "accepted", root.reasons
        assert len(children) == 3 and all(c.source and c.verdict == "accepted" for c in children), \
            [(c.failure, c.reasons) for c in children]
        ids = {c.id for c in cands}
        for child in children:
            # Each child names the knob it moved, and descends from Inductor's kernel.
            assert child.note and "OMP_" in child.note and " -> " in child.note, child.note
            lineage = [c.id for c in store.lineage(child.id)]
            assert lineage and set(lineage) <= ids and lineage[-1] == root.id
        assert len({c.source for c in children} | {root.source}) == 4  # no source proposed twice

        # A second run knows Inductor's kernel from the store (not judged again) and still
        # mutates it: a kernel judged before joins the population as one judged now.
        again = optimize_task(OptimizeRequest(**{**req.__dict__, "budget": 2, "seed": 4}), store)
        second = store.candidates(again["run_id"])
        [root2] = [c for c in second if c.proposer == "inductor"]
        assert root2.source == root.source and root2.verdict == "accepted"
        assert [c.parent_ids for c in second if c.proposer == "mutate"] == [(root2.id,)], second
