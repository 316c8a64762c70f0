"""LLM providers: an OpenAI-compatible endpoint (streaming), the offline oracle, and replay of recorded answers.

Every provider answers `complete(messages, on_delta)` with a `Completion`, streaming its text through
`on_delta` as it arrives, and turns every failure into a `ProviderError` whose message says what to do.

The API key is kept out of every message, exception, log line and repr: it is only handed to the SDK client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Awaitable, Callable, Mapping, Protocol, Sequence
from urllib.parse import urlsplit

from copilot.core.edits.model import ToolCall
from copilot.core.errors import ConfigError, ProviderError, ProviderExhausted, TrackError

log = logging.getLogger(__name__)

DeltaCallback = Callable[[str], None]

MAX_ANSWER_CHARS = 1_000_000  # a longer answer means a misbehaving endpoint (or no max-token limit)
_EXCERPT_CHARS = 200
DEFAULT_DEADLINE_S = 180.0  # one whole answer, retries included; the SDK timeout only bounds each read


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    latency_s: float
    finish_reason: str | None
    usage_estimated: bool = False  # True when the endpoint reported no usage and tokens were counted roughly
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def truncated(self) -> bool:
        """The model stopped at the token limit: the answer is cut off."""
        return self.finish_reason == "length"


class Provider(Protocol):
    name: str  # "openai" | "oracle" | "replay"
    model: str
    label: str  # shown in the UI header
    offline: bool

    async def complete(
        self, messages: list[dict[str, str]], on_delta: DeltaCallback | None = None, *,
        tools: list[dict[str, Any]] | None = None, max_tokens: int | None = None,
    ) -> Completion: ...


# ---------------------------------------------------------------------------------------------------------
# Token and cost accounting


def estimate_tokens(text: str) -> int:
    """Rough token count (about 4 characters per token) for endpoints that report no usage."""
    return math.ceil(len(text) / 4) if text else 0


def estimate_prompt_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    return sum(estimate_tokens(str(m.get("content", ""))) + 4 for m in messages)


def price_for(model: str, prices: Mapping[str, tuple[float, float]] | None) -> tuple[float, float] | None:
    """The (input, output) USD per 1M tokens for `model`: an exact entry, else the longest entry the model name
    starts with (so "gpt-4o-mini-2024-07-18" uses "gpt-4o-mini"), ignoring a "vendor/" prefix."""
    if not prices:
        return None
    for name in (model, model.rsplit("/", 1)[-1]):
        if name in prices:
            return prices[name]
        prefixes = [key for key in prices if name.startswith(key)]
        if prefixes:
            return prices[max(prefixes, key=len)]
    return None


def cost_of(model: str, prompt_tokens: int, completion_tokens: int,
            prices: Mapping[str, tuple[float, float]] | None) -> float | None:
    price = price_for(model, prices)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


async def _stream_text(text: str, on_delta: DeltaCallback | None, chunk_chars: int, delay_s: float) -> None:
    """Hand text to on_delta in pieces, yielding to the loop between them (cancellable, UI looks the same)."""
    for start in range(0, len(text), chunk_chars):
        if on_delta is not None:
            on_delta(text[start : start + chunk_chars])
        await asyncio.sleep(delay_s)


# ---------------------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint


class _Retryable(Exception):
    """One attempt failed in a way another attempt may fix; `message` is used if no attempt is left."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class OpenAIProvider:
    """Any OpenAI-compatible chat endpoint through the official SDK, streaming.

    The SDK's own retries are off: this class retries 429/5xx/connection errors itself (exponential backoff with
    jitter, Retry-After honoured up to `max_retry_after_s`), never retries once text was streamed to `on_delta`
    (the caller would see it twice), and enforces `deadline_s` over the whole call, because the SDK's timeout
    applies per read and a slow stream could run for ever.
    """

    name = "openai"
    offline = False

    def __init__(
        self,
        *,
        model: str,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_retries: int = 3,
        prices: Mapping[str, tuple[float, float]] | None = None,
        stream: bool = True,
        max_answer_chars: int = MAX_ANSWER_CHARS,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = 60.0,
        temperature: float | None = None,
        max_tokens: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not api_key:
            if base_url is None:
                raise ProviderError(
                    "No API key for the openai provider: set OPENAI_API_KEY (or api_key in the config), point "
                    "OPENAI_BASE_URL at a local OpenAI-compatible server, or work offline with --provider oracle."
                )
            api_key = "sk-no-key-required"  # local servers (vLLM, ollama, llama.cpp) accept any key
        self.model = model
        self._api_key = api_key
        self.base_url = base_url.rstrip("/") if base_url else None
        self.timeout_s = float(timeout_s)
        self.deadline_s = float(deadline_s)
        self.max_retries = max(0, int(max_retries))
        self.prices = dict(prices or {})
        self.stream = stream
        self.max_answer_chars = max_answer_chars
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_retry_after_s = max_retry_after_s
        self.temperature = temperature
        self.max_tokens = max_tokens
        self._sleep = sleep  # the wait between attempts; tests pass a recorder instead of waiting
        self.label = f"openai {model} @ {self.host}"

    @property
    def host(self) -> str:
        if not self.base_url:
            return "api.openai.com"
        parts = urlsplit(self.base_url)
        return parts.hostname and (f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname) or self.base_url

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

    # -- public ------------------------------------------------------------------------------------------
    async def complete(self, messages: list[dict[str, str]], on_delta: DeltaCallback | None = None, *,
                       tools: list[dict[str, Any]] | None = None, max_tokens: int | None = None) -> Completion:
        """One answer; `tools` offers edit tools (OpenAI function calling), `max_tokens` overrides the limit."""
        started = time.monotonic()
        deadline = asyncio.timeout(self.deadline_s)
        request = {"tools": tools, "max_tokens": max_tokens if max_tokens is not None else self.max_tokens}
        try:
            async with deadline:
                return await self._with_retries(messages, on_delta, started, request)
        except TimeoutError:
            if not deadline.expired():
                raise
            raise ProviderError(
                f"No complete answer from {self.host} within the {self.deadline_s:g} s deadline (the model may be "
                "slow or the answer very long). Try again, raise request_deadline_s, or use --provider oracle."
            ) from None

    # -- retries -----------------------------------------------------------------------------------------
    async def _with_retries(self, messages: list[dict[str, str]], on_delta: DeltaCallback | None,
                            started: float, request: dict[str, Any]) -> Completion:
        emitted = False

        def forward(piece: str) -> None:
            nonlocal emitted
            emitted = True
            if on_delta is not None:
                on_delta(piece)

        attempt = 0
        while True:
            try:
                return await self._attempt(messages, forward, started, request)
            except _Retryable as exc:
                attempts = attempt + 1
                if emitted:
                    raise ProviderError(self._scrub(exc.message)) from None
                if attempt >= self.max_retries:
                    suffix = f" (gave up after {attempts} attempts)" if attempts > 1 else ""
                    raise ProviderError(self._scrub(exc.message) + suffix) from None
                delay = self._delay(attempt, exc.retry_after_s)
                remaining = self.deadline_s - (time.monotonic() - started)
                if delay >= remaining:
                    raise ProviderError(
                        self._scrub(exc.message)
                        + f" Waiting {delay:.1f} s more would pass the {self.deadline_s:g} s deadline; try later."
                    ) from None
                log.info("openai provider: attempt %d failed (%s); retrying in %.2f s",
                         attempts, self._scrub(exc.message)[:120], delay)
                await self._sleep(delay)
                attempt += 1

    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None and retry_after_s >= 0:
            return min(retry_after_s, self.max_retry_after_s)
        base = min(self.backoff_s * (2**attempt), self.max_backoff_s)
        return base * (0.75 + 0.5 * random.random())  # jitter keeps parallel clients apart

    # -- one attempt -------------------------------------------------------------------------------------
    def _client(self) -> Any:
        from openai import AsyncOpenAI

        # A float timeout works across SDK generations (httpx / httpx2); it applies per connect and per read.
        return AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0)

    def _request_args(self, messages: list[dict[str, str]], request: dict[str, Any]) -> dict[str, Any]:
        args: dict[str, Any] = {"model": self.model, "messages": messages}
        if self.temperature is not None:
            args["temperature"] = self.temperature
        if request.get("max_tokens") is not None:
            args["max_tokens"] = request["max_tokens"]
        if request.get("tools"):
            args["tools"] = request["tools"]
            args["tool_choice"] = "auto"
        if self.stream:
            args["stream"] = True
            args["stream_options"] = {"include_usage": True}
        return args

    async def _attempt(self, messages: list[dict[str, str]], on_delta: DeltaCallback, started: float,
                       request: dict[str, Any]) -> Completion:
        import openai

        try:
            async with self._client() as client:
                result = await client.chat.completions.create(**self._request_args(messages, request))
                if self.stream and isinstance(result, openai.AsyncStream):
                    return await self._read_stream(result, messages, on_delta, started)
                return self._from_whole(result, messages, on_delta, started)
        except (ProviderError, _Retryable):
            raise
        except openai.APIStatusError as exc:
            raise self._status_error(exc) from None
        except openai.APITimeoutError:
            raise _Retryable(
                f"The endpoint {self.host} sent nothing for {self.timeout_s:g} s (timeout). The model may be "
                "overloaded: try again, raise request_timeout_s, or use --provider oracle."
            ) from None
        except openai.APIConnectionError as exc:
            raise _Retryable(self._connection_message(exc)) from None
        except json.JSONDecodeError as exc:
            raise ProviderError(
                f"The endpoint {self.host} sent a response that is not valid JSON ({json_problem(exc)}). "
                "Check that OPENAI_BASE_URL points at an OpenAI-compatible API (it usually ends in /v1)."
            ) from None
        except UnicodeDecodeError as exc:
            raise ProviderError(
                f"The endpoint {self.host} sent bytes that are not valid UTF-8 (byte {exc.start}). "
                "Check OPENAI_BASE_URL, or try another server."
            ) from None
        except openai.APIError as exc:  # e.g. an error object inside the stream
            raise ProviderError(
                f"The endpoint {self.host} reported an error: {_excerpt(exc.message)}. Try again, or use "
                "--provider oracle."
            ) from None
        except openai.OpenAIError as exc:
            raise ProviderError(f"The openai client failed: {_excerpt(str(exc))}.") from None
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderError(
                f"The endpoint {self.host} sent an answer of an unexpected shape ({type(exc).__name__}: "
                f"{_excerpt(str(exc))}). Is it an OpenAI-compatible chat completions API?"
            ) from None

    async def _read_stream(self, stream: Any, messages: list[dict[str, str]], on_delta: DeltaCallback,
                           started: float) -> Completion:
        try:
            content_type = stream.response.headers.get("content-type", "")
            if "json" in content_type:  # the server ignored stream=True and sent one JSON body
                body = await stream.response.aread()
                return self._from_whole(json.loads(body), messages, on_delta, started)
            parts: list[str] = []
            size = 0
            finish: str | None = None
            model = self.model
            usage: Any = None
            chunks = 0
            calls: dict[int, dict[str, str]] = {}
            async for chunk in stream:
                chunks += 1
                model = getattr(chunk, "model", None) or model
                if getattr(chunk, "usage", None) is not None:
                    usage = chunk.usage
                for choice in getattr(chunk, "choices", None) or []:
                    delta = getattr(choice, "delta", None)
                    piece = getattr(delta, "content", None)
                    if isinstance(piece, str) and piece:
                        size += len(piece)
                        if size > self.max_answer_chars:
                            raise ProviderError(self._too_long())
                        parts.append(piece)
                        on_delta(piece)
                    for call in getattr(delta, "tool_calls", None) or []:
                        size += _collect_tool_call(calls, call)
                        if size > self.max_answer_chars:
                            raise ProviderError(self._too_long())
                    if getattr(choice, "finish_reason", None):
                        finish = choice.finish_reason
        finally:
            await stream.close()
        text = "".join(parts)
        if chunks == 0:
            raise ProviderError(
                f"The endpoint {self.host} returned no streamed data (content-type {content_type or 'none'!r}). "
                "Check that OPENAI_BASE_URL points at an OpenAI-compatible API (it usually ends in /v1)."
            )
        if finish is None:
            raise _Retryable(
                f"The answer stream from {self.host} ended early, after {len(text)} characters and without a "
                "finish reason (the connection or the server dropped it). Ask again."
            )
        return self._completion(text, model, finish, usage, messages, started, _tool_calls(calls))

    def _from_whole(self, result: Any, messages: list[dict[str, str]], on_delta: DeltaCallback,
                    started: float) -> Completion:
        if isinstance(result, str):
            raise ProviderError(
                f"The endpoint {self.host} answered with text that is not JSON: {_excerpt(result)!r}. Check that "
                "OPENAI_BASE_URL points at an OpenAI-compatible API (it usually ends in /v1)."
            )
        data = result if isinstance(result, dict) else result.model_dump()
        choices = data.get("choices") or []
        if not choices:
            raise ProviderError(f"The endpoint {self.host} answered without any choice: {_excerpt(json.dumps(data))}")
        message = choices[0].get("message") or {}
        text = message.get("content") or ""
        if not isinstance(text, str):
            raise ProviderError(f"The endpoint {self.host} answered with non-text content; expected a string.")
        if len(text) > self.max_answer_chars:
            raise ProviderError(self._too_long())
        if text:
            on_delta(text)
        calls = {n: {"id": c.get("id") or "", "name": (c.get("function") or {}).get("name") or "",
                     "arguments": (c.get("function") or {}).get("arguments") or ""}
                 for n, c in enumerate(message.get("tool_calls") or [])}
        usage = data.get("usage")
        return self._completion(text, data.get("model") or self.model, choices[0].get("finish_reason"), usage,
                                messages, started, _tool_calls(calls))

    def _completion(self, text: str, model: str, finish: str | None, usage: Any,
                    messages: list[dict[str, str]], started: float,
                    tool_calls: tuple[ToolCall, ...] = ()) -> Completion:
        prompt_tokens = _usage_field(usage, "prompt_tokens")
        completion_tokens = _usage_field(usage, "completion_tokens")
        estimated = prompt_tokens is None or completion_tokens is None
        if prompt_tokens is None:
            prompt_tokens = estimate_prompt_tokens(messages)
        if completion_tokens is None:
            completion_tokens = estimate_tokens(text)
        cost = cost_of(self.model, prompt_tokens, completion_tokens, self.prices)
        if cost is None and model != self.model:
            cost = cost_of(model, prompt_tokens, completion_tokens, self.prices)
        return Completion(
            text=text, model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
            cost_usd=cost, latency_s=time.monotonic() - started, finish_reason=finish, usage_estimated=estimated,
            tool_calls=tool_calls,
        )

    # -- error messages ----------------------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _too_long(self) -> str:
        return (
            f"The answer from {self.host} passed {self.max_answer_chars:,} characters, so it was cut off: the "
            "endpoint is misbehaving or has no output limit. Try again or use another model."
        )

    def _connection_message(self, exc: Exception) -> str:
        cause = exc.__cause__ or exc.__context__
        detail = f" ({type(cause).__name__}: {_excerpt(str(cause))})" if cause is not None else ""
        where = self.base_url or "https://api.openai.com/v1"
        if _dropped_by_peer(cause):  # it was reached: it (or a proxy) hung up mid-answer
            return self._scrub(
                f"The endpoint {where} closed the connection before its answer was complete{detail}. The server "
                "may have crashed or restarted, or a proxy cut the connection: try again, or work offline with "
                "--provider oracle."
            )
        return self._scrub(
            f"Cannot reach the model endpoint {where}{detail}. Check OPENAI_BASE_URL and that the server is "
            "running, or work offline with --provider oracle."
        )

    def _status_error(self, exc: Any) -> Exception:
        status = int(getattr(exc, "status_code", 0) or 0)
        body = getattr(exc, "body", None)
        said = body.get("message") if isinstance(body, Mapping) else None
        detail = self._scrub(_excerpt(said if isinstance(said, str) and said else str(getattr(exc, "message", exc))))
        if status == 401:
            return ProviderError(
                f"The endpoint {self.host} refused the API key (HTTP 401: {detail}). Check OPENAI_API_KEY "
                "(or api_key in the config), or work offline with --provider oracle."
            )
        if status == 403:
            return ProviderError(
                f"The endpoint {self.host} denied access to model {self.model!r} (HTTP 403: {detail}). Check that "
                "your key may use this model, or pick another with --model."
            )
        if status == 404:
            return ProviderError(
                f"Model {self.model!r} or the chat completions route was not found at {self.host} (HTTP 404: "
                f"{detail}). Check --model and OPENAI_BASE_URL (it usually ends in /v1)."
            )
        if status == 429:
            return _Retryable(
                f"The endpoint {self.host} is rate limiting requests (HTTP 429: {detail}). Wait a minute and try "
                "again, or use --provider oracle.",
                _retry_after(exc),
            )
        if status >= 500 or status in (408, 409):
            return _Retryable(
                f"The endpoint {self.host} failed with HTTP {status} ({detail}). Try again later, or use "
                "--provider oracle.",
                _retry_after(exc),
            )
        return ProviderError(
            f"The endpoint {self.host} rejected the request (HTTP {status}: {detail}). The prompt may be too long "
            "for the model's context; try fewer hints or another model."
        )


