"""Optional task metadata: tolerances, declared input mutation, extra shapes, distributions.

Read from a module-level literal `KERNELWRIGHT = {...}` in the task file (parsed
with `ast.literal_eval`, never executed) or from a sidecar TOML file next to it
(`task.toml` beside `task.py`, or `task.kernelwright.toml`), under a
`[kernelwright]` table or at top level. Unknown keys are an error, so a typo
never silently weakens a check.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelwright.constants import DISTRIBUTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class TaskError(ValueError):
    """The task (or its metadata) is malformed: exit code 2."""


@dataclass(frozen=True)
class TaskMeta:
    """What a task says about itself. Every field has a safe default."""

    rtol: float | None = None
    atol: float | None = None
    mutates_inputs: tuple[int, ...] = ()
    distributions: tuple[str, ...] = DISTRIBUTIONS
    shapes: tuple[dict[str, Any], ...] = ()
    eval_mode: bool = False
    perturb_timing_inputs: bool = True
    source: str = "defaults"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "rtol": self.rtol, "atol": self.atol, "mutates_inputs": list(self.mutates_inputs),
            "distributions": list(self.distributions), "shapes": [dict(s) for s in self.shapes],
            "eval_mode": self.eval_mode, "perturb_timing_inputs": self.perturb_timing_inputs,
            "source": self.source,
        }


_KEYS = {"rtol", "atol", "mutates_inputs", "distributions", "exclude_distributions",
         "shapes", "eval_mode", "perturb_timing_inputs"}


def sidecar_paths(path: Path) -> tuple[Path, Path]:
    """Where a task's metadata TOML may sit beside it: `task.toml` or `task.kernelwright.toml`."""
    return path.with_suffix(".toml"), path.with_name(path.stem + ".kernelwright.toml")


def read_metadata(path: Path, tree: ast.Module) -> TaskMeta:
    """Metadata from the task's `KERNELWRIGHT` literal or its sidecar TOML, else defaults."""
    raw: dict[str, Any] | None = None
    origin = "defaults"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "KERNELWRIGHT" for t in node.targets):
            try:
                raw = ast.literal_eval(node.value)
            except ValueError as exc:
                raise TaskError(f"{path}: KERNELWRIGHT must be a literal dict ({exc})") from exc
            origin = f"{path.name}:KERNELWRIGHT"
    for sidecar in sidecar_paths(path):
        if sidecar.is_file():
            if raw is not None:
                raise TaskError(f"{path}: metadata given twice (KERNELWRIGHT and {sidecar.name})")
            try:
                data = tomllib.loads(sidecar.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise TaskError(f"{sidecar}: not valid TOML ({exc})") from exc
            raw = data.get("kernelwright", data)
            origin = sidecar.name
    if raw is None:
        return TaskMeta()
    return parse_metadata(raw, origin)


def parse_metadata(raw: Any, origin: str) -> TaskMeta:
    """Validate a metadata mapping; raise TaskError with the offending key."""
    if not isinstance(raw, dict):
        raise TaskError(f"{origin}: metadata must be a mapping")
    unknown = set(raw) - _KEYS
    if unknown:
        raise TaskError(f"{origin}: unknown metadata keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    dists = tuple(raw.get("distributions", DISTRIBUTIONS))
    dists = tuple(d for d in dists if d not in set(raw.get("exclude_distributions", ())))
    bad = [d for d in dists if d not in DISTRIBUTIONS]
    if bad or not dists:
        raise TaskError(f"{origin}: distributions must be a non-empty subset of {list(DISTRIBUTIONS)}")
    shapes = raw.get("shapes", ())
    if not isinstance(shapes, (list, tuple)) or not all(isinstance(s, dict) for s in shapes):
        raise TaskError(f"{origin}: shapes must be a list of mappings of module globals to values")
    mut = raw.get("mutates_inputs", ())
    if not isinstance(mut, (list, tuple)) or not all(isinstance(i, int) for i in mut):
        raise TaskError(f"{origin}: mutates_inputs must be a list of input indices")
    meta = TaskMeta(
        rtol=_opt_float(raw, "rtol", origin), atol=_opt_float(raw, "atol", origin),
        mutates_inputs=tuple(mut), distributions=dists,
        shapes=tuple(dict(s) for s in shapes), eval_mode=bool(raw.get("eval_mode", False)),
        perturb_timing_inputs=bool(raw.get("perturb_timing_inputs", True)),
        source=origin,
    )
    return meta


def _opt_float(raw: dict[str, Any], key: str, origin: str) -> float | None:
    if key not in raw:
        return None
    value = raw[key]
    if not isinstance(value, (int, float)) or value < 0:
        raise TaskError(f"{origin}: {key} must be a non-negative number")
    return float(value)

