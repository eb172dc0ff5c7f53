"""The chat layer every LLM proposer talks through: one reply, retries, limits, prices.

A `ChatModel` sends one system + user prompt and returns a `ChatReply`, or raises
`ChatError` with a one-sentence reason. Provider clients disable their SDK's own
retries and go through `call_with_retries`, so every HTTP attempt is counted in
`Usage.calls`, every wait is in `Usage.seconds`, and a process-wide semaphore per
provider bounds the requests in flight. Every tunable number of the layer is at
the top of this file.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, TypeVar, runtime_checkable

from kernelwright.propose.base import Usage

# --- Constants --------------------------------------------------------------------

REQUEST_TIMEOUT_S = 600.0  # one reply of a long kernel can take minutes
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BASE_BACKOFF_S = 2.0
DEFAULT_MAX_BACKOFF_S = 60.0
MAX_RETRY_AFTER_S = 120.0  # a server asking for longer is capped, not obeyed blindly
DEFAULT_JITTER = 0.5  # a backoff is drawn from [ceiling * (1 - jitter), ceiling]
# 408/409 are transient by the providers' own documentation; 400/401/403/404 never are.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
DEFAULT_CONCURRENCY = 8  # requests in flight per provider, process-wide
SERVER_MESSAGE_CHARS = 200  # a server's error text is trimmed to this in ChatError
# Local OpenAI-compatible servers (vLLM, Ollama, llama.cpp) ignore the key, but the SDK wants one.
LOCAL_PLACEHOLDER_KEY = "not-needed"
# OpenAI reasoning models reject `max_tokens` and any non-default temperature.
OPENAI_REASONING_PREFIXES = ("gpt-5", "o1", "o3", "o4")


@dataclass(frozen=True)
class Price:
    """USD per million tokens; `priced` is False for a model missing from the table."""

    input_per_mtok: float
    output_per_mtok: float
    priced: bool = True


# Prices as of the 2025 public price pages (openai.com/api/pricing,
# anthropic.com/pricing), standard tier, no caching or batch discount.
PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4o": Price(2.50, 10.00),
    "o3": Price(2.00, 8.00),
    "claude-sonnet-4-5": Price(3.00, 15.00),
    "claude-opus-4-1": Price(15.00, 75.00),
    "claude-haiku-4-5": Price(1.00, 5.00),
}
UNPRICED = Price(0.0, 0.0, priced=False)
_DATE_SUFFIX = re.compile(r"-\d{4}-?\d{2}-?\d{2}")  # "-2024-08-06", "-20250929"

log = logging.getLogger(__name__)
_RNG = random.Random()
T = TypeVar("T")


# --- Types ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatReply:
    """One model reply: its text, what it cost, and why the model stopped.

    `finish_reason` is the provider's own word ("stop", "length", "end_turn",
    "max_tokens"), kept raw so the parser can tell a truncated reply.
    `priced` is False when the model is not in `PRICES` and the cost reads 0.
    """

    text: str
    usage: Usage
    finish_reason: str
    model: str
    priced: bool = True


class ChatError(Exception):
    """A chat call that produced no reply; the message is one sentence for the user.

    `usage` counts the attempts and seconds spent before giving up, so a failed
    call still shows in the run's accounting.
    """

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage if usage is not None else Usage()


@runtime_checkable
class ChatModel(Protocol):
    """A chat endpoint. `name` is "provider:model", e.g. "openai:gpt-5"."""

    name: str

    def complete(self, system: str, user: str, *, max_tokens: int, temperature: float | None) -> ChatReply:
        """Return one reply; raise ChatError when there is none."""
        ...


# --- Prices -----------------------------------------------------------------------


def price_of(model: str) -> Price:
    """The price of `model`, matching dated snapshots ("gpt-4o-2024-08-06") to their base."""
    if model in PRICES:
        return PRICES[model]
    # Only a date may follow the base name: "gpt-5-nano" must not price as "gpt-5".
    for base, price in PRICES.items():
        if model.startswith(base) and _DATE_SUFFIX.fullmatch(model[len(base) :]):
            return price
    return UNPRICED


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> tuple[float, bool]:
    """(USD, priced) for one call's tokens."""
    price = price_of(model)
    cost = (input_tokens * price.input_per_mtok + output_tokens * price.output_per_mtok) / 1e6
    return cost, price.priced


