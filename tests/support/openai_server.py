"""A small, real OpenAI-compatible HTTP server on 127.0.0.1 for tests, scripted answer by answer.

    with OpenAIServer() as server:
        server.script([answer("hello", chunks=3), error(429, retry_after=1), {"status": 401}])
        client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test")
        ...
        server.requests[0].headers["authorization"], server.requests[0].json["messages"]

Each request to `/v1/chat/completions` takes the next item of the script (plain dicts; the helpers below build
them). An item answers a streaming request (`"stream": true`) with SSE chunks and a non-streaming one with one
JSON body, so the same script serves both modes. When the script is empty the server answers HTTP 500 with a
message saying so (the test then sees an error, never a hang). `/v1/models` lists the model and takes nothing
from the script.

Item kinds (key "kind"; a dict with "status" and no kind is an error, one with "text" an answer):
- answer:    text, chunks (SSE pieces), delay_s (between pieces), head_delay_s (before the headers),
             finish_reason, usage (False: ignore stream_options like some servers do), model, prompt_tokens,
             completion_tokens, tool_calls (list of {"name", "arguments"}: streamed as tool-call deltas, the
             arguments in `chunks` pieces, or as message.tool_calls in a whole body)
- error:     status, message, retry_after (seconds, the Retry-After header), retry_after_ms, body (raw bytes/str)
- stall:     seconds before anything is sent (to exceed a client timeout)
- truncated: text, after_chunks; the stream stops without finish_reason and without [DONE]; abrupt=True closes
             the socket mid-chunk instead of ending the body cleanly
- raw:       body (bytes or str), content_type, status: sent as is, whatever the request mode
- raw_sse:   events (list of bytes/str): each becomes one `data: ...` SSE event, then [DONE] unless done=False
- huge:      size (characters of answer text), chunk_size
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping

DEFAULT_MODEL = "test-model"


# -- script item builders ----------------------------------------------------------------------------------


def answer(
    text: str,
    *,
    chunks: int = 3,
    delay_s: float = 0.0,
    head_delay_s: float = 0.0,
    finish_reason: str | None = "stop",
    usage: bool = True,
    model: str | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    tool_calls: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "kind": "answer", "text": text, "chunks": chunks, "delay_s": delay_s, "head_delay_s": head_delay_s,
        "finish_reason": finish_reason, "usage": usage, "model": model, "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens, "tool_calls": list(tool_calls or []),
    }


def error(
    status: int,
    message: str | None = None,
    *,
    retry_after: float | str | None = None,
    retry_after_ms: int | None = None,
    body: bytes | str | None = None,
) -> dict[str, Any]:
    return {"kind": "error", "status": status, "message": message, "retry_after": retry_after,
            "retry_after_ms": retry_after_ms, "body": body}


def stall(seconds: float) -> dict[str, Any]:
    return {"kind": "stall", "seconds": seconds}


def truncated(text: str, after_chunks: int = 2, *, chunks: int = 4, abrupt: bool = False) -> dict[str, Any]:
    return {"kind": "truncated", "text": text, "after_chunks": after_chunks, "chunks": chunks, "abrupt": abrupt}


def raw(body: bytes | str, content_type: str = "application/json", status: int = 200) -> dict[str, Any]:
    return {"kind": "raw", "body": body, "content_type": content_type, "status": status}


def raw_sse(events: Iterable[bytes | str], *, done: bool = True) -> dict[str, Any]:
    return {"kind": "raw_sse", "events": list(events), "done": done}


def huge(size: int = 5_000_000, chunk_size: int = 65_536) -> dict[str, Any]:
    return {"kind": "huge", "size": size, "chunk_size": chunk_size}


# -- records -----------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    json: Any = None
    item: dict[str, Any] | None = None  # the script item that answered it
    client_disconnected: bool = False  # a write failed because the client went away
    completed: bool = False  # the handler sent everything it meant to send
    started_at: float = field(default_factory=time.monotonic)

    @property
    def stream(self) -> bool:
        return isinstance(self.json, dict) and bool(self.json.get("stream"))

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.json.get("messages", [])) if isinstance(self.json, dict) else []


class _ClientGone(Exception):
    pass


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the handler threads: nothing outlives the context manager

    def __init__(self, owner: OpenAIServer) -> None:
        self.owner = owner
        self.closing = threading.Event()
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys
        import traceback

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, _ClientGone, TimeoutError, OSError)):
            return
        self.owner.errors.append("".join(traceback.format_exception(exc)))

    def wake_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections."""
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean; requests are recorded instead

    # -- plumbing ------------------------------------------------------------------------------------------
    def _record(self) -> RecordedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        rec = RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, parsed)
        self.server.owner._add_request(rec)
        return rec

    def _wait(self, seconds: float) -> None:
        if seconds > 0 and self.server.closing.wait(seconds):
            raise _ClientGone("server closing")

    def _write(self, data: bytes) -> None:
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError) as exc:
            self._rec.client_disconnected = True
            self.close_connection = True
            raise _ClientGone(str(exc)) from exc

    def _send_head(self, status: int, content_type: str, length: int | None, extra: Mapping[str, str] = {}) -> None:
        try:
            self._send_head_unguarded(status, content_type, length, extra)
        except OSError as exc:
            self._rec.client_disconnected = True
            self.close_connection = True
            raise _ClientGone(str(exc)) from exc

    def _send_head_unguarded(self, status: int, content_type: str, length: int | None,
                             extra: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
        else:
            self.send_header("Content-Length", str(length))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()  # flushes the header buffer through wfile
        self.wfile.flush()

    def _send_body(self, status: int, body: bytes, content_type: str, extra: Mapping[str, str] = {}) -> None:
        self._send_head(status, content_type, len(body), extra)
        self._write(body)

    def _chunk(self, data: bytes) -> None:
        self._write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _end_chunks(self) -> None:
        self._write(b"0\r\n\r\n")

    def _event(self, payload: Any) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self._chunk(b"data: " + data + b"\n\n")

    # -- routes --------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._rec = self._record()
        if self.path.split("?")[0].rstrip("/") == "/v1/models":
            body = {"object": "list", "data": [
                {"id": self.server.owner.model, "object": "model", "created": 0, "owned_by": "openai-server-test"}
            ]}
            self._send_body(200, json.dumps(body).encode(), "application/json")
        else:
            self._send_body(404, b'{"error": {"message": "not found", "type": "invalid_request_error"}}',
                            "application/json")
        self._rec.completed = True

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._rec = rec = self._record()
        if self.path.split("?")[0].rstrip("/") != "/v1/chat/completions":
            self._send_body(404, b'{"error": {"message": "unknown route", "type": "invalid_request_error"}}',
                            "application/json")
            return
        item = self.server.owner._next_item()
        rec.item = item
        try:
            self._serve(item, rec)
        except _ClientGone:
            return
        rec.completed = True

    def _serve(self, item: dict[str, Any] | None, rec: RecordedRequest) -> None:
        if item is None:
            self._send_error_body(500, "OpenAIServer: no scripted answer left for this request", {})
            return
        kind = item.get("kind") or ("error" if "status" in item else "answer")
        handler: Callable[[dict[str, Any], RecordedRequest], None] = getattr(self, f"_serve_{kind}")
        handler(item, rec)

    def _send_error_body(self, status: int, message: str, extra: Mapping[str, str], body: bytes | str | None = None
                         ) -> None:
        kinds = {400: "invalid_request_error", 401: "invalid_request_error", 429: "rate_limit_exceeded"}
        payload = body if body is not None else json.dumps(
            {"error": {"message": message, "type": kinds.get(status, "server_error"), "code": None}}
        )
        data = payload.encode() if isinstance(payload, str) else payload
        self._send_body(status, data, "application/json", extra)

    def _serve_error(self, item: dict[str, Any], rec: RecordedRequest) -> None:
        status = int(item["status"])
        extra: dict[str, str] = {}
        if item.get("retry_after") is not None:
            extra["Retry-After"] = str(item["retry_after"])
        if item.get("retry_after_ms") is not None:
            extra["retry-after-ms"] = str(item["retry_after_ms"])
        default = {401: "Incorrect API key provided.", 429: "Rate limit reached, slow down.",
                   500: "The server had an error while processing your request."}.get(status, f"error {status}")
        self._send_error_body(status, item.get("message") or default, extra, item.get("body"))

    def _serve_stall(self, item: dict[str, Any], rec: RecordedRequest) -> None:
        self._wait(float(item["seconds"]))
        self._serve_answer({"text": "late answer"}, rec)

    def _serve_raw(self, item: dict[str, Any], rec: RecordedRequest) -> None:
        body = item["body"].encode() if isinstance(item["body"], str) else item["body"]
        self._send_body(int(item.get("status", 200)), body, item.get("content_type", "application/json"))

    def _serve_raw_sse(self, item: dict[str, Any], rec: RecordedRequest) -> None:
        self._send_head(200, "text/event-stream", None)
        for event in item["events"]:
            self._event(event.encode() if isinstance(event, str) else event)
        if item.get("done", True):
            self._chunk(b"data: [DONE]\n\n")
        self._end_chunks()

    def _serve_huge(self, item: dict[str, Any], rec: RecordedRequest) -> None:
        size, step = int(item["size"]), int(item["chunk_size"])
        text = ("x" * 63 + "\n") * (size // 64) + "x" * (size % 64)
        if rec.stream:
            pieces = [text[i : i + step] for i in range(0, len(text), step)]
            self._stream(pieces, rec, finish_reason="stop", model=None, usage=True, delay_s=0.0)
        else:
            self._whole(text, rec, finish_reason="stop", model=None)

    def _serve_truncated(self, item: dict[str, Any], rec: RecordedRequest) -> None:
        pieces = _split(item["text"], int(item.get("chunks", 4)))[: int(item["after_chunks"])]
        self._send_head(200, "text/event-stream", None)
        for n, piece in enumerate(pieces):
            self._event(_chunk_payload(rec, piece, None, None, first=n == 0))
        if item.get("abrupt"):
            self.wfile.write(b"40\r\ndata: {\"choices")  # half a chunk, then the socket closes
            self.wfile.flush()
            self.close_connection = True
            return
        self._end_chunks()

    def _serve_answer(self, item: dict[str, Any], rec: RecordedRequest) -> None:
        self._wait(float(item.get("head_delay_s") or 0.0))
        text = str(item.get("text", ""))
        model = item.get("model")
        calls = list(item.get("tool_calls") or [])
        if rec.stream:
            self._stream(
                _split(text, int(item.get("chunks", 3))), rec, finish_reason=item.get("finish_reason", "stop"),
                model=model, usage=bool(item.get("usage", True)), delay_s=float(item.get("delay_s") or 0.0),
                prompt_tokens=item.get("prompt_tokens"), completion_tokens=item.get("completion_tokens"),
                tool_calls=calls, chunks=int(item.get("chunks", 3)),
            )
        else:
            self._whole(text, rec, finish_reason=item.get("finish_reason", "stop"), model=model,
                        prompt_tokens=item.get("prompt_tokens"), completion_tokens=item.get("completion_tokens"),
                        tool_calls=calls)

    def _stream(self, pieces: list[str], rec: RecordedRequest, *, finish_reason: str | None, model: str | None,
                usage: bool, delay_s: float, prompt_tokens: int | None = None,
                completion_tokens: int | None = None, tool_calls: list[dict[str, str]] | None = None,
                chunks: int = 3) -> None:
        self._send_head(200, "text/event-stream", None)
        for n, piece in enumerate(pieces):
            if n:
                self._wait(delay_s)
            self._event(_chunk_payload(rec, piece, None, model, first=n == 0))
        for index, call in enumerate(tool_calls or []):
            for k, args in enumerate(_split(call.get("arguments", ""), chunks) or [""]):
                function: dict[str, Any] = {"arguments": args}
                delta: dict[str, Any] = {"index": index, "function": function}
                if k == 0:
                    delta.update({"id": f"call_{index}", "type": "function"})
                    function["name"] = call.get("name", "")
                payload = _base(rec, model, "chat.completion.chunk")
                payload["choices"] = [{"index": 0, "delta": {"tool_calls": [delta]}, "finish_reason": None}]
                self._event(payload)
        self._event(_chunk_payload(rec, None, finish_reason, model, first=not pieces))
        options = rec.json.get("stream_options") if isinstance(rec.json, dict) else None
        if usage and isinstance(options, dict) and options.get("include_usage"):
            text = "".join(pieces)
            payload = _base(rec, model, "chat.completion.chunk")
            payload["choices"] = []
            payload["usage"] = _usage(rec, text, prompt_tokens, completion_tokens)
            self._event(payload)
        self._chunk(b"data: [DONE]\n\n")
        self._end_chunks()

    def _whole(self, text: str, rec: RecordedRequest, *, finish_reason: str | None, model: str | None,
               prompt_tokens: int | None = None, completion_tokens: int | None = None,
               tool_calls: list[dict[str, str]] | None = None) -> None:
        payload = _base(rec, model, "chat.completion")
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{n}", "type": "function",
                 "function": {"name": c.get("name", ""), "arguments": c.get("arguments", "")}}
                for n, c in enumerate(tool_calls)
            ]
        payload["choices"] = [{"index": 0, "message": message, "finish_reason": finish_reason}]
        payload["usage"] = _usage(rec, text, prompt_tokens, completion_tokens)
        self._send_body(200, json.dumps(payload).encode(), "application/json")


