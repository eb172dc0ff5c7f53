"""`verify` and `optimize`: the command line's judge and search, called from Python."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from kernelwright import constants as C
from kernelwright.api._errors import ConversionError
from kernelwright.api._results import Fallback, KernelResult, OptimizeResult, timing_from_dict
from kernelwright.task.loader import InputError

if TYPE_CHECKING:
    import torch.nn as nn

    from kernelwright.api._origin import ModuleOrigin, TaskOrigin
    from kernelwright.api._signature import InputSignature
    from kernelwright.store import Store

_FALLBACKS = ("error", "original")


def verify(reference: nn.Module | str | os.PathLike[str], candidate: str | os.PathLike[str],
           example_inputs: Sequence[Any] | None = None, *, device: str | None = None,
           trials: int = C.MIN_TRIALS, timing: bool = True, compile_baseline: bool = True,
           threads: int | None = None, strict_task: bool = False, build_cache: bool = True,
           metadata: Mapping[str, Any] | None = None, fallback: Fallback = "error") -> KernelResult:
    """Judge one candidate kernel against a module (or a task file), as `kernelwright verify` does.

    Args:
        reference: an `nn.Module` instance, converted to a task (see `kernelwright.api`), or
            the path of a KernelBench task file.
        candidate: the path of a file defining `class ModelNew`, or its source text (a string
            holding a newline is taken as source, any other string as a path).
        example_inputs: the module's positional arguments (tensors and plain values), required
            for a module and not accepted with a task file (which makes its own inputs).
        device: "cpu" or "cuda"; for a module, its own device (any other is an error); for a
            task file, cuda when available.
        trials: correctness trials, at least 5 (`--trials`).
        timing: time the candidate and eager (`--no-timing` turns it off).
        compile_baseline: also time torch.compile (`--no-compile-baseline` turns it off).
        threads: CPU threads for every side (`--threads`; default: all this process may use).
        strict_task: refuse a degenerate task instead of noting it (`--strict-task`).
        build_cache: share compiled extensions by content (`--no-build-cache` turns it off).
        metadata: for a module, task metadata (`rtol`, `atol`, `distributions`,
            `exclude_distributions`, `perturb_timing_inputs`; see docs/task-metadata.md).
        fallback: what `result.module` does on inputs the kernel was not verified on:
            "error" (raise UnverifiedInputError) or "original" (run the original module).

    Returns a KernelResult; a rejected candidate is a result, not an exception. Raises
    ConversionError when the module cannot become a task, TaskError or InputError (all
    ValueError) for a bad task file, candidate path or option.
    """
    from kernelwright.judge.verify import VerifyOptions, resolve_device, verify_files

    _check_fallback(fallback)
    task_path, origin, dev, module_sig, baseline = _prepare(reference, example_inputs, metadata, device)
    dev = resolve_device(dev)
    cand_path = _candidate_file(candidate)
    options = VerifyOptions(device=dev, trials=trials, compile_baseline=compile_baseline, timing=timing,
                            strict_task=strict_task, threads=threads, build_cache=build_cache)
    res = verify_files(task_path, cand_path, options)
    source = cand_path.read_text(encoding="utf-8")
    return KernelResult(
        verdict=res.verdict, reasons=tuple(res.reasons), timing=res.timing,
        findings=tuple(res.findings) + baseline,
        kernel_path=str(cand_path) if res.accepted else None, kernel_source=source if res.accepted else None,
        task_path=str(task_path), device=dev, signatures=_signatures(origin, module_sig, dev, res.accepted),
        fallback=fallback, details=res.to_dict(), _origin=origin)


def optimize(module: nn.Module | str | os.PathLike[str], example_inputs: Sequence[Any] | None = None, *,
             models: Sequence[str] | str | None = None, budget: int = C.DEFAULT_BUDGET, time_limit_s: float | None = None,
             max_cost_usd: float | None = None, max_tokens: int | None = None, device: str | None = None,
             target: str | None = None, out_dir: str | os.PathLike[str] | None = None,
             store: str | os.PathLike[str] | Store | None = None, resume: str | None = None, parallel: int = 2,
             seed: int | None = None, compile_baseline: bool = True, metadata: Mapping[str, Any] | None = None,
             fallback: Fallback = "error", console: Any = None) -> OptimizeResult:
    """Search for a faster kernel for a module (or a task file), as `kernelwright optimize` does.

    Runs the same evolutionary search, records it in the same SQLite store, and re-judges
    the best kernel in a fresh process before reporting it (written to `out_dir/best.py`).

    Args:
        module: an `nn.Module` instance, converted to a task (see `kernelwright.api`), or the
            path of a KernelBench task file.
        example_inputs: the module's positional arguments; required for a module, not accepted
            with a task file.
        models: proposer specs as `--model` takes them (`openai:gpt-5`, `anthropic:...`,
            `scripted:FILE.jsonl`, `inductor`, `mutate`, each optionally `=WEIGHT`); default:
            LLMs whose API keys are set, plus inductor and mutate.
        budget: proposals to make, failed ones included (`--budget`).
        time_limit_s: stop after this many seconds (`--time-limit`).
        max_cost_usd: stop after spending this much on LLMs (`--max-cost`).
        max_tokens: stop after this many LLM tokens (`--max-tokens`).
        target: the candidate form LLMs are asked for (`--target`; default: nvrtc on a GPU,
            c on the CPU).
        resume: a run id to continue (`--resume`): same task, same device.
        parallel: proposals in flight while one candidate is judged (`--parallel`).
        seed: seeds the search's choices, not the judge's inputs (`--seed`).
        compile_baseline: time torch.compile in the final re-judgement
            (`--no-compile-baseline` turns it off).
        device: "cpu" or "cuda"; for a module, its own device; for a task, cuda when available.
        out_dir: where best.py and best.json go (default: runs/RUN_ID beside the store).
        store: the SQLite store's path, or an open `kernelwright.store.Store` (default: the
            command line's, `$KERNELWRIGHT_STORE` or ~/.local/share/kernelwright/kernelwright.db).
        metadata: for a module, task metadata (as for `verify`).
        fallback: what `result.module` does on inputs outside what was verified ("error" or
            "original").
        console: a `rich.console.Console` to show the live view on (default: quiet).

    Returns an OptimizeResult (verdict "rejected" when no kernel held up). Raises
    ConversionError, TaskError, InputError or ValueError for a module, task, option or
    model spec that cannot be used, and ChatError when an LLM provider fails for good.
    """
    from kernelwright.search.run import OptimizeRequest, optimize_task

    _check_fallback(fallback)
    task_path, origin, dev, module_sig, baseline = _prepare(module, example_inputs, metadata, device)
    specs = [models] if isinstance(models, str) else list(models or [])
    req = OptimizeRequest(task=task_path, models=specs, budget=budget, time_limit_s=time_limit_s,
                          max_cost_usd=max_cost_usd, max_tokens=max_tokens, device=dev, target=target,
                          out_dir=Path(out_dir) if out_dir is not None else None, resume=resume, parallel=parallel,
                          seed=seed, compile_baseline=compile_baseline)
    if store is None or isinstance(store, (str, os.PathLike)):
        from kernelwright.store import Store, default_store_path

        path = Path(store) if store is not None else default_store_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        with Store(path) as opened:
            summary = optimize_task(req, opened, console=console)
    else:
        summary = optimize_task(req, store, console=console)
    dev = summary["device"]
    best = summary.get("best")
    note = str(summary.get("note") or "")
    common: dict[str, Any] = {"task_path": str(task_path), "device": dev, "fallback": fallback,
                              "run_id": summary["run_id"], "note": note, "summary": summary, "_origin": origin}
    if not best:
        return OptimizeResult(verdict="rejected", reasons=(_reason("search", note or "no kernel was found"),),
                              **common)
    kernel = Path(best["path"])
    verdict = _read_json(kernel.parent / "best.json").get("verdict") or {}
    return OptimizeResult(
        verdict="accepted", timing=timing_from_dict(verdict.get("timing")),
        findings=tuple(verdict.get("findings") or ()) + baseline, kernel_path=str(kernel.resolve()),
        kernel_source=kernel.read_text(encoding="utf-8"),
        signatures=_signatures(origin, module_sig, dev, True), details=verdict, **common)


# -- shared steps -------------------------------------------------------------


def _prepare(reference: Any, example_inputs: Any, metadata: Mapping[str, Any] | None, device: str | None
             ) -> tuple[Path, ModuleOrigin | TaskOrigin, str | None, InputSignature | None, tuple[str, ...]]:
    """(task path, origin, device to judge on, the module's signature, findings about the baselines)
    for a module or a task path."""
    import torch.nn as nn

    from kernelwright.api._origin import ModuleOrigin, TaskOrigin

    if isinstance(reference, (str, os.PathLike)):
        if example_inputs is not None:
            raise InputError("example_inputs only apply to an nn.Module: a task file makes its own inputs "
                             "with get_inputs()")
        if metadata is not None:
            raise InputError("metadata only applies to an nn.Module: a task file carries its own "
                             "(KERNELWRIGHT or a TOML file beside it)")
        from kernelwright.task.loader import load_task

        path = Path(reference)
        load_task(path)  # a missing or malformed task is InputError/TaskError here, before anything runs
        return path, TaskOrigin(path), device, None, ()
    if not isinstance(reference, nn.Module):
        raise InputError(f"expected an nn.Module instance or a task file path, not {type(reference).__name__}")
    if example_inputs is None:
        raise ConversionError("example_inputs are required with an nn.Module: a tuple of its positional "
                              "arguments, from which the task's input shapes, dtypes and values come")
    from kernelwright.api._convert import module_task

    converted = module_task(reference, example_inputs, metadata)
    if device not in (None, "auto") and device.split(":")[0] != converted.device:
        raise InputError(f"the module and its example inputs are on {converted.device}, but device={device!r} "
                         f"was asked for; move both to {device} first (the exported program keeps its device)")
    # Which form of the module the baselines time (the module itself, or its exported graph
    # when the judge's processes cannot import it) decides what a speedup means: say so.
    note = (converted.baseline_note,) if converted.baseline_note else ()
    return converted.path, ModuleOrigin(reference), converted.device, converted.signature, note


def _signatures(origin: Any, module_sig: InputSignature | None, device: str,
                accepted: bool) -> tuple[InputSignature, ...]:
    if not accepted:
        return ()  # nothing was verified
    if module_sig is not None:
        return (module_sig,)
    return tuple(origin.signatures(device))


def _candidate_file(candidate: Any) -> Path:
    """The candidate's path; source text is written to a content-addressed file first."""
    if isinstance(candidate, os.PathLike) or (isinstance(candidate, str) and "\n" not in candidate):
        path = Path(candidate)
        if not path.is_file():
            raise InputError(f"candidate file not found: {path} (pass source text, with its newlines, "
                             "or the path of a file defining ModelNew)")
        return path
    if not isinstance(candidate, str):
        raise InputError(f"candidate must be a path or source text, not {type(candidate).__name__}")
    from kernelwright.paths import cache_dir

    key = hashlib.sha256(candidate.encode()).hexdigest()[:20]
    path = cache_dir() / "candidates" / f"candidate_{key}.py"
    if not path.is_file() or path.read_text(encoding="utf-8") != candidate:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        tmp.write_text(candidate, encoding="utf-8")
        os.replace(tmp, path)
    return path


def _check_fallback(fallback: str) -> None:
    if fallback not in _FALLBACKS:
        raise InputError(f"fallback must be 'error' or 'original', not {fallback!r}")


def _reason(check: str, detail: str) -> Any:
    from kernelwright.judge.result import Reason

    return Reason(check, detail)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
