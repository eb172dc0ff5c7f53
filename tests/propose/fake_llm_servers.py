"""Fake OpenAI- and Anthropic-compatible HTTP servers for tests, on 127.0.0.1.

The official SDKs talk to them over real HTTP. A server answers from a scripted
queue of `Reply`s, then from `respond(request)` if set, else `default`:

    with FakeLLMServer("openai") as server:
        server.script([Reply(status=429, retry_after=0), Reply(text="```python ...```")])
        chat = OpenAIChat("gpt-5", base_url=server.url, api_key="k")
        ...
        assert server.requests[0].body["model"] == "gpt-5"

Every request is recorded (path, lower-cased headers, JSON body), and
`max_in_flight` is the most requests the server was ever handling at once.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIALECTS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
DEFAULT_TEXT = "```python\nimport torch\n\nclass ModelNew(torch.nn.Module):\n    pass\n```"


@dataclass(frozen=True)
class Reply:
    """One scripted answer. status >= 400 sends an error body in the dialect's shape."""

    text: str = DEFAULT_TEXT
    status: int = 200
    retry_after: float | None = None  # sent as the Retry-After header, in seconds
    delay_s: float = 0.0  # sleep before answering; longer than the client timeout = a timeout
    truncated: bool = False  # finish_reason "length" / stop_reason "max_tokens"
    input_tokens: int = 11
    output_tokens: int = 7
    error: str = "scripted failure"


@dataclass(frozen=True)
class Recorded:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    body: Any


class FakeLLMServer:
    """A ThreadingHTTPServer in a thread speaking the `openai` or `anthropic` dialect."""

    def __init__(self, dialect: str, default: Reply | None = None) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect must be one of {sorted(DIALECTS)}")
        self.dialect = dialect
        self.default = default or Reply()
        self.respond: Callable[[Recorded], Reply] | None = None
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._queue: collections.deque[Reply] = collections.deque()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _handler_for(self))
        # A short poll keeps shutdown (it waits for one poll) from costing 0.5 s a test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        """The base_url the dialect's SDK expects (OpenAI's includes /v1)."""
        root = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return root + "/v1" if self.dialect == "openai" else root

    def script(self, replies: Iterable[Reply]) -> None:
        """Queue replies, answered in order before falling back to respond/default."""
        with self._lock:
            self._queue.extend(replies)

    def __enter__(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _next_reply(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._queue:
                return self._queue.popleft()
        return self.respond(request) if self.respond else self.default

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler asleep in a "slow reply" must not hold up shutdown


def _handler_for(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # http.server's naming
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            if path != DIALECTS[server.dialect]:
                self._send(404, {"error": {"message": f"no route {path}"}}, {})
                return
            request = Recorded(path, {k.lower(): v for k, v in self.headers.items()}, json.loads(raw or b"null"))
            server._enter()
            try:
                reply = server._next_reply(request)
                time.sleep(reply.delay_s)
                self._answer(reply, request.body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (its timeout) before the slow reply came
            finally:
                server._leave()

        def _answer(self, reply: Reply, body: Any) -> None:
            headers = {} if reply.retry_after is None else {"Retry-After": f"{reply.retry_after:g}"}
            model = body.get("model", "unknown") if isinstance(body, dict) else "unknown"
            if reply.status >= 400:
                self._send(reply.status, _error_body(server.dialect, reply), headers)
            elif server.dialect == "openai":
                self._send(reply.status, _openai_body(reply, model), headers)
            else:
                self._send(reply.status, _anthropic_body(reply, model), headers)

        def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    return Handler


def _openai_body(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text},
                "finish_reason": "length" if reply.truncated else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        },
    }


def _anthropic_body(reply: Reply, model: str) -> dict[str, Any]:
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": "max_tokens" if reply.truncated else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }


def _error_body(dialect: str, reply: Reply) -> dict[str, Any]:
    if dialect == "openai":
        return {"error": {"message": reply.error, "type": "fake_error", "code": str(reply.status)}}
    return {"type": "error", "error": {"type": "fake_error", "message": reply.error}}
