"""Population, archive retrieval and feedback: the pure parts of the search."""

from __future__ import annotations

import random
from dataclasses import dataclass

from kernelwright.judge.result import JudgeResult, Reason, Timing, TimingStats, TrialResult
from kernelwright.search.archive import retrieve, similarity
from kernelwright.search.feedback import feedback, trim_compiler_output
from kernelwright.search.population import Member, Population


def test_population_keeps_the_fastest_per_island_and_selects_by_speed():
    pop = Population(islands=2, size=3)
    for i in range(6):
        pop.add(Member(f"c{i}", f"src{i}", speedup=float(i), island=i % 2))
    assert len(pop) == 6 and pop.best().candidate_id == "c5"
    for i in range(6, 10):
        pop.add(Member(f"c{i}", f"src{i}", speedup=0.1, island=0))
    assert all(m.speedup > 0.1 for m in pop.islands[0])  # slow newcomers do not displace fast members
    rng = random.Random(0)
    picks = [pop.select(rng, 1).candidate_id for _ in range(200)]
    assert picks.count("c5") > picks.count("c1")  # tournament favours speed


def test_population_pairs_distinct_parents_and_ignores_duplicates():
    pop = Population(islands=2)
    pop.add(Member("a", "same", 1.0, 0))
    pop.add(Member("b", "same", 2.0, 0))
    assert pop.pair(random.Random(0)) is None  # one distinct source: no crossover
    pop.add(Member("c", "other", 1.5, 1))
    a, b = pop.pair(random.Random(0))
    assert a.source != b.source


@dataclass(frozen=True)
class Entry:
    candidate_id: str
    source: str
    task_source: str
    speedup_vs_eager: float


def test_archive_retrieves_similar_tasks_first():
    task = "return torch.softmax(x, dim=-1)"
    entries = [Entry("c1", "k1", "return torch.matmul(a, b)", 2.0), Entry("c2", "k2", "return torch.softmax(x, dim=1)", 3.0)]
    got = retrieve(task, entries, k=1)
    assert [p.candidate_id for p in got] == ["c2"] and got[0].task_source
    assert similarity(task, task) == 1.0


def test_feedback_trims_compiler_errors_and_never_shows_reference_values_unasked():
    log = "\n".join([f"note: line {i}" for i in range(500)] + ["kernel.cu(12): error: identifier x is undefined"])
    r = JudgeResult("rejected", [Reason("compile", log)], [], None, [], {})
    fb = feedback(r)
    assert "identifier x is undefined" in fb and len(fb) < 3000
    assert "note: line 3" not in trim_compiler_output(log)


def test_feedback_reports_timing_and_failing_trial():
    stats = TimingStats(0.5, 0.02, 100, 12)
    ok = JudgeResult("accepted", [], [], Timing(stats, TimingStats(1.0, 0.01, 100, 12), None, 2.0, None),
                     ["custom kernels ran: k1"], {})
    assert "2.00x" in feedback(ok) and "custom kernels ran" in feedback(ok)
    bad = JudgeResult("rejected", [Reason("mismatch", "3 of 10 elements outside tolerance")],
                      [TrialResult(0, "shifted", "default", 0.5, 0.1, 1.0, False)], None, [], {})
    assert "shifted" in feedback(bad) and "mismatch" in feedback(bad)
