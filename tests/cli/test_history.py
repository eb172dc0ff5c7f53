"""`kernelwright runs` and `show` on a store with a known history: whole ids, the re-judged
figure first, the search's figures labelled, the lineage as a tree."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from kernelwright.cli.main import main
from kernelwright.store import Store

TASK_SOURCE = "import torch\nclass Model(torch.nn.Module):\n    pass\n"


def _accept(store: Store, cid: str, speedup: float) -> None:
    store.record_verdict(cid, verdict="accepted", reasons=[], speedup_vs_eager=speedup, speedup_vs_compile=None,
                         candidate_ms=1.0, eager_ms=speedup, compile_ms=None, result_json="{}",
                         judge_seconds=1.0)


def _history(tmp_path: Path, crowned: bool = True) -> tuple[str, str, dict[str, str]]:
    """A run: a translation, two mutations of it, a crossover of the two, one wrong candidate."""
    db = str(tmp_path / "kw.db")
    with Store(db) as store:
        run = store.create_run(tmp_path / "task.py", TASK_SOURCE, "elementwise", "cpu", {"budget": 6})
        ids = {"root": store.add_candidate(run, source="# root", proposer="inductor", stage="translate",
                                           note="Inductor's generated C++ kernels, standalone")}
        ids["m1"] = store.add_candidate(run, source="# m1", proposer="mutate", stage="optimize",
                                        note="KW_CHUNK 64 -> 128", parent_ids=[ids["root"]])
        ids["m2"] = store.add_candidate(run, source="# m2", proposer="mutate", stage="optimize",
                                        note="KW_THREADS 2 -> 1", parent_ids=[ids["root"]])
        ids["x"] = store.add_candidate(run, source="# x", proposer="mutate", stage="crossover",
                                       parent_ids=[ids["m1"], ids["m2"]])
        ids["bad"] = store.add_candidate(run, source="# bad", proposer="mutate", stage="optimize",
                                         parent_ids=[ids["root"]])
        for key, speed in (("root", 1.50), ("m1", 1.62), ("m2", 0.90), ("x", 1.94)):
            _accept(store, ids[key], speed)
        store.record_verdict(ids["bad"], verdict="rejected", reasons=[{"check": "mismatch", "detail": "off"}],
                             speedup_vs_eager=None, speedup_vs_compile=None, candidate_ms=None, eager_ms=None,
                             compile_ms=None, result_json="{}", judge_seconds=1.0)
        if crowned:
            store.record_crowning(run, candidate_id=ids["x"], path=str(tmp_path / "runs" / run / "best.py"),
                                  speedup_vs_eager=1.69, speedup_vs_eager_interval=(1.58, 1.80),
                                  speedup_vs_compile=0.80, note="re-judged in a fresh process",
                                  rejudged=[{"candidate_id": ids["x"], "verdict": "accepted",
                                             "speedup_vs_eager": 1.69, "reasons": []}],
                                  result={"verdict": "accepted"})
        store.set_run_status(run, "finished")
    return db, run, ids


def _cli(*args: str, columns: int = 100) -> str:
    result = CliRunner().invoke(main, list(args), env={"COLUMNS": str(columns)}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("columns", [40, 60, 80, 100, 200])
def test_runs_never_cuts_an_id(tmp_path, columns):
    db, run, _ = _history(tmp_path)
    out = _cli("runs", "--store", db, columns=columns)
    assert run in out, out
    assert "…" not in out
    assert "1.69x" in out and "1.94x" in out


def test_runs_json_reports_the_rejudged_figure_and_labels_the_search(tmp_path):
    db, run, _ = _history(tmp_path)
    row = json.loads(_cli("runs", "--store", db, "--json"))["runs"][0]
    assert row["run_id"] == run
    assert row["speedup_vs_eager"] == 1.69 and row["speedup_vs_eager_interval"] == [1.58, 1.80]
    assert row["search_best_speedup_vs_eager"] == 1.94 and row["proposals"] == 5


def test_show_prints_path_rejudged_figure_first_and_the_lineage_tree(tmp_path):
    db, run, ids = _history(tmp_path)
    out = _cli("show", run, "--store", db)
    lines = out.splitlines()
    assert f"best kernel: {tmp_path / 'runs' / run / 'best.py'}" in out
    first_figure = next(ln for ln in lines if re.search(r"\d\.\d\dx", ln))
    assert "re-judged" in first_figure and "1.69x (95% interval 1.58-1.80x)" in first_figure
    # The tree: the crowned crossover at the top, its two parents under it, the shared root
    # expanded once; every search figure labelled.
    tree = [ln for ln in lines if ids["x"] in ln or ids["m1"] in ln or ids["m2"] in ln or ids["root"] in ln]
    assert ids["x"] in tree[0] and "1.94x (search)" in tree[0] and "mutate/crossover" in tree[0]
    assert any(ids["m1"] in ln and "KW_CHUNK 64 -> 128" in ln and "mutate/optimize" in ln for ln in tree)
    assert any(ids["m2"] in ln and "0.90x (search)" in ln for ln in tree)
    assert sum(ids["root"] in ln for ln in tree) == 2 and out.count("(shown above)") == 1
    assert any(ch in out for ch in "└├")
    assert "reject reasons: mismatch 1" in out and "verdicts: accepted 4, rejected 1" in out


def test_show_json_has_the_crowning_and_the_tree(tmp_path):
    db, run, ids = _history(tmp_path)
    data = json.loads(_cli("show", run, "--store", db, "--json"))
    assert data["best"]["candidate_id"] == ids["x"] and data["best"]["speedup_vs_eager"] == 1.69
    assert data["search_best"]["candidate_id"] == ids["x"] and data["search_best"]["speedup_vs_eager"] == 1.94
    top = data["lineage"]
    assert top["candidate_id"] == ids["x"]
    assert [p["candidate_id"] for p in top["parents"]] == [ids["m1"], ids["m2"]]
    assert top["parents"][0]["parents"][0]["candidate_id"] == ids["root"]
    assert data["candidates"]["by_reason"] == {"mismatch": 1}


def test_an_uncrowned_run_says_so_and_shows_the_search_lineage(tmp_path):
    db, run, ids = _history(tmp_path, crowned=False)
    out = _cli("show", run, "--store", db)
    assert "best kernel: none (no re-judgement recorded" in out
    assert "1.94x (search)" in out
    row = json.loads(_cli("runs", "--store", db, "--json"))["runs"][0]
    assert row["speedup_vs_eager"] is None and row["crowned"] is False


def test_a_crowning_is_replaced_not_duplicated_and_checks_its_arguments(tmp_path):
    db, run, ids = _history(tmp_path)
    with Store(db) as store:
        store.record_crowning(run, candidate_id=None, path=None, note="no finalist held up")
        assert store.crowning(run).candidate_id is None and store.crowning(run).note == "no finalist held up"
        with pytest.raises(ValueError):
            store.record_crowning(run, candidate_id=ids["x"], path=None, note="x")
