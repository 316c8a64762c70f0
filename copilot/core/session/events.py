"""The session log: one JSON object per line, the single source of truth of a session.

Writer: one per session (an exclusive lock file refuses a second), flush + fsync per event.
Reader: tolerant; a torn last line, a garbage line or an unknown event type is reported, never fatal.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from copilot.core.errors import SessionLockedError

EVENT_FORMAT_VERSION = 1
EVENTS_FILE = "events.jsonl"
LOCK_FILE = "events.lock"

# Every type the engine writes. Readers keep unknown types (a newer writer) but report them.
EVENT_TYPES: frozenset[str] = frozenset(
    {
        "session_started",
        "session_resumed",
        "suggestion_requested",
        "suggestion_received",
        "suggestion_failed",
        "hunk_decided",
        "feedback_given",
        "commit_created",
        "commit_failed",
        "undo",
        "branch_switched",
        "external_edit_detected",
        "guard_report",
        "run_started",
        "run_attached",
        "metric",
        "run_output",
        "run_finished",
        "node_created",
        "node_scored",
        "mode_changed",
        "budget_exhausted",
        "note",
        "error",
        "session_ended",
    }
)

# Keys never allowed in an event: secrets must not reach the log.
_SECRET_KEYS = frozenset(
    {"api_key", "apikey", "authorization", "auth", "password", "passwd", "secret", "token", "access_token",
     "refresh_token", "bearer", "x-api-key", "client_secret", "cookie"}
)
_SECRET_SUFFIXES = ("_api_key", "_apikey", "_secret", "_password", "_token")


@dataclass(frozen=True)
class Event:
    """One line of the session log."""

    seq: int
    t: float
    type: str
    data: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_json(self) -> str:
        record = {"v": EVENT_FORMAT_VERSION, "seq": self.seq, "t": self.t, "type": self.type}
        record.update(self.data)
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_json_default)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "Event":
        data = dict(record)
        data.pop("v", None)
        seq, t, type_ = data.pop("seq"), data.pop("t"), data.pop("type")
        return cls(seq=int(seq), t=float(t), type=str(type_), data=data)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


Listener = Callable[[Event], None]
Clock = Callable[[], float]


@dataclass
class ReadResult:
    """Events read from a log plus the problems met on the way (line numbers are 1-based)."""

    events: list[Event]
    problems: list[str]
    torn_tail: bool = False

    @property
    def last_seq(self) -> int:
        return self.events[-1].seq if self.events else 0


def read_events(path: Path) -> ReadResult:
    """Read a session log, skipping (and reporting) torn, garbage or unknown lines."""
    if not path.exists():
        return ReadResult(events=[], problems=[f"{path} does not exist"])
    raw = path.read_bytes()
    fast = _read_clean_log(raw)
    if fast is not None:
        return fast
    events: list[Event] = []
    problems: list[str] = []
    torn_tail = False
    lines = raw.split(b"\n")
    ends_with_newline = raw.endswith(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        is_last = number == len(lines)
        try:
            record = json.loads(line.decode("utf-8"))
            if not isinstance(record, dict) or "type" not in record or "seq" not in record:
                raise ValueError("not an event object")
            event = Event.from_record(record)
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            if is_last and not ends_with_newline:
                torn_tail = True
                problems.append(f"line {number}: torn last line ignored ({len(line)} bytes)")
            else:
                problems.append(f"line {number}: unreadable event skipped ({exc})")
            continue
        if event.type not in EVENT_TYPES:
            problems.append(f"line {number}: unknown event type {event.type!r} kept")
        events.append(event)
    return ReadResult(events=events, problems=problems, torn_tail=torn_tail)


def _read_clean_log(raw: bytes) -> ReadResult | None:
    """Fast path for the common case, a log with no damage: one JSON parse of all lines as an array.

    Returns None (use the line-by-line reader, which reports each problem) when anything is off.
    """
    if raw and not raw.endswith(b"\n"):
        return None
    try:
        text = raw.decode("utf-8")
        records = json.loads("[" + ",".join(line for line in text.split("\n") if line.strip()) + "]")
        events = [Event.from_record(r) for r in records]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    unknown = [f"line {i}: unknown event type {e.type!r} kept" for i, e in enumerate(events, 1) if e.type not in EVENT_TYPES]
    return ReadResult(events=events, problems=unknown)


class EventLog:
    """Append-only writer of one session's events.jsonl, holding the session lock."""

    def __init__(self, session_dir: Path, clock: Clock | None = None) -> None:
        self.session_dir = session_dir
        self.path = session_dir / EVENTS_FILE
        self._clock = clock or time.time
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._seq = 0
        self._listeners: list[Listener] = []
        self._write_lock = threading.RLock()  # listeners run inside it, so they see events in seq order

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> ReadResult:
        """Take the lock and open for appending; returns what was already in the log."""
        self.session_dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _acquire_lock(self.session_dir / LOCK_FILE)
        existing = read_events(self.path) if self.path.exists() else ReadResult([], [])
        if existing.torn_tail:
            self._truncate_torn_tail()
        self._seq = existing.last_seq
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        return existing

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> "EventLog":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    # -- writing ---------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        """Call listener(event) after each append (the live projections use this)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def append(self, type: str, **data: Any) -> Event:
        if self._fd is None:
            raise RuntimeError("event log is not open")
        _check_no_secrets(data)
        with self._write_lock:
            self._seq += 1
            event = Event(seq=self._seq, t=self._clock(), type=type, data=data)
            payload = (event.to_json() + "\n").encode("utf-8")
            os.write(self._fd, payload)
            os.fsync(self._fd)
            for listener in list(self._listeners):
                listener(event)
        return event

    def _truncate_torn_tail(self) -> None:
        raw = self.path.read_bytes()
        keep = raw.rfind(b"\n") + 1
        torn = raw[keep:]
        (self.session_dir / f"torn-tail-{int(time.time())}.bak").write_bytes(torn)
        with open(self.path, "r+b") as handle:
            handle.truncate(keep)


def _acquire_lock(lock_path: Path) -> int:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise SessionLockedError(
            f"session {lock_path.parent.name} is already open (pid {holder}). "
            "Close the other speedcopilot window, or open the session read-only with `speedcopilot replay`."
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    return fd


def _check_no_secrets(data: dict[str, Any]) -> None:
    for key in _walk_keys(data):
        lowered = key.lower()
        if lowered in _SECRET_KEYS or lowered.endswith(_SECRET_SUFFIXES):
            raise ValueError(f"refusing to log secret-looking key {key!r}")


def _walk_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield str(key)
            yield from _walk_keys(inner)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            yield from _walk_keys(inner)


def iter_type(events: Iterable[Event], *types: str) -> Iterator[Event]:
    """The events of the given types, in order."""
    wanted = set(types)
    return (e for e in events if e.type in wanted)
