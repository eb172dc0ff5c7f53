"""Build time of each candidate form, side by side in one run.

    python benchmarks/form_build_times.py [--device cpu|cuda] [--repeats N]

For every form that runs on the device, a fresh process imports that form's skeleton
(`kernelwright/forms/skeletons/`) with an empty build directory and a unique comment in
the kernel source (so no cache of any kind can help), builds ModelNew and calls it once
on the toy task's inputs: "new" is import plus first call, which is where NVRTC and
Triton compile. Then the same again with the build kept ("cached"). Prints medians and
each form's new-build time as a fraction of the load_inline form's. The load_inline forms
get a second row, "+pch", built as the judge builds them: with the shared precompiled
torch header (`kernelwright.sandbox.pch`), made once before the table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kernelwright import forms  # noqa: E402

TASK = ROOT / "tests" / "fixtures" / "tasks" / "relu_add.py"

_CHILD = r'''
import json, os, sys, time, types
t0 = time.perf_counter()
import torch
t_torch = time.perf_counter()
if os.environ.get("KERNELWRIGHT_PCH_DIR"):
    from kernelwright.sandbox import pch
    pch.install(os.environ["KERNELWRIGHT_PCH_DIR"])
def load(path, name):
    m = types.ModuleType(name); m.__file__ = path; sys.modules[name] = m
    exec(compile(open(path).read(), path, "exec"), m.__dict__); return m
task = load(sys.argv[1], "task")
cand = load(sys.argv[2], "cand")
t_import = time.perf_counter()
dev = sys.argv[3]
model = cand.ModelNew(*task.get_init_inputs()).to(dev)
inputs = [x.to(dev) for x in task.get_inputs()]
out = model(*inputs)
if dev == "cuda": torch.cuda.synchronize()
t_call = time.perf_counter()
ok = bool(torch.allclose(out, task.Model()(*inputs), atol=1e-5))
print(json.dumps({"torch": t_torch - t0, "import": t_import - t_torch, "first_call": t_call - t_import, "ok": ok}))
'''


def salted(form: forms.Form) -> str:
    """The skeleton with a unique comment inside its kernel source string."""
    src = form.skeleton()
    marker = {"nvrtc": 'extern "C"', "c": "#include <stdint.h>", "cuda_inline": "#include <cuda_runtime.h>",
              "cpp_inline": "#include <torch/extension.h>", "triton": "@triton.jit"}[form.name]
    salt = f"// salt {uuid.uuid4().hex}\n" if form.name != "triton" else f"# salt {uuid.uuid4().hex}\n"
    if form.name == "triton":
        # Triton keys its cache on the function's source: put the salt inside the body.
        return src.replace("    offs = ", f"    {salt.strip()}\n    offs = ", 1)
    return src.replace(marker, salt + marker, 1)


def run_once(path: Path, device: str, build: Path, pch_dir: Path | None = None) -> dict[str, float]:
    env = dict(os.environ, TORCH_EXTENSIONS_DIR=str(build), TRITON_CACHE_DIR=str(build / "triton"),
               PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    env.pop("KERNELWRIGHT_PCH_DIR", None)
    if pch_dir is not None:
        env["KERNELWRIGHT_PCH_DIR"] = str(pch_dir)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(TASK), str(path), device], env=env,
                          capture_output=True, text=True, timeout=1200)
    if proc.returncode != 0:
        raise RuntimeError(f"{path.name}: {proc.stderr[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default=None)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    work = Path(tempfile.mkdtemp(prefix="kw-forms-"))
    rows = {}
    pch_dir = work / "pch"
    variants = [(f, None) for f in forms.for_device(device)]
    for form in forms.for_device(device):
        if "load_inline" in form.skeleton():
            # The header is built once per toolchain and flags, before any row is timed.
            warm = work / f"pch_warm_{form.name}.py"
            warm.write_text(salted(form))
            run_once(warm, device, work / f"build_pch_warm_{form.name}", pch_dir)
            variants.append((form, pch_dir))
    for form, use_pch in variants:
        name = form.name + ("+pch" if use_pch else "")
        new, cached = [], []
        for r in range(args.repeats):
            path = work / f"{name}_{r}.py"
            path.write_text(salted(form))
            build = work / f"build_{name}_{r}"
            first = run_once(path, device, build, use_pch)
            again = run_once(path, device, build, use_pch)
            assert first["ok"] and again["ok"], (name, first, again)
            new.append(first["import"] + first["first_call"])
            cached.append(again["import"] + again["first_call"])
        rows[name] = (statistics.median(new), statistics.median(cached))
    slow = next((rows[f.name][0] for f in forms.for_device(device) if not f.fast), None)
    print(f"candidate build on {device}, median of {args.repeats} (seconds: import + first call, torch import excluded)")
    print(f"{'form':<14}{'new':>10}{'cached':>10}{'new / load_inline':>20}")
    for name, (n, c) in rows.items():
        ratio = f"{n / slow:.3f}" if slow else "-"
        print(f"{name:<14}{n:>10.2f}{c:>10.2f}{ratio:>20}")


if __name__ == "__main__":
    main()