_warned_unpriced: set[str] = set()


def make_reply(
    *,
    text: str,
    finish_reason: str,
    requested: str,
    reported: str | None,
    input_tokens: int,
    output_tokens: int,
    attempts: int,
    seconds: float,
) -> ChatReply:
    """A ChatReply with usage and cost filled in; warns once per model missing from PRICES.

    The price follows the model the user asked for (`requested`); a proxy or local
    server may report any name, so the reported one is only a fallback.
    """
    model = reported or requested
    cost, priced = cost_usd(requested, input_tokens, output_tokens)
    if not priced:
        cost, priced = cost_usd(model, input_tokens, output_tokens)
    if not priced and requested not in _warned_unpriced:
        _warned_unpriced.add(requested)
        log.warning("no price known for model %r; its cost is counted as 0", requested)
    usage = Usage(
        calls=attempts,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=cost,
        seconds=seconds,
    )
    return ChatReply(text=text, usage=usage, finish_reason=finish_reason, model=model, priced=priced)


# --- Concurrency ------------------------------------------------------------------

_limits_lock = threading.Lock()
_limits: dict[str, tuple[int, threading.BoundedSemaphore]] = {}


def set_concurrency_limit(provider: str, limit: int) -> None:
    """Bound the requests in flight to `provider` across this process (takes effect for new calls)."""
    if limit < 1:
        raise ValueError(f"a concurrency limit must be at least 1, got {limit}")
    with _limits_lock:
        _limits[provider] = (limit, threading.BoundedSemaphore(limit))


def concurrency_limit(provider: str) -> int:
    """The current limit of `provider`."""
    return _limiter(provider)[0]


def _limiter(provider: str) -> tuple[int, threading.BoundedSemaphore]:
    with _limits_lock:
        if provider not in _limits:
            _limits[provider] = (DEFAULT_CONCURRENCY, threading.BoundedSemaphore(DEFAULT_CONCURRENCY))
        return _limits[provider]


# --- Retries ----------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptFailure:
    """What one failed attempt means to the retry loop."""

    message: str  # one clause, e.g. "the server answered HTTP 500"
    retryable: bool
    retry_after_s: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failed call (429, 5xx, connection errors, timeouts)."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_backoff_s: float = DEFAULT_BASE_BACKOFF_S
    max_backoff_s: float = DEFAULT_MAX_BACKOFF_S
    max_retry_after_s: float = MAX_RETRY_AFTER_S
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if min(self.base_backoff_s, self.max_backoff_s, self.max_retry_after_s) < 0:
            raise ValueError("backoff times must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must lie in [0, 1], got {self.jitter}")

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_retry_after_s)
        ceiling = min(self.max_backoff_s, self.base_backoff_s * 2.0 ** (attempt - 1))
        # Jitter spreads the retries of many threads that failed together.
        return ceiling * (1.0 - self.jitter * _RNG.random())


def call_with_retries(
    call: Callable[[], T],
    *,
    label: str,
    provider: str,
    policy: RetryPolicy,
    classify: Callable[[Exception], AttemptFailure | None],
) -> tuple[T, int, float]:
    """Run `call` under `provider`'s concurrency limit, retrying as `policy` says.

    Returns (result, attempts, seconds). `classify` maps an exception to an
    AttemptFailure, or None for one that is not a transport/API error (a bug),
    which propagates. Raises ChatError once retries are exhausted or on a
    failure that must not be retried.
    """
    start = time.monotonic()
    for attempt in range(1, policy.max_attempts + 1):
        _, semaphore = _limiter(provider)
        try:
            with semaphore:  # held per attempt, never while backing off
                return call(), attempt, time.monotonic() - start
        except Exception as exc:
            error = exc
        failure = classify(error)
        if failure is None:
            raise error
        usage = Usage(calls=attempt, seconds=time.monotonic() - start)
        if not failure.retryable:
            raise ChatError(f"{label}: {failure.message}.", usage) from error
        if attempt == policy.max_attempts:
            raise ChatError(f"{label} gave up after {attempt} attempts; the last: {failure.message}.", usage) from error
        wait = policy.delay(attempt, failure.retry_after_s)
        log.warning("%s attempt %d failed (%s); retrying in %.1f s", label, attempt, failure.message, wait)
        time.sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")


