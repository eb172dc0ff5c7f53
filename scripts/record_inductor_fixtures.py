"""Record the wrapper modules Inductor writes under this torch as test fixtures.

    python scripts/record_inductor_fixtures.py OUT_DIR [--device cpu|cuda|all] [--task NAME ...] [--all-tasks]

For each task (by default a few that cover library calls, several shapes, a reduction
and a matmul epilogue), the task is captured exactly as the Inductor proposer does it
(`capture`, in a child process) and written to OUT_DIR/<torch version>/<device>/:

- `<task>.json`: the capture in `capture_json`'s form, with each variant's wrapper
  replaced by the name of the file holding it, and the task's source;
- `<task>.v<i>.txt`: the wrapper module text of variant i, verbatim;

and OUT_DIR/<torch version>/triton_helpers.txt: torch's `_inductor/runtime/triton_helpers.py`,
which CUDA captures copy helpers from (written without a GPU too: the Triton tests use it).

The tests in tests/propose/test_inductor.py translate every recorded fixture of every
version with the standalone writer, so support for a torch version is tested on any
torch. CPU is always recorded; CUDA too when a GPU is there (`--device all`, the
default). Each line printed says whether the standalone writer accepts the capture.
Pass `--all-tasks` to survey every task of the repository instead of the few.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from kernelwright.propose.inductor.capture import Capture, InductorError, capture, capture_json  # noqa: E402
from kernelwright.propose.inductor.standalone import build_candidate  # noqa: E402

# A few tasks that between them make Inductor write library calls (addmm), reinterpret
# views, several shape specialisations, reductions and several kernels per graph.
DEFAULT_TASKS = ("linear_relu", "gelu_mul_shapes", "softmax", "matmul_epilogue")


def all_tasks() -> dict[str, Path]:
    """Every task in the repository by name: fixture tasks by stem, examples by folder."""
    tasks = {p.stem: p for p in sorted((ROOT / "tests" / "fixtures" / "tasks").glob("*.py"))}
    tasks.update({p.parent.name: p for p in sorted((ROOT / "examples").glob("*/task.py"))})
    return tasks


def version_dir(torch_version: str) -> str:
    """The fixture folder for a torch version: its release number, without the local build tag."""
    return torch_version.split("+")[0]


def fixture_files(name: str, task_path: Path, cap: Capture) -> dict[str, str]:
    """File name -> text of one recorded capture (the JSON plus one text file per wrapper)."""
    data = capture_json(cap)
    files: dict[str, str] = {}
    for i, variant in enumerate(data["variants"]):
        files[f"{name}.v{i}.txt"] = variant.pop("wrapper")
        variant["wrapper_file"] = f"{name}.v{i}.txt"
    if data.pop("triton_helpers") is not None:  # the same text as the version's own copy
        data["triton_helpers_file"] = "../triton_helpers.txt"
    rel = task_path.resolve().relative_to(ROOT).as_posix()
    files[f"{name}.json"] = json.dumps({"task": rel, "task_source": task_path.read_text(), "capture": data},
                                       indent=1, sort_keys=True) + "\n"
    return files


def _translation(task_path: Path, cap: Capture) -> str:
    try:
        build_candidate(task_path.read_text(), cap)
    except InductorError as exc:
        return f"not translated: {exc}"
    return "translated"


def record(name: str, task_path: Path, device: str, out: Path) -> str:
    """Capture one task on one device, write its fixture files, and say how it went in a line."""
    t0 = time.perf_counter()
    try:
        cap = capture(task_path.read_text(), device, timeout_s=300, task_path=task_path)
    except InductorError as exc:
        return f"{device} {name}: no capture ({exc})"
    folder = out / version_dir(cap.torch_version) / device
    folder.mkdir(parents=True, exist_ok=True)
    for fname, text in fixture_files(name, task_path, cap).items():
        (folder / fname).write_text(text)
    return (f"{device} {name}: {len(cap.variants)} variant(s) in {time.perf_counter() - t0:.1f} s, "
            f"{_translation(task_path, cap)} -> {folder}")


def record_triton_helpers(out: Path) -> Path:
    """Copy this torch's triton_helpers module to OUT/<version>/ (read as text: no triton import)."""
    import torch

    folder = out / version_dir(torch.__version__)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "triton_helpers.txt"
    path.write_text((Path(torch.__file__).parent / "_inductor" / "runtime" / "triton_helpers.py").read_text())
    return path


def _devices(choice: str) -> list[str]:
    import torch

    if choice == "all":
        return ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    return [choice]


def main(argv: list[str] | None = None) -> int:
    """Record the fixtures; exit 1 if a task could not be captured at all."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="folder to write <torch version>/<device>/ under")
    ap.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    ap.add_argument("--task", action="append", help="a task name (repeatable); default: a few")
    ap.add_argument("--all-tasks", action="store_true", help="every task of the repository")
    ap.add_argument("--jobs", type=int, default=max(1, len(os.sched_getaffinity(0)) // 4))
    args = ap.parse_args(argv)
    known = all_tasks()
    names = sorted(known) if args.all_tasks else args.task or list(DEFAULT_TASKS)
    unknown = [n for n in names if n not in known]
    if unknown:
        ap.error(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(known)}")
    jobs: list[tuple[str, Path, str, Path]] = [(n, known[n], d, args.out) for d in _devices(args.device)
                                               for n in names]
    t0 = time.perf_counter()
    print(f"wrote {record_triton_helpers(args.out)}", flush=True)
    lines: list[str] = []
    # Each capture is its own child process. CPU captures run side by side; CUDA ones one
    # at a time, so that autotuning benchmarks never share the GPU and pick what they would alone.
    with ThreadPoolExecutor(args.jobs) as cpu_pool, ThreadPoolExecutor(1) as gpu_pool:
        futures = [(gpu_pool if job[2] == "cuda" else cpu_pool).submit(record, *job) for job in jobs]
        for future in futures:
            lines.append(future.result())
            print(lines[-1], flush=True)
    print(f"{len(jobs)} captures in {time.perf_counter() - t0:.1f} s")
    return 1 if any(": no capture (" in line for line in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
