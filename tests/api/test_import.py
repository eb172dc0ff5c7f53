"""`import kernelwright` stays fast: the API is loaded on first use, without torch or the SDKs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "openai", "anthropic", "triton", "ray")


def _imported_after(code: str) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("code", ["import kernelwright", "import kernelwright.api",
                                  "from kernelwright import verify, optimize"])
def test_import_does_not_load_torch_or_the_sdks(code: str) -> None:
    assert _imported_after(code) == []


def test_lazy_exports() -> None:
    import kernelwright
    import kernelwright.api as api

    assert kernelwright.verify is api.verify and kernelwright.optimize is api.optimize
    assert {"verify", "optimize"} <= set(kernelwright.__all__)
    assert all(hasattr(api, name) for name in api.__all__)
    with pytest.raises(AttributeError):
        kernelwright.no_such_thing  # noqa: B018
    for fn in (api.verify, api.optimize, api.KernelResult.build_module, api.VerifiedModule.forward):
        assert fn.__doc__
