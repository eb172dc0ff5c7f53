"""The local executor builds the next candidate ahead only when its form is slow to build."""

from __future__ import annotations

from kernelwright import forms
from kernelwright.executor import _local


def test_only_the_next_slow_building_candidate_is_built_ahead(monkeypatch) -> None:
    built: list[str] = []
    monkeypatch.setattr(_local, "prebuild", lambda source, filename, device: built.append(filename))
    queue = [(forms.FORMS["c"].skeleton(), "a.py"), (forms.FORMS["cpp_inline"].skeleton(), "b.py"),
             ("import torch\n\nclass ModelNew(torch.nn.Module):\n    pass\n", "c.py"),
             (forms.FORMS["cpp_inline"].skeleton(), "d.py")]
    with _local.Prebuilder("cpu", queue) as ahead:
        ahead.next()  # a.py is judged: b.py (load_inline C++) builds meanwhile
        ahead.next()  # b.py is judged: c.py is plain PyTorch, nothing to build
        ahead.next()  # c.py is judged: d.py builds
        ahead.next()  # d.py is judged: nothing after it
    assert ahead.submitted == ["b.py", "d.py"]
    assert built and set(built) <= {"b.py", "d.py"}  # a build still queued at the end is dropped