def _collect_tool_call(calls: dict[int, dict[str, str]], delta: Any) -> int:
    """Fold one streamed tool-call delta into `calls` (by index); returns the characters it added."""
    index = int(getattr(delta, "index", 0) or 0)
    entry = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
    if getattr(delta, "id", None):
        entry["id"] = delta.id
    function = getattr(delta, "function", None)
    added = 0
    if function is not None:
        if getattr(function, "name", None):
            entry["name"] += function.name
            added += len(function.name)
        if getattr(function, "arguments", None):
            entry["arguments"] += function.arguments
            added += len(function.arguments)
    return added


def _tool_calls(calls: dict[int, dict[str, str]]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(name=c["name"], arguments=c["arguments"], id=c["id"] or None)
                 for _, c in sorted(calls.items()))


def _usage_field(usage: Any, key: str) -> int | None:
    if usage is None:
        return None
    value = usage.get(key) if isinstance(usage, Mapping) else getattr(usage, key, None)
    return int(value) if isinstance(value, (int, float)) and value >= 0 else None


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return float(value) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def json_problem(exc: json.JSONDecodeError) -> str:
    """'Expecting value at line 1, column 5': where a JSON text went wrong, said once."""
    where = f"line {exc.lineno}, column {exc.colno}"
    return exc.msg if " at " in exc.msg or where in exc.msg else f"{exc.msg} at {where}"


