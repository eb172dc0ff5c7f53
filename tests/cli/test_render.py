"""How speedups read on the terminal: a tie reads as a tie, whatever its point estimate."""

from kernelwright.cli.render import speedup_text
from kernelwright.judge.result import is_tie


def test_an_interval_holding_one_reads_as_a_tie_first() -> None:
    # An identical candidate of a host-bound KernelBench task read 1.64x on the H200 with the
    # interval 0.84-3.07x: the figure alone would read as a speedup.
    assert speedup_text(1.64, (0.84, 3.07)) == "tie: 1.64x (95% interval 0.84-3.07x)"
    assert speedup_text(0.82, [0.73, 1.0], compact=True) == "tie 0.82x [0.73-1.00]"


def test_a_speedup_or_slowdown_the_interval_shows_is_not_a_tie() -> None:
    assert speedup_text(1.49, (1.41, 1.57)) == "1.49x (95% interval 1.41-1.57x)"
    assert speedup_text(0.82, (0.73, 0.94), compact=True) == "0.82x [0.73-0.94]"
    assert speedup_text(1.49) == "1.49x" and speedup_text(None) == "-"
    assert not is_tie(None) and not is_tie((1.01, 1.2)) and is_tie((0.99, 1.01))
