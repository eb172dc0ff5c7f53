"""The `kernelwright` command line."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from kernelwright import constants as C
from kernelwright.cli._interrupt import interruptible
from kernelwright.cli.render import exit_bad_input

if TYPE_CHECKING:
    from kernelwright.judge.options import VerifyOptions


class _LazyGroup(click.Group):
    """Subcommands imported when named: most of them import torch, and `verify` starts its
    workers before it does (judge.pairs.prespawn), so the group itself must not."""

    lazy = {"optimize": "kernelwright.cli.optimize:optimize", "runs": "kernelwright.cli.history:runs",
            "show": "kernelwright.cli.history:show", "bench": "kernelwright.cli.bench:bench",
            "export": "kernelwright.cli.export:export", "check-task": "kernelwright.cli.check_task:check_task",
            "report": "kernelwright.cli.report:report"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, the lazy ones without importing them."""
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The named command, imported on first use."""
        if cmd_name in self.lazy and cmd_name not in self.commands:
            import importlib

            module, attr = self.lazy[cmd_name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kernelwright")
def main() -> None:
    """kernelwright: faster PyTorch kernels, and proof that they are correct and faster."""


@main.command()
@click.argument("task", type=click.Path(dir_okay=False), required=False)
@click.argument("candidates", nargs=-1, type=click.Path(dir_okay=False))
@click.option("--from-export", "from_export", type=click.Path(dir_okay=False), default=None,
              help="Judge again every row of an export (`kernelwright export`, jsonl or parquet) instead, "
                   "and say which rows no longer hold here.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Where to judge (default: cuda when available, else cpu).")
@click.option("--json", "as_json", is_flag=True, help="Print exactly one JSON object on stdout.")
@click.option("--trials", type=click.IntRange(1, 1000), default=C.MIN_TRIALS, show_default=True,
              help=f"Correctness trials (at least {C.MIN_TRIALS} are always run).")
@click.option("--no-compile-baseline", is_flag=True, help="Skip timing torch.compile (it is slow on the CPU).")
@click.option("--kept-compile-ratio", is_flag=True,
              help="Take the speedup vs torch.compile from the compile/eager ratio kept by an earlier verdict "
                   "of this task on this device and torch, when there is one (else compile and keep it), as "
                   "`bench` does; the speedup vs eager is always timed.")
@click.option("--no-timing", is_flag=True, help="Check correctness and honesty only.")
@click.option("--strict-task", is_flag=True, help="Exit 2 when the task is degenerate.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for every side (default: all cores this process may use).")
@click.option("--no-build-cache", is_flag=True, help="Build the candidate in a fresh directory.")
@click.option("--require-confinement", is_flag=True,
              help="Refuse to run the candidate (exit 2) unless its sandbox has no network, a minimal file "
                   "view and no signals out (needs Landlock ABI 6 and user namespaces).")
@click.option("--no-confine", is_flag=True,
              help="Run the candidate unconfined (also KERNELWRIGHT_CONFINE=0); the verdict says so.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="With several candidates or --from-export: where they are judged (this machine's --slots, or a Ray cluster's "
                   "judging slots). Verdicts do not depend on it.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="With --executor ray: the cluster to join (default: $RAY_ADDRESS, else a local one).")
@click.option("--slots", type=click.IntRange(1, 1024), default=None,
              help="With --executor local: judging slots (default: one per visible GPU; 1 on the CPU).")
def verify(task: str | None, candidates: tuple[str, ...], from_export: str | None, device: str | None,
           as_json: bool, trials: int, no_compile_baseline: bool, kept_compile_ratio: bool, no_timing: bool,
           strict_task: bool, threads: int | None, no_build_cache: bool, require_confinement: bool,
           no_confine: bool, executor: str, ray_address: str | None, slots: int | None) -> None:
    """Judge CANDIDATE (a file defining ModelNew) against TASK (KernelBench format).

    With several CANDIDATES, each is judged on --executor and gets its own verdict (--json: one
    object, a `candidates` list and a `summary`); exit 0 only when all are accepted.

    Exit 0: accepted. Exit 1: rejected. Exit 2: the task, a file or the command line is wrong.
    With --from-export FILE (and no TASK or CANDIDATE): exit 0 when every row holds, 1 when one
    does not.
    """
    from kernelwright.judge.options import VerifyOptions

    opts = VerifyOptions(device=device, trials=trials, compile_baseline=not no_compile_baseline,
                         timing=not no_timing, strict_task=strict_task, threads=threads,
                         build_cache=not no_build_cache, require_confinement=require_confinement,
                         compile_ratio_cache=kept_compile_ratio, **({"confine": False} if no_confine else {}))
    if task is not None and len(candidates) == 1 and executor == "local" and slots is None and from_export is None:
        _prespawn(opts, device)
    from kernelwright.judge.verify import verify_files
    from kernelwright.task import InputError, TaskError

    if from_export is not None or task is None or not candidates:
        if from_export is None or task is not None:
            exit_bad_input("give TASK and CANDIDATE, or --from-export FILE alone", as_json)
        _verify_export(from_export, opts, as_json, executor, ray_address, slots)
        return
    if len(candidates) > 1 or executor != "local" or slots is not None:
        from pathlib import Path

        from kernelwright.cli.verify_many import verify_many

        verify_many(Path(task), [Path(c) for c in candidates], opts, executor, ray_address, slots, as_json)
        return
    from kernelwright.judge.pairs import drop_prespawned

    candidate = candidates[0]
    try:
        with interruptible():
            result = verify_files(task, candidate, opts)
    except (TaskError, InputError) as exc:
        exit_bad_input(str(exc), as_json, verdict="error")
        return
    except KeyboardInterrupt:
        # The judge's finally-blocks have already killed every worker tree.
        click.echo("interrupted: no verdict", err=True)
        sys.exit(130)
    finally:
        drop_prespawned()  # a pair the verdict did not take (a bad task, another spec) serves nothing else
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
    else:
        from kernelwright.cli.render import print_verdict

        print_verdict(result)
    sys.exit(C.ExitCode.ACCEPTED if result.accepted else C.ExitCode.REJECTED)


def _prespawn(opts: VerifyOptions, device: str | None) -> None:
    """Start the one verdict's workers now, while this process imports torch (judge.pairs.prespawn).

    The device is guessed without torch (a driver's device node, not hidden); a wrong guess, or
    any other difference from what the verdict asks for, only leaves the pair unused.
    """
    import os

    from kernelwright.judge.pairs import pair_spec, prespawn

    if os.environ.get(C.PRESPAWN_ENV, "1") == "0":
        return
    if device is None:
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1")
        device = "cuda" if os.path.exists("/dev/nvidiactl") and not hidden else "cpu"
    try:
        prespawn(pair_spec(opts, device))
    except Exception:  # noqa: BLE001 - the verdict starts its own workers as it always did
        pass


def _verify_export(path: str, opts: object, as_json: bool, executor: str = "local", ray_address: str | None = None,
                   slots: int | None = None) -> None:
    """`verify --from-export`: each row judged again (on `executor`'s slots when it is Ray or there
    are several); the rows that no longer hold, then a summary."""
    from pathlib import Path

    from kernelwright.report.rejudge import check_rows, read_export
    from kernelwright.task import InputError

    def shown(c: object) -> None:
        if not as_json and not c.holds:  # type: ignore[attr-defined]
            click.echo(f"row {c.index} {c.task_id} {c.candidate_id}: {c.why}")  # type: ignore[attr-defined]

    try:
        with interruptible():
            rows = read_export(Path(path))
            on = None
            if executor != "local" or slots is not None:
                from kernelwright.executor import get_executor

                on = get_executor(executor, ray_address, slots)
            checks = check_rows(rows, opts, shown, on)  # type: ignore[arg-type]
    except InputError as exc:
        exit_bad_input(str(exc), as_json)
        return
    except KeyboardInterrupt:
        click.echo("interrupted: not every row was judged", err=True)
        sys.exit(130)
    summary = {"rows": len(checks), "hold": sum(c.holds for c in checks),
               "no_longer_hold": sum(not c.holds and c.now_verdict != "error" for c in checks),
               "not_judged": sum(c.now_verdict == "error" for c in checks)}
    if as_json:
        sys.stdout.write(json.dumps({"rows": [c.to_dict() for c in checks], "summary": summary},
                                    allow_nan=False) + "\n")
    else:
        click.echo(f"{summary['rows']} rows judged again: {summary['hold']} hold, {summary['no_longer_hold']} "
                   f"no longer hold, {summary['not_judged']} could not be judged here")
    sys.exit(0 if summary["hold"] == summary["rows"] else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
