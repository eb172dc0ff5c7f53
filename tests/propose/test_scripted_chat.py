"""ScriptedChat: replays a JSONL script in order, thread-safe, with scripted failures."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from kernelwright.propose.llm import ChatError, ChatModel, ChatReply, ScriptedChat


def script(tmp_path: Path, *entries: object) -> Path:
    path = tmp_path / "replies.jsonl"
    path.write_text("\n".join(e if isinstance(e, str) else json.dumps(e) for e in entries) + "\n")
    return path


def ask(chat: ScriptedChat, user: str = "u") -> ChatReply:
    return chat.complete("s", user, max_tokens=10, temperature=None)


def test_replays_in_order_with_usage(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        {"text": "one", "finish_reason": "length", "input_tokens": 10, "output_tokens": 20},
        "",  # blank lines are skipped
        {"text": "two"},
    )
    chat = ScriptedChat(path)
    assert isinstance(chat, ChatModel) and chat.name == f"scripted:{path}"
    first, second = ask(chat, "a"), ask(chat, "b")
    assert (first.text, first.finish_reason) == ("one", "length")
    assert (first.usage.input_tokens, first.usage.output_tokens) == (10, 20)
    assert (second.text, second.finish_reason, second.usage.calls, second.usage.cost_usd) == ("two", "stop", 1, 0.0)
    assert chat.prompts == [("s", "a"), ("s", "b")]


def test_error_lines_raise(tmp_path: Path) -> None:
    chat = ScriptedChat(script(tmp_path, {"error": "rate_limit"}, {"text": "after"}))
    with pytest.raises(ChatError, match="scripted error: rate_limit") as caught:
        ask(chat)
    assert caught.value.usage.calls == 1
    assert ask(chat).text == "after"


def test_exhausted_or_cycling(tmp_path: Path) -> None:
    path = script(tmp_path, {"text": "a"}, {"text": "b"})
    once = ScriptedChat(path)
    ask(once), ask(once)
    with pytest.raises(ChatError, match="script exhausted after 2 replies"):
        ask(once)
    cycling = ScriptedChat(path, cycle=True)
    assert [ask(cycling).text for _ in range(5)] == ["a", "b", "a", "b", "a"]


def test_thread_safe_each_reply_given_once(tmp_path: Path) -> None:
    chat = ScriptedChat(script(tmp_path, *({"text": str(i)} for i in range(200))))
    seen: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(25):
            text = ask(chat).text
            with lock:
                seen.append(text)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen, key=int) == [str(i) for i in range(200)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "replies.jsonl:1 is not JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"text": "x", "tokens": 3}', "unknown keys \\['tokens'\\]"),
        ('{"text": "x", "error": "y"}', "exactly one of 'text' and 'error'"),
        ('{"finish_reason": "stop"}', "exactly one of 'text' and 'error'"),
        ('{"text": 3}', "'text' must be a str"),
        ('{"text": "x", "input_tokens": true}', "'input_tokens' must be a int"),
    ],
)
def test_bad_lines_rejected(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ScriptedChat(script(tmp_path, line))


def test_missing_or_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot read the script"):
        ScriptedChat(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no replies"):
        ScriptedChat(tmp_path / "empty.jsonl")
