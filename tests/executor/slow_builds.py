"""Candidates of a slow-building form whose builds leave a trace, for the build pool tests.

Each is the `linear_relu` fixture task's honest candidate in form `cpp_inline` (its source calls
`load_inline(`, which forms.detect reads), but its "build" is a stand-in that takes BUILD_S: at
import it appends the command line of the process that started its worker to `imports.log` in
its build directory and, unless the directory says it is built, to `builds.log`, sleeps, and
marks the directory built. So the logs say how often the candidate was imported and built, and
by whom: the bench's driver (its build pool), a local slot process (`spawn_main`), or a Ray
worker (titled after its task's function). A failing one
logs, then raises as a failed `load_inline` build does (a `compile` rejection).
"""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.conftest import CANDIDATES

BUILD_S = 2.0
LOG = "builds.log"
IMPORTS = "imports.log"

# Put before the fixture's honest candidate: the stand-in build at import.
_PRELUDE = '''
import os
import time

TOKEN = "{token}"  # a fresh build directory for every test run


def _build():
    # Stands in for torch.utils.cpp_extension.load_inline(...): a slow build, once per directory.
    root = os.environ["TORCH_EXTENSIONS_DIR"]
    os.makedirs(root, exist_ok=True)
    with open("/proc/%d/cmdline" % os.getppid(), "rb") as f:
        importer = f.read().replace(b"\\0", b" ").decode(errors="replace")
    with open(os.path.join(root, "{imports}"), "a") as f:
        f.write(importer + "\\n")
    if os.path.exists(os.path.join(root, "built")):
        return
    with open(os.path.join(root, "{log}"), "a") as f:
        f.write(importer + "\\n")
    if {fail}:
        raise RuntimeError("Error building extension 'kw_stand_in': the stand-in compiler failed")
    time.sleep({build_s})
    open(os.path.join(root, "built"), "w").close()


_build()
'''


def slow_candidate(fail: bool = False) -> str:
    """The source of a fresh slow-building candidate (a new build directory), failing its build if asked."""
    honest = (CANDIDATES / "linear_relu_torch.py").read_text()
    return _PRELUDE.format(token=uuid.uuid4().hex, log=LOG, imports=IMPORTS, fail=fail, build_s=BUILD_S) + "\n" + honest


def builders(source: str, log: str = LOG) -> list[str]:
    """The command lines of the processes whose workers built `source`, one per build, in order
    (`log` IMPORTS: that imported it, built or not)."""
    from kernelwright.sandbox import buildcache

    path = buildcache.build_dir(source, "cpu") / "torch_extensions" / log
    return path.read_text().splitlines() if path.is_file() else []


def add_slow_candidates(cands: Path) -> dict[str, str]:
    """Two slow-building honest candidates and one whose build fails, for suite_fixture's
    `level2/1_LinearRelu` task (it has no other candidate); their sources by file name."""
    folder = cands / "level2" / "1_LinearRelu"
    folder.mkdir(parents=True, exist_ok=True)
    sources = {"slow_a.py": slow_candidate(), "slow_b.py": slow_candidate(), "slow_fails.py": slow_candidate(True)}
    for name, text in sources.items():
        (folder / name).write_text(text)
    return sources


class StubPairs:
    """A PairPool that starts nothing, for tests whose verdicts are stubbed."""

    def __init__(self, keep_reference: bool = False) -> None:
        pass

    def __enter__(self) -> StubPairs:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def expect(self, key: object) -> None:
        pass

    def refill(self, spec: object) -> None:
        pass
