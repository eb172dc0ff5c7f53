"""The README's sample outputs are what its commands print today.

Every fenced block of README.md whose first line is `$ kernelwright ...` is a sample: the
command is run here (from the repository root, on the CPU, with a scratch home so the store
and outputs land in a temporary folder) and its output compared with the block by *shape*:
numbers, run and candidate ids and paths are wildcards, white space and the length of table
rules do not count, and a line `...` in the block stands for any output. Labels, rows,
verdict words, reasons and their order must match, so a README whose format has drifted from
the commands fails here. A `--json` sample is checked by its keys: every key the block shows
must be in the object the command prints, at the same place. Several blocks of one command
are the outcomes it can have (`optimize` crowns a kernel, or on a busy machine none): the
output must have the shape of one of them.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# Wide enough that no sample cell wraps: wrapping moves words between table rows.
COLUMNS = "100"

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)


def samples(text: str) -> list[tuple[str, str]]:
    """(command, the block's output lines) for each `$ kernelwright` block of a Markdown text."""
    found = []
    for m in _FENCE.finditer(text):
        lines = m.group(1).splitlines()
        if not lines or not lines[0].startswith("$ kernelwright "):
            continue
        command, rest = lines[0][2:], lines[1:]
        while command.endswith("\\") and rest:  # a command continued over lines
            command, rest = command[:-1] + " " + rest[0].strip(), rest[1:]
        found.append((command, "\n".join(rest)))
    return found


def outcomes(text: str) -> list[tuple[str, list[str]]]:
    """(command, its sample blocks) for each command with a sample, in the README's order."""
    by_command: dict[str, list[str]] = {}
    for command, block in samples(text):
        by_command.setdefault(command, []).append(block)
    return list(by_command.items())


def shape(text: str) -> str:
    """The text with what varies between runs wildcarded and layout white space folded."""
    text = re.sub(r"\br-\d{8}-\d{6}-[0-9a-f]{6}\b", "RUN", text)
    text = re.sub(r"\bc-[0-9a-f]{12}\b", "CAND", text)
    # Why a search stopped depends on what its proposers found (`mutate` runs out of ideas in
    # some runs before the budget is spent): that it names a reason does not.
    text = re.sub(r"(?:proposal|token|cost) budget of \S+ spent|time limit of \S+ s reached|"
                  r"no proposer has anything left to try", "STOP_REASON", text)
    # A path has a letter in it: "3/4 trials" stays a count.
    text = re.sub(r"(?<![\w/])(?=[\w.~+/-]*[A-Za-z])(?:~|\.{1,2})?/?[\w.~+-]+(?:/[\w.~+-]+)+/?", "PATH", text)
    # Which proposer made the best kernel varies from run to run; that a proposer is named does not.
    text = re.sub(r"\b(?:inductor|mutate|scripted|openai|anthropic)(?::[\w.-]+)?\b", "PROPOSER", text)
    text = re.sub(r"(?<![A-Za-z_])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?", "N", text)
    # Which verdicts a search's proposals got (how many had no source, were rejected) varies
    # with what its proposers found: a list of counts stays a list of counts.
    text = re.sub(r"\b(?:accepted|rejected|error|no_source|no source|unjudged) N(?![/\w])"
                  r"(?:, (?:accepted|rejected|error|no_source|no source|unjudged) N(?![/\w]))*", "COUNTS", text)
    text = re.sub(r"[─━═]+", "─", text)
    text = re.sub(r"\s+", " ", text).strip()
    # Whether an interval holds 1.00x (a speedup printed as a tie) is the run's luck too.
    text = re.sub(r"\btie:? (?=Nx)", "", text)
    # Whether the judge calls a timing noisy depends on how busy the machine is (another job
    # on the cores), not on the command's format: the finding, wrapped or not, is dropped.
    text = re.sub(r"- timing was noisy: .*? a difference inside it is not a claim ?", "", text)
    # How differently the two processes ran the task's own Model is the machine's state too.
    return re.sub(r"- process control: .*? widened a further Nx each way ?", "", text).strip()


def matches(expected: str, actual: str) -> bool:
    """Whether `actual` has the shape of `expected`, where a line `...` in expected matches anything."""
    pieces = [shape(p) for p in re.split(r"(?m)^[ \t]*\.\.\.[ \t]*$", expected)]
    got = shape(actual)
    if len(pieces) == 1:
        return got == pieces[0]
    head, *middle, tail = pieces
    if not got.startswith(head):
        return False
    at = len(head)
    for piece in middle:
        found = got.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return got.endswith(tail) and len(got) - len(tail) >= at


def json_keys(obj: Any, prefix: str = "") -> set[str]:
    """Dotted paths of every key in a JSON value (list items share their list's path)."""
    out: set[str] = set()
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.add(prefix + k)
            out |= json_keys(v, prefix + k + ".")
    elif isinstance(obj, list):
        for v in obj:
            out |= json_keys(v, prefix)
    return out


def shown_keys(block: str) -> set[str]:
    """Dotted key paths in a trimmed JSON sample (`...` and `{...}` stand for what was cut)."""
    text = re.sub(r"\.\.\.", "", block)
    text = re.sub(r",\s*([}\]])", r"\1", text)
    text = re.sub(r"{\s*,", "{", text)
    return json_keys(json.loads(text))


def _run(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(command)
    assert argv[0] == "kernelwright"
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and k not in ("OPENAI_BASE_URL", "KERNELWRIGHT_STORE", "XDG_DATA_HOME")}
    env.update(HOME=str(home), COLUMNS=COLUMNS, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "kernelwright.cli.main", *argv[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1200)


# -- the comparison itself -------------------------------------------------------------

def test_shape_ignores_what_varies_and_catches_what_drifts() -> None:
    a = "speedup vs eager | 1.49x (re-judged in a fresh process)\nbest kernel: /x/runs/r-20261125-171426-733e59/best.py"
    b = "speedup vs eager   |   2.04x (re-judged in a fresh process)\nbest kernel: /home/u/.local/share/kernelwright/runs/r-20261201-213820-b91044/best.py"
    assert matches(a, b)
    assert not matches(a, b.replace("re-judged", "measured"))
    assert not matches(a, b.replace("best kernel:", "kernel:"))
    assert matches("stopped: proposal budget of 12 spent", "stopped: no proposer has anything left to try")
    assert matches("verdicts | accepted 12 |", "verdicts | accepted 8, no_source 1 |")
    assert not matches("verdicts | accepted 12 |", "verdicts | 12 |")
    assert not matches("stopped: proposal budget of 12 spent", "ended: proposal budget of 12 spent")
    assert matches("...\nverdicts: accepted N\n...", "live line\nverdicts: accepted 3\nmore")
    assert not matches("verdicts: accepted N\nreject reasons: -", "verdicts: accepted 3")
    assert matches("correctness: 3/4 trials passed", "correctness: 2/3 trials passed")
    noisy = ("  - static scan: uses timers\n  - timing was noisy: the 95% interval of the speedup vs eager is 0.90-1.10x\n"
             "after 12 rounds, across the 1.05x bar; a difference inside it is not a claim\n  - form: c")
    assert matches("  - static scan: uses timers\n  - form: c", noisy)
    assert not matches("  - static scan: uses timers\n  - form: c", noisy.replace("form: c", "form: cpp"))
    assert not matches("correctness: 3/4 trials passed", "correctness: N/A")
    control = ("  - form: c\n  - process control: the task's own Model ran 1.32x as fast in the candidate's process\n"
               "as in the reference's (95% interval 1.20-1.41x), so the speedup intervals are widened a further\n"
               "1.41x each way\n  - static scan: uses timers")
    assert matches("  - form: c\n  - static scan: uses timers", control)
    assert shown_keys('{"verdict": "accepted", "timing": {"candidate_ms": {"median": 0.9, ...}, ...}, ...}') == \
        {"verdict", "timing", "timing.candidate_ms", "timing.candidate_ms.median"}


def test_the_readme_has_samples_of_its_main_commands() -> None:
    commands = [c for c, _ in samples(README.read_text())]
    assert any(c.startswith("kernelwright optimize ") for c in commands)
    assert any(c.startswith("kernelwright verify ") and "--json" in c for c in commands)
    assert sum(c.startswith("kernelwright verify ") for c in commands) >= 2
    # Both outcomes of the main job: a crowned kernel, and none (exit 1) on a busy machine.
    optimize = [b for c, blocks in outcomes(README.read_text()) if c.startswith("kernelwright optimize ")
                for b in blocks]
    assert any("speedup vs eager" in b for b in optimize)
    assert any(re.search(r"best kernel\s*│\s*none:", b) for b in optimize)


@pytest.mark.slow
@pytest.mark.parametrize("command,blocks", outcomes(README.read_text()), ids=lambda v: v[:70] if isinstance(v, str) else "")
def test_readme_sample_matches_what_the_command_prints(command: str, blocks: list[str], tmp_path: Path) -> None:
    # Whether `optimize` crowns a kernel is a timing outcome (the re-judged interval's low end
    # against 1.05x), which a busy machine can deny: the README shows both outcomes, and the
    # output must have the shape of one. Which one is not this test's business.
    out = _run(command, tmp_path)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    if "--json" in command.split():
        data = json.loads(out.stdout)
        missing = set().union(*(shown_keys(b) for b in blocks)) - json_keys(data)
        assert not missing, f"the README shows keys that `{command}` no longer prints: {sorted(missing)}"
        return
    readme = "\n--- or:\n".join(blocks)
    assert any(matches(b, out.stdout) for b in blocks), (
        f"README sample of `{command}` no longer has the shape of its output.\n--- README:\n{readme}\n"
        f"--- printed now (exit {out.returncode}):\n{out.stdout}\n--- README shapes:\n"
        + "\n".join(shape(b) for b in blocks) + f"\n--- output shape:\n{shape(out.stdout)}")
