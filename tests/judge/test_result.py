"""Check names are the `Check` enum, yet print, compare and serialize as the strings they always were."""

from __future__ import annotations

import json

from kernelwright.judge.result import Check, JudgeResult, Reason


def test_a_check_is_its_string_everywhere_it_shows() -> None:
    c = Check.TIMED_OUTPUT
    assert c == "timed_output" and hash(c) == hash("timed_output") and {"timed_output": 1}[c] == 1
    assert str(c) == f"{c}" == "%s" % c == "timed_output"
    assert json.dumps(c) == '"timed_output"'


def test_verdict_json_is_unchanged() -> None:
    result = JudgeResult("rejected", [Reason(Check.MISMATCH, "trial 0: wrong")], [], None, [], {})
    assert result.checks == ["mismatch"]
    assert json.dumps(result.to_dict()) == (
        '{"verdict": "rejected", "reasons": [{"check": "mismatch", "detail": "trial 0: wrong"}], '
        '"correctness": [], "timing": null, "findings": [], "environment": {}, "phases_s": {}}')
    assert type(result.to_dict()["reasons"][0]["check"]) is str
