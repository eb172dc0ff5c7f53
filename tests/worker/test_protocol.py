"""The protocol module: every op is served, every served op is named, and no op is a bare string."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import kernelwright
from kernelwright import protocol as P
from kernelwright.worker.candidate import CandidateWorker
from kernelwright.worker.reference import ReferenceWorker

SRC = Path(kernelwright.__file__).resolve().parent


def _served(cls: type) -> set[str]:
    return {name.removeprefix("op_") for name in dir(cls) if name.startswith("op_")}


def test_every_op_is_served_and_every_handler_is_an_op() -> None:
    served = _served(CandidateWorker) | _served(ReferenceWorker)
    ops = {op.value for op in P.Op}
    assert served == ops - {P.Op.EXIT}  # exit is the request loop's own (worker.entry)


def test_an_unknown_op_is_refused_by_name() -> None:
    worker = CandidateWorker(hardening_problems=[])
    for header in ({"op": "make_set"}, {"op": "no_such_op"}, {"op": None}, {"op": ["load"]}):
        try:
            worker.handle(header, [])
        except ValueError as exc:
            assert str(exc) == f"unknown op {header['op']!r}"
        else:
            raise AssertionError(f"{header} was served")


def test_names_travel_as_their_strings() -> None:
    header = P.SetRequest(op=P.Op.RUN, set_id=3)
    assert type(header) is dict
    assert json.dumps(header) == '{"op": "run", "set_id": 3}'
    assert f"{P.Op.MAKE_SET}" == str(P.Op.MAKE_SET) == "make_set" == P.Op("make_set")
    assert {"ok": 1}[P.Status.OK] == 1 and {P.Target.NOOP: 1}["noop"] == 1


def test_no_op_name_is_a_string_literal_outside_the_protocol() -> None:
    """A request is built with `protocol.Op`, never `{"op": "load"}` (the grep, as a test)."""
    names = {op.value for op in P.Op}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        if path == SRC / "protocol.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "op" and \
                            isinstance(value, ast.Constant) and value.value in names:
                        found.append(f"{path.relative_to(SRC)}:{node.lineno}")
            elif isinstance(node, ast.keyword) and node.arg == "op" and \
                    isinstance(node.value, ast.Constant) and node.value.value in names:
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
            elif isinstance(node, ast.Compare) and any(
                    isinstance(c, ast.Constant) and c.value in names for c in node.comparators) and \
                    "op" in ast.unparse(node.left):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not found, found