def _split(text: str, chunks: int) -> list[str]:
    if not text:
        return []
    chunks = max(1, min(chunks, len(text)))
    size = -(-len(text) // chunks)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _base(rec: RecordedRequest, model: str | None, obj: str) -> dict[str, Any]:
    requested = rec.json.get("model") if isinstance(rec.json, dict) else None
    return {"id": "chatcmpl-test", "object": obj, "created": 0, "model": model or requested or DEFAULT_MODEL}


def _chunk_payload(rec: RecordedRequest, content: str | None, finish: str | None, model: str | None, *,
                   first: bool) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if first:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    payload = _base(rec, model, "chat.completion.chunk")
    payload["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    return payload


def _usage(rec: RecordedRequest, text: str, prompt_tokens: int | None, completion_tokens: int | None
           ) -> dict[str, int]:
    prompt = prompt_tokens if prompt_tokens is not None else max(1, len(json.dumps(rec.messages)) // 4)
    completion = completion_tokens if completion_tokens is not None else max(1, len(text) // 4)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class OpenAIServer:
    """Context manager running the server in a thread; `base_url` ends in /v1 like the real API's."""

    def __init__(self, model: str = DEFAULT_MODEL) -> None:
        self.model = model
        self.requests: list[RecordedRequest] = []
        self.errors: list[str] = []  # unexpected exceptions inside handlers (a test may assert it stays empty)
        self._items: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------
    def __enter__(self) -> OpenAIServer:
        self._httpd = _Server(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="openai-test-server", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.closing.set()  # wakes handlers sleeping in a scripted delay
        httpd.shutdown()
        httpd.wake_connections()
        httpd.server_close()  # joins handler threads (block_on_close)
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- test API ------------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, items: Iterable[dict[str, Any] | str]) -> None:
        """Queue answers/faults; a bare string is a plain answer."""
        with self._lock:
            self._items.extend(answer(i) if isinstance(i, str) else dict(i) for i in items)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def completions(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST"]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 120.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.01)
        return predicate()

    # -- used by the handler -------------------------------------------------------------------------------
    def _next_item(self) -> dict[str, Any] | None:
        with self._lock:
            return self._items.pop(0) if self._items else None

    def _add_request(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)