def classify_sdk_error(
    exc: Exception, sdk: ModuleType, *, key_env: str, where: str, timeout_s: float
) -> AttemptFailure | None:
    """Map an `openai`/`anthropic` SDK exception (both share one shape) to an AttemptFailure."""
    if isinstance(exc, sdk.APITimeoutError):
        return AttemptFailure(f"no answer within {timeout_s:g} s from {where}", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        cause = str(exc.__cause__ or exc).rstrip(".")  # the transport's reason, e.g. "Connection refused"
        return AttemptFailure(f"could not reach {where} ({cause})", retryable=True)
    if not isinstance(exc, sdk.APIStatusError):
        return None
    status = exc.status_code
    said = _server_message(exc.body)
    if status == 401:
        return AttemptFailure(f"{where} rejected the API key (HTTP 401{said}); check {key_env}", False)
    if status == 403:
        return AttemptFailure(f"{where} refused the request (HTTP 403{said}); check the key's permissions", False)
    if status == 404:
        return AttemptFailure(f"{where} knows no such model or endpoint (HTTP 404{said})", False)
    retryable = status in RETRYABLE_STATUSES or status >= 500
    retry_after = retry_after_seconds(exc.response.headers) if retryable else None
    return AttemptFailure(f"{where} answered HTTP {status}{said}", retryable, retry_after)


def retry_after_seconds(headers: object) -> float | None:
    """Seconds a response asks the client to wait (retry-after-ms, Retry-After seconds or date)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    millis = _as_float(get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    raw = get("retry-after")
    seconds = _as_float(raw)
    if seconds is not None or raw is None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(str(raw))
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _as_float(raw: object) -> float | None:
    try:
        value = float(str(raw)) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value >= 0 else None


def _server_message(body: object) -> str:
    """': <the server's own error text>' or '' when the body holds none."""
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if isinstance(message, str) and message.strip():
            text = " ".join(message.split()).rstrip(".")
            return ": " + text[:SERVER_MESSAGE_CHARS]
    return ""


def resolve_endpoint(api_key: str | None, base_url: str | None, key_env: str,
                     base_url_env: str) -> tuple[str | None, str | None]:
    """(key, base_url) from the arguments, else the environment; a local server needs no key.

    A base_url with no key gets LOCAL_PLACEHOLDER_KEY, because the SDKs refuse to start
    without one while vLLM, Ollama and llama.cpp ignore it. The key is None when none is set.
    """
    base_url = base_url or os.environ.get(base_url_env) or None
    api_key = api_key or os.environ.get(key_env) or (LOCAL_PLACEHOLDER_KEY if base_url else None)
    return api_key, base_url


class SDKChat:
    """What the SDK-backed chat models share: endpoint and key resolution, retry policy, and
    turning SDK exceptions into retry decisions. Subclasses set PROVIDER, KEY_ENV,
    BASE_URL_ENV and DEFAULT_WHERE, and build their client in `_client_for`."""

    PROVIDER = ""
    KEY_ENV = ""
    BASE_URL_ENV = ""
    DEFAULT_WHERE = ""
    MISSING_KEY = ""

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout_s: float = REQUEST_TIMEOUT_S, retry: RetryPolicy | None = None) -> None:
        api_key, base_url = resolve_endpoint(api_key, base_url, self.KEY_ENV, self.BASE_URL_ENV)
        if not api_key:
            raise ChatError(self.MISSING_KEY)
        self.name = f"{self.PROVIDER}:{model}"
        self.model = model
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._where = base_url or self.DEFAULT_WHERE
        self._sdk, self._client = self._client_for(api_key, base_url)

    def _client_for(self, api_key: str, base_url: str | None) -> tuple[Any, Any]:
        """(the SDK module, a client with the SDK's own retries off); imported lazily."""
        raise NotImplementedError

    def _classify(self, exc: Exception) -> AttemptFailure | None:
        return classify_sdk_error(exc, self._sdk, key_env=self.KEY_ENV, where=self._where, timeout_s=self.timeout_s)
