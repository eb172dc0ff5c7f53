"""The precompiled Inductor C++ prelude for Inductor-proposed candidates (sandbox.pch,
`inductor_include`): built by the trusted side for a candidate's literal, allow-listed flags,
used by its build through the worker's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelwright.sandbox import pch

FLAGS = ["-O2", "-DNDEBUG", "-fno-trapping-math", "-ffp-contract=off", "-std=c++17", "-fopenmp"]


def _source(flags: list[str]) -> str:
    return f"import torch\n\n_IND_CPP = 'int x;'\n_IND_CFLAGS = {flags!r}\n"


@pytest.mark.parametrize("flag", ["-fplugin=/tmp/evil.so", "-B/tmp", "-specs=/tmp/x", "-include/etc/passwd",
                                  "-fdump-tree-all", "-fprofile-generate", "-iquote/tmp", "-Wl,-rpath,/tmp"])
def test_a_flag_that_names_a_file_or_a_plugin_gets_no_header(flag, tmp_path):
    assert pch.inductor_flags(_source([*FLAGS, flag])) is None
    assert pch.inductor_include(tmp_path, _source([*FLAGS, flag])) is None
    assert not any(tmp_path.iterdir())  # nothing built, nothing run


def test_only_a_literal_list_is_read():
    assert pch.inductor_flags(_source(FLAGS)) == FLAGS
    assert pch.inductor_flags("import os\n_IND_CFLAGS = os.environ['X'].split()\n") is None
    assert pch.inductor_flags("x = 1\n") is None
    assert pch.inductor_flags("def (:\n") is None


@pytest.mark.slow
def test_the_prelude_is_built_once_and_a_build_uses_it(tmp_path):
    import torch

    src = _source(FLAGS)
    assert pch.inductor_include(tmp_path, src, build=False) is None  # a background build never compiles it
    inc = pch.inductor_include(tmp_path, src)
    assert inc is not None and (Path(inc) / (pch.CPP_PREFIX_H + ".gch")).exists()
    assert pch.inductor_include(tmp_path, src, build=False) == inc
    # A kernel source as the Inductor proposer writes it starts with the prelude: the compiler
    # reads the precompiled copy ("!" in -H's list) when the directory comes first.
    kernel = tmp_path / "k.cpp"
    kernel.write_text("#include <torch/csrc/inductor/cpp_prefix.h>\nextern \"C\" int kw_probe() { return 1; }\n")
    torch_inc = os.path.join(os.path.dirname(torch.__file__), "include")
    out = subprocess.run([os.environ.get("CXX", "c++"), *FLAGS, "-fPIC", "-H", "-Winvalid-pch", f"-I{inc}",
                          f"-I{torch_inc}", "-fsyntax-only", str(kernel)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert any(line.startswith("!") and line.rstrip().endswith("cpp_prefix.h.gch") for line in out.stderr.splitlines())


def test_the_worker_names_the_header_only_for_the_candidate_it_was_built_for(monkeypatch):
    from kernelwright.worker import candidate

    monkeypatch.delenv(pch.INDUCTOR_ENV, raising=False)
    candidate._share_torch_header("x = 1", "/pch/inductor")
    assert os.environ[pch.INDUCTOR_ENV] == "/pch/inductor"
    candidate._share_torch_header("x = 1", None)  # the next candidate, none built for it
    assert pch.INDUCTOR_ENV not in os.environ


@pytest.mark.slow
def test_soon_never_waits_builds_in_the_background_stopped_while_anything_is_timed(tmp_path):
    """A search's first Inductor candidate builds without the prelude rather than wait for it; the
    prelude's compiler runs as background work, which stands still during a quiet period."""
    import time

    from kernelwright.sandbox import quiet

    src = _source([*FLAGS, "-DKW_SOON_TEST"])  # flags of its own: no other test's header
    t0 = time.perf_counter()
    assert pch.inductor_include_soon(tmp_path, src) is None
    assert time.perf_counter() - t0 < 1.0  # did not wait for a compiler
    builder = next(t for t in pch._soon.values() if t.is_alive())
    assert pch.inductor_include_soon(tmp_path, src) is None  # one build per flags, not two
    assert sum(t.is_alive() for t in pch._soon.values()) == 1
    time.sleep(0.3)  # the compiler has started
    with quiet.quiet():
        time.sleep(0.2)
        compilers = _processes_naming(str(tmp_path))
        assert compilers, "the prelude's compiler runs while the test looks"
        assert all(state == "T" for state in compilers.values()), compilers  # stopped while timing
    assert any(state != "T" for state in _processes_naming(str(tmp_path)).values()) or not builder.is_alive()
    builder.join(timeout=120)
    inc = pch.inductor_include_soon(tmp_path, src)
    assert inc is not None and (Path(inc) / (pch.CPP_PREFIX_H + ".gch")).exists()


def _processes_naming(text: str) -> dict[int, str]:
    """pid -> state letter of every process whose command line mentions `text`."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if text in (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found[int(proc.name)] = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
    return found


_COMPILE_ONCE = """
import sys, torch
from kernelwright.sandbox import pch
pch.share_inductor_headers()
torch.compile(lambda x: torch.relu(x * 2 + 1))(torch.randn(64, 31))
"""


def test_inductor_keeps_its_own_header_where_it_is_told(tmp_path):
    """Inductor's precompiled cpp_prefix.h lands in the shared directory, not under the process's
    TMPDIR (a worker's own, so the reference's torch.compile baseline rebuilt it every verdict:
    4-5 s of each CPU verdict's compile). Fails on a torch whose Inductor moved the attribute."""
    from torch._inductor import codecache

    headers, tmp = tmp_path / "headers", tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, pch.INDUCTOR_HEADERS_ENV: str(headers), "TMPDIR": str(tmp),
           "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "inductor"), "TORCHINDUCTOR_VEC_ISA_OK": "1",
           "TORCHINDUCTOR_COMPILE_THREADS": "1"}
    assert hasattr(codecache, "_HEADER_DIR") and hasattr(codecache, "_HEADER_LOCK_DIR")
    done = subprocess.run([sys.executable, "-c", _COMPILE_ONCE], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(headers.glob("*.h.gch")), sorted(p.name for p in headers.iterdir()) if headers.exists() else None
    assert not list(tmp.rglob("*.gch"))
