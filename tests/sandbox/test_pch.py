"""The shared precompiled torch header for load_inline C++ builds (sandbox.pch)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright import forms
from kernelwright.sandbox import buildcache, pch
from tests.conftest import TASKS


def _calls(monkeypatch) -> list[dict]:
    """Install the wrapper over a recording stand-in for torch's load_inline."""
    import torch.utils.cpp_extension as ext

    seen: list[dict] = []

    def fake_load_inline(name, cpp_sources, cuda_sources=None, sycl_sources=None, functions=None,
                         extra_cflags=None, extra_cuda_cflags=None, extra_sycl_cflags=None, extra_ldflags=None,
                         extra_include_paths=None, build_directory=None, verbose=False, with_cuda=None,
                         with_sycl=None, is_python_module=True, with_pytorch_error_handling=True,
                         keep_intermediates=True, use_pch=False, no_implicit_headers=False):
        seen.append({"name": name, "cuda_sources": cuda_sources, "extra_include_paths": extra_include_paths,
                     "extra_cflags": extra_cflags})

    monkeypatch.setattr(ext, "load_inline", fake_load_inline)
    monkeypatch.setattr(pch, "ensure", lambda root, flags: "/pch/dir")
    pch.install("/unused")
    return seen


def test_plain_cpp_builds_get_the_header_directory_first(monkeypatch) -> None:
    import torch.utils.cpp_extension as ext

    seen = _calls(monkeypatch)
    ext.load_inline("a", "int f();", extra_cflags=["-O3"], extra_include_paths=["/mine"])
    ext.load_inline("b", "int f();", None, None, ["f"])  # positional arguments survive the rewrite
    assert seen[0]["extra_include_paths"] == ["/pch/dir", "/mine"] and seen[0]["extra_cflags"] == ["-O3"]
    assert seen[1]["extra_include_paths"] == ["/pch/dir"] and seen[1]["name"] == "b"


def test_cuda_builds_get_a_header_for_their_cpp_sources_with_cuda_include_paths(monkeypatch) -> None:
    import torch.utils.cpp_extension as ext

    seen = _calls(monkeypatch)
    devices: list[str] = []
    monkeypatch.setattr(pch, "header_flags", lambda cflags, paths, device="cpu": devices.append(device) or [])
    ext.load_inline("c", "int f();", "__global__ void k() {}")
    ext.load_inline("d", "int f();", cuda_sources="__global__ void k() {}", extra_include_paths=["/mine"],
                    no_implicit_headers=True)
    ext.load_inline("e", "int f();", with_cuda=False)
    assert seen[0]["extra_include_paths"] == ["/pch/dir"] and seen[1]["extra_include_paths"] == ["/pch/dir", "/mine"]
    assert devices == ["cuda", "cuda", "cpu"]


def test_a_failure_to_place_the_header_leaves_the_build_as_it_was(monkeypatch) -> None:
    import torch.utils.cpp_extension as ext

    seen = _calls(monkeypatch)

    def no_cuda(*args, **kwargs):
        raise OSError("CUDA_HOME environment variable is not set")

    monkeypatch.setattr(pch, "header_flags", no_cuda)
    ext.load_inline("f", "int f();", cuda_sources="__global__ void k() {}", extra_include_paths=["/mine"])
    assert seen[0]["extra_include_paths"] == ["/mine"]


def test_a_header_the_compiler_refused_is_never_built_again(tmp_path, monkeypatch) -> None:
    flags = ["-O3", "-DSOMETHING"]
    calls = []
    monkeypatch.setattr(pch, "_build", lambda stage, f, header=pch.EXTENSION_H, background=False: calls.append(f) or False)
    assert pch.ensure(tmp_path, flags) is None
    assert pch.ensure(tmp_path, flags) is None
    assert len(calls) == 1 and list(tmp_path.glob("*.unusable"))


@pytest.mark.slow
def test_a_judged_cpp_candidate_compiles_against_the_shared_header(judge, tmp_path) -> None:
    """End to end: the candidate's own build names the precompiled header's directory, and the
    compiler accepted that header (the probe built it rather than marking it unusable)."""
    source = forms.FORMS["cpp_inline"].skeleton() + "\n# a source of its own: a build of its own\n"
    result = judge(TASKS / "relu_add.py", source, timing=False)
    assert result.accepted, result.reasons
    _built_with_the_shared_header(source, "cpu")


@pytest.mark.gpu
def test_a_judged_cuda_inline_candidate_compiles_its_binding_against_the_shared_header(judge) -> None:
    """On a GPU: the split CUDA form's torch binding (C++) builds with the shared header, and its
    .cu file gets no torch header at all (no_implicit_headers)."""
    source = forms.FORMS["cuda_inline"].skeleton() + "\n# a source of its own: a build of its own\n"
    result = judge(TASKS / "relu_add.py", source, device="cuda", timing=False)
    assert result.accepted, result.reasons
    ninja = _built_with_the_shared_header(source, "cuda")
    cu = next(ninja.parent.glob("*.cu")).read_text()
    assert "torch/" not in cu


def _built_with_the_shared_header(source: str, device: str) -> Path:
    """The candidate's build.ninja, after checking it names the header's directory and the header exists."""
    ninja = list(Path(buildcache.build_dir(source, device)).rglob("build.ninja"))
    assert ninja, "no load_inline build happened"
    text = ninja[0].read_text()
    assert "/pch/" in text, "the build did not get the shared header's include directory"
    pch_dir = Path(text.split("-I", 1)[1].split()[0])
    assert (pch_dir / "torch" / "extension.h.gch").exists()
    return ninja[0]


def test_the_judge_builds_headers_only_for_literal_safe_flags() -> None:
    """What `prebuild` reads from a candidate's source: it builds in the judge's own process, so
    flags that run or plant code (a plugin, another compiler, include paths) are never taken."""
    assert pch.declared_builds(forms.FORMS["cpp_inline"].skeleton()) == [(["-O3"], "cpu")]
    assert pch.declared_builds(forms.FORMS["cuda_inline"].skeleton()) == [(["-O3"], "cuda")]
    calls = {
        'load_inline(name="a", cpp_sources=S, extra_cflags=["-O2", "-DN=4", "-std=c++17"])': [(["-O2", "-DN=4", "-std=c++17"], "cpu")],
        'load_inline(name="a", cpp_sources=S, extra_cflags=["-fplugin=/tmp/x.so"])': [],
        'load_inline(name="a", cpp_sources=S, extra_cflags=["-B/tmp/evil"])': [],
        'load_inline(name="a", cpp_sources=S, extra_cflags=["-O3"], extra_include_paths=["/tmp/h"])': [],
        'load_inline(name="a", cpp_sources=S, extra_cflags=FLAGS)': [],
        'load_inline(name="a", cpp_sources=S)': [([], "cpu")],
    }
    for call, expected in calls.items():
        assert pch.declared_builds(call) == expected, call