_PEER_CLOSED = ("peer closed", "server disconnected", "connection reset", "incomplete chunked read",
                "remote end closed", "connection aborted")


def _dropped_by_peer(cause: BaseException | None) -> bool:
    """The connection was made and then closed by the other side (not: refused, no route, DNS, TLS)."""
    while cause is not None:
        if isinstance(cause, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return True
        name, text = type(cause).__name__, str(cause).lower()
        if name in ("RemoteProtocolError", "ReadError") or any(p in text for p in _PEER_CLOSED):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------------------
# Offline oracle


class OracleProvider:
    """Offline: proposes the known change from record N to the next record as SEARCH/REPLACE blocks.

    Where the current files come from: `current_files` (a hook returning path -> text) when given; otherwise the
    file blocks that `prompts.build_messages` renders in the user message (the last user message holding any,
    so retry messages do not hide them); otherwise record N's files. The blocks go from the *current* text to
    record N+1, so a script that already moved part of the way gets only the rest. When nothing is left, the
    answer is a short text without blocks.
    """

    name = "oracle"
    model = "oracle"
    offline = True

    def __init__(
        self,
        track: Any,
        record: int,
        *,
        current_files: Callable[[], Mapping[str, str]] | None = None,
        chunk_chars: int = 160,
        chunk_delay_s: float = 0.0,
    ) -> None:
        self.track = track
        self.record = record
        self.current_files = current_files
        self.chunk_chars = max(1, chunk_chars)
        self.chunk_delay_s = chunk_delay_s
        self.target = self._next_record()
        target = f"record {self.target}" if self.target is not None else "no later record"
        self.label = f"offline oracle (knows {target})"

    def _next_record(self) -> int | None:
        try:
            later = [r for r in self.track.records() if r.number > self.record]
        except TrackError:
            return None
        with_code = [r for r in later if getattr(r, "has_code", True)]
        pick = with_code or later  # an unsynced ladder knows no code yet; complete() then says what to do
        return min(r.number for r in pick) if pick else None

    async def complete(self, messages: list[dict[str, str]], on_delta: DeltaCallback | None = None, *,
                       tools: list[dict[str, Any]] | None = None, max_tokens: int | None = None) -> Completion:
        del tools, max_tokens  # the oracle always answers in SEARCH/REPLACE blocks, complete
        started = time.monotonic()
        text = self.answer_for(self._current(messages))
        await _stream_text(text, on_delta, self.chunk_chars, self.chunk_delay_s)
        return Completion(text=text, model=self.model, prompt_tokens=0, completion_tokens=0, cost_usd=0.0,
                          latency_s=time.monotonic() - started, finish_reason="stop")

    def answer_for(self, current: Mapping[str, str]) -> str:
        """The oracle's whole answer for the given current files."""
        from copilot.core.edits import blocks_from_texts

        if self.target is None:
            raise ProviderExhausted(
                f"Record {self.record} is the last record of track {self.track.name!r}: the oracle has nothing to "
                "propose. Use --provider openai to ask a model for new ideas."
            )
        try:
            target_files = self.track.record_files(self.target)
        except TrackError as exc:
            raise ProviderError(f"The offline oracle cannot read record {self.target}: {exc}") from None
        script = self.track.script_name
        if len(target_files) == 1 and script in current and script not in target_files:
            target_files = {script: next(iter(target_files.values()))}  # the main script was renamed upstream
        blocks = [
            blocks_from_texts(current.get(path, ""), new, path)
            for path, new in target_files.items()
            if _normalised(current.get(path, "")) != _normalised(new)
        ]
        blocks = [b for b in blocks if b]
        if not blocks:
            raise ProviderExhausted(f"the offline oracle has nothing left to propose: the files already match "
                                    f"record {self.target}. Run them, or use --provider openai for new ideas.")
        return self._rationale() + "\n\n" + "\n".join(blocks)

    def _rationale(self) -> str:
        info = None
        try:
            info = self.track.record(self.target)
        except TrackError:
            pass
        head = f"Offline oracle: the known change from record {self.record} to record {self.target}"
        if info is not None and getattr(info, "description", ""):
            head += f" ({_one_line(info.description)})"
        hint = None
        try:
            hint = self.track.hint(self.record, 2)
        except TrackError:
            pass
        if not hint:
            return head + "."
        return head + ".\n\n" + _safe_rationale(hint)

    def _current(self, messages: Sequence[Mapping[str, str]]) -> dict[str, str]:
        if self.current_files is not None:
            return dict(self.current_files())
        from copilot.core.llm.prompts import files_from_messages

        shown = files_from_messages(messages)
        try:
            base = self.track.record_files(self.record)
        except TrackError:
            base = {}
        return {**base, **shown}


def _normalised(text: str) -> str:
    return text.replace("\r\n", "\n").rstrip("\n")


def _one_line(text: str, limit: int = 160) -> str:
    return _excerpt(text, limit)


def _safe_rationale(hint: str, limit: int = 2_000) -> str:
    """Hint text that cannot be mistaken for an edit block by the parser."""
    lines = []
    for line in hint.strip().splitlines():
        stripped = line.strip()
        if stripped.startswith(("<<<<<<<", ">>>>>>>", "=======")):
            continue
        lines.append(line.replace("```", "'''").replace("~~~", "'''"))
    text = "\n".join(lines)
    return text if len(text) <= limit else text[:limit].rstrip() + "\n[… hint truncated …]"


# ---------------------------------------------------------------------------------------------------------
# Replay


class ReplayProvider:
    """Answers recorded in a session, in order (text, tool calls, finish reason); for replays and tests."""

    name = "replay"
    offline = True

    def __init__(self, answers: Sequence[str | Completion], model: str = "replay", *, chunk_chars: int = 160) -> None:
        self.answers = [a if isinstance(a, Completion) else _recorded(a) for a in answers]
        self.model = model
        self.chunk_chars = max(1, chunk_chars)
        self._next = 0
        self.label = f"replay of {len(self.answers)} recorded answer{'s' if len(self.answers) != 1 else ''}"

    @classmethod
    def from_events(cls, events: Sequence[Any], model: str = "replay") -> ReplayProvider:
        answers = []
        for event in events:
            kind = getattr(event, "type", None) if not isinstance(event, Mapping) else event.get("type")
            if kind != "suggestion_received":
                continue
            raw = event.get("raw_text")
            if isinstance(raw, str):
                calls = tuple(ToolCall(name=str(c.get("name", "")), arguments=str(c.get("arguments", "")))
                              for c in event.get("tool_calls") or [] if isinstance(c, Mapping))
                answers.append(_recorded(raw, calls, event.get("finish_reason") or "stop"))
        return cls(answers, model=model)

    @property
    def remaining(self) -> int:
        return len(self.answers) - self._next

    async def complete(self, messages: list[dict[str, str]], on_delta: DeltaCallback | None = None, *,
                       tools: list[dict[str, Any]] | None = None, max_tokens: int | None = None) -> Completion:
        del tools, max_tokens  # a replay answers what was recorded
        started = time.monotonic()
        if self._next >= len(self.answers):
            raise ProviderError(
                f"The replay has no recorded answer left (it held {len(self.answers)}). The session asks for more "
                "suggestions than the recording had; continue with --provider oracle or openai."
            )
        recorded = self.answers[self._next]
        self._next += 1
        await _stream_text(recorded.text, on_delta, self.chunk_chars, 0.0)
        return Completion(text=recorded.text, model=self.model, prompt_tokens=0, completion_tokens=0, cost_usd=0.0,
                          latency_s=time.monotonic() - started, finish_reason=recorded.finish_reason,
                          tool_calls=recorded.tool_calls)


def _recorded(text: str, tool_calls: tuple[ToolCall, ...] = (), finish_reason: str | None = "stop") -> Completion:
    return Completion(text=text, model="replay", prompt_tokens=0, completion_tokens=0, cost_usd=0.0, latency_s=0.0,
                      finish_reason=finish_reason, tool_calls=tool_calls)


# ---------------------------------------------------------------------------------------------------------
# Factory

PROVIDER_NAMES = ("auto", "openai", "oracle")


def build_provider(
    name: str,
    *,
    model: str,
    api_key: str | None,
    base_url: str | None,
    timeout_s: float,
    deadline_s: float,
    max_retries: int,
    prices: Mapping[str, tuple[float, float]] | None,
    track: Any,
    record: int,
    max_tokens: int | None = None,
) -> Provider:
    """"auto" = openai when an API key is set, else the offline oracle. "openai" without a key needs a base URL
    (a local server); without either it raises ProviderError saying what to set."""
    choice = (name or "auto").lower()
    if choice == "auto":
        choice = "openai" if api_key else "oracle"
    if choice == "oracle":
        return OracleProvider(track, record)
    if choice == "openai":
        return OpenAIProvider(model=model, api_key=api_key, base_url=base_url, timeout_s=timeout_s,
                              deadline_s=deadline_s, max_retries=max_retries, prices=prices, max_tokens=max_tokens)
    if choice == "replay":
        raise ConfigError("The replay provider answers from a recorded session: use `speedcopilot replay`.")
    raise ConfigError(f"Unknown provider {name!r}; choose one of: {', '.join(PROVIDER_NAMES)}.")
