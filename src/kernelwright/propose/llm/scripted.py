"""A ChatModel that replays replies from a JSONL file: for tests, demos and replays.

One JSON object per line (blank lines skipped):

    {"text": "...", "finish_reason": "stop", "input_tokens": 10, "output_tokens": 20}
    {"error": "rate_limit"}

Only "text" (or "error") is required. An "error" line raises ChatError, as a
provider does once its retries are exhausted.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from kernelwright.propose.base import Usage
from kernelwright.propose.llm.base import ChatError, ChatReply

PROVIDER = "scripted"
_FIELDS = {"text": str, "finish_reason": str, "input_tokens": int, "output_tokens": int, "error": str}


class ScriptedChat:
    """Replays a script of replies in order, thread-safe.

    When the script runs out it starts over if `cycle`, else every further call
    raises ChatError("... script exhausted ..."). `prompts` records each
    (system, user) pair received, so tests can see what a proposer asked.
    """

    def __init__(self, path: str | Path, *, cycle: bool = False, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name or f"{PROVIDER}:{path}"
        self.cycle = cycle
        self.entries = load_script(self.path)
        self.prompts: list[tuple[str, str]] = []
        self._next = 0
        self._lock = threading.Lock()

    def complete(self, system: str, user: str, *, max_tokens: int, temperature: float | None) -> ChatReply:
        """Return the next scripted reply, or raise ChatError for an error line or an exhausted script."""
        start = time.monotonic()
        with self._lock:
            self.prompts.append((system, user))
            if self._next >= len(self.entries):
                if not self.cycle:
                    raise ChatError(f"{self.name}: script exhausted after {len(self.entries)} replies.")
                self._next = 0
            entry = self.entries[self._next]
            self._next += 1
        if "error" in entry:
            raise ChatError(f"{self.name}: scripted error: {entry['error']}.", Usage(calls=1))
        usage = Usage(
            calls=1,
            input_tokens=entry.get("input_tokens", 0),
            output_tokens=entry.get("output_tokens", 0),
            seconds=time.monotonic() - start,
        )
        return ChatReply(
            text=entry["text"],
            usage=usage,
            finish_reason=entry.get("finish_reason", "stop"),
            model=self.name,
            priced=False,
        )


def load_script(path: Path) -> list[dict[str, Any]]:
    """The entries of a JSONL script; ValueError naming the first bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"cannot read the script {path}: {exc.strerror or exc}") from exc
    entries = [_entry(line, path, number) for number, line in enumerate(lines, 1) if line.strip()]
    if not entries:
        raise ValueError(f"the script {path} holds no replies")
    return entries


def _entry(line: str, path: Path, number: int) -> dict[str, Any]:
    where = f"{path}:{number}"
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where} is not JSON: {exc.msg}") from exc
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must hold a JSON object")
    unknown = sorted(set(entry) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{where} has unknown keys {unknown}; known: {sorted(_FIELDS)}")
    if ("text" in entry) == ("error" in entry):
        raise ValueError(f"{where} must hold exactly one of 'text' and 'error'")
    for key, value in entry.items():
        # bool is an int subclass; a token count of `true` is a typo, not a number.
        if not isinstance(value, _FIELDS[key]) or isinstance(value, bool):
            raise ValueError(f"{where}: '{key}' must be a {_FIELDS[key].__name__}")
    return entry
