"""The session log: one JSON object per line, the single source of truth of a session.

Writer: one per session (an exclusive lock file refuses a second), flush + fsync per event.
Reader: tolerant; a torn last line, a garbage line, an unknown or malformed event, out-of-order, duplicated or
missing seq numbers are reported with line numbers, never fatal; every valid event is kept, in seq order.
Event types and their fields live in schema.py: `append` takes a typed body, `event.body` gives one back.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from copilot.core.errors import SessionLockedError, StorageError
from copilot.core.session.schema import (
    EVENT_TYPES,
    FORMAT_VERSION,
    EventBody,
    Malformed,
    SchemaError,
    Unknown,
    decode,
)
from copilot.core.session.storage import STORAGE_ERRNOS, storage_error

__all__ = ["EVENTS_FILE", "EVENT_TYPES", "Event", "EventLog", "ReadResult", "iter_type", "read_events"]

EVENT_FORMAT_VERSION = FORMAT_VERSION
EVENTS_FILE = "events.jsonl"
LOCK_FILE = "events.lock"

# Keys never allowed in an event: secrets must not reach the log.
_SECRET_KEYS = frozenset(
    {"api_key", "apikey", "authorization", "auth", "password", "passwd", "secret", "token", "access_token",
     "refresh_token", "bearer", "x-api-key", "client_secret", "cookie"}
)
_SECRET_SUFFIXES = ("_api_key", "_apikey", "_secret", "_password", "_token")


class Event:
    """One line of the session log: the envelope (seq, t, type) and the fields; `body` is the typed view."""

    __slots__ = ("seq", "t", "type", "data", "_body")

    def __init__(self, seq: int, t: float, type: str, data: dict[str, Any] | None = None,
                 body: EventBody | None = None) -> None:
        self.seq = seq
        self.t = t
        self.type = type
        self.data = data if data is not None else {}
        self._body = body

    @property
    def body(self) -> EventBody:
        """The typed body (decoded once). A body whose fields have the wrong shape is `Malformed`."""
        if self._body is None:
            try:
                self._body = decode(self.type, self.data)
            except SchemaError as exc:
                self._body = Malformed(type_name=self.type, problem=str(exc), extra=dict(self.data))
        return self._body

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def to_json(self) -> str:
        record = {"v": EVENT_FORMAT_VERSION, "seq": self.seq, "t": self.t, "type": self.type}
        record.update(self.data)
        return json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=_json_default)

    @classmethod
    def from_record(cls, record: dict[str, Any], owned: bool = False) -> "Event":
        """The event of one parsed line. `owned`: the record is a fresh dict nobody else holds, so it becomes
        the event's data as it is (the reader's hot path: no copy)."""
        data = record if owned else dict(record)
        data.pop("v", None)
        seq, t, type_ = data.pop("seq"), data.pop("t"), data.pop("type")
        event = cls.__new__(cls)
        event.seq = seq if type(seq) is int else int(seq)
        event.t = t if type(t) is float else float(t)
        event.type = type_ if type(type_) is str else str(type_)
        event.data = data
        event._body = None
        return event

    @classmethod
    def of(cls, seq: int, t: float, body: EventBody) -> "Event":
        return cls(seq=seq, t=t, type=body.TYPE, data=body.to_dict(), body=body)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.seq, self.t, self.type, self.data) == (other.seq, other.t, other.type, other.data)

    def __hash__(self) -> int:
        return hash((self.seq, self.t, self.type))

    def __repr__(self) -> str:
        return f"Event(seq={self.seq}, t={self.t}, type={self.type!r}, data={self.data!r})"


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
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
        return max((e.seq for e in self.events), default=0)


def read_events(path: Path) -> ReadResult:
    """Read a session log: every valid event, in seq order; torn, garbage, unknown, malformed, out-of-order,
    duplicated and missing events are reported (by line number), never fatal."""
    if not path.exists():
        return ReadResult(events=[], problems=[f"{path} does not exist"])
    raw = path.read_bytes()
    fast = _read_clean_log(raw)
    if fast is not None:
        return fast
    events: list[Event] = []
    lines: list[int] = []
    problems: list[str] = []
    torn_tail = False
    chunks = raw.split(b"\n")
    ends_with_newline = raw.endswith(b"\n")
    for number, line in enumerate(chunks, start=1):
        if not line.strip():
            continue
        is_last = number == len(chunks)
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
        events.append(event)
        lines.append(number)
    ordered, order_problems = _in_seq_order(events, lines)
    return ReadResult(events=ordered, problems=problems + order_problems + _shape_problems(ordered, lines, events),
                      torn_tail=torn_tail)


def _read_clean_log(raw: bytes) -> ReadResult | None:
    """Fast path for the common case, a log with no damage: one JSON parse of all lines as an array.

    Returns None (use the line-by-line reader, which reports each problem) when anything is off.
    """
    if raw and not raw.endswith(b"\n"):
        return None
    try:
        text = raw.decode("utf-8")
        records = json.loads("[" + ",".join(line for line in text.split("\n") if line.strip()) + "]")
        events = [Event.from_record(r, owned=True) for r in records]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    lines = list(range(1, len(events) + 1))
    ordered, order_problems = _in_seq_order(events, lines)
    return ReadResult(events=ordered, problems=order_problems + _shape_problems(ordered, lines, events))


def _in_seq_order(events: list[Event], lines: list[int]) -> tuple[list[Event], list[str]]:
    """Events sorted by seq (stable), with gaps, duplicates and out-of-order lines reported; none dropped."""
    problems: list[str] = []
    increasing = all(a.seq < b.seq for a, b in zip(events, events[1:]))
    if not increasing:
        seen: dict[int, int] = {}
        highest = 0
        for event, line in zip(events, lines):
            if event.seq in seen:
                problems.append(f"line {line}: duplicate seq {event.seq} (also line {seen[event.seq]}); both kept")
            elif event.seq < highest:
                problems.append(f"line {line}: seq {event.seq} is out of order (after seq {highest}); kept in seq order")
            seen.setdefault(event.seq, line)
            highest = max(highest, event.seq)
        order = sorted(range(len(events)), key=lambda k: (events[k].seq, lines[k]))
        events = [events[k] for k in order]
    previous = 0
    for event in events:
        seq = event.seq
        if seq > previous + 1 and previous:
            missing = seq - previous - 1
            problems.append(f"seq {previous} → {seq}: {missing} event{'s' if missing > 1 else ''} missing")
        if seq > previous:
            previous = seq
    return events, problems


_QUICK_TYPES = frozenset({"metric"})  # the bulk of a log: checked by their required keys only


def _shape_problems(ordered: list[Event], lines: list[int], file_order: list[Event]) -> list[str]:
    """Unknown types, malformed known types and a missing session_started, each named with its line."""
    problems: list[str] = []
    in_file_order = ordered is file_order or all(a is b for a, b in zip(ordered, file_order))
    line_of = {} if in_file_order else {id(e): n for e, n in zip(file_order, lines)}
    for index, event in enumerate(ordered):
        line = lines[index] if in_file_order else line_of.get(id(event), 0)
        if event.type in _QUICK_TYPES:
            if event.data.get("run_id") is None or not isinstance(event.data.get("step"), int):
                problems.append(f"line {line}: metric event without run_id or step; skipped by readers")
                event._body = Malformed(type_name=event.type, problem="metric without run_id or step",
                                        extra=dict(event.data))
            continue
        body = event.body
        if isinstance(body, Unknown):
            problems.append(f"line {line}: unknown event type {event.type!r} kept")
        elif isinstance(body, Malformed):
            problems.append(f"line {line}: {body.problem}; skipped by readers")
    if ordered and not any(e.type == "session_started" for e in ordered):
        problems.append("no session_started event: the log's beginning is missing, or it is not a speedcopilot "
                        "session; what it holds is shown as far as it goes")
    return problems


SYNC_INTERVAL_S = 1.0  # the longest a non-durable event (a metric) waits in the page cache


class EventLog:
    """Append-only writer of one session's events.jsonl, holding the session lock.

    Every line is written before append returns, so a killed process loses nothing. Durable events are also
    fsync'd then (decisions, commits, runs starting and ending); metric events, which a run's output.log holds
    too, are synced at most SYNC_INTERVAL_S later or with the next durable event: one fsync per metric cost
    milliseconds on the UI's loop, and more on a busy disk."""

    def __init__(self, session_dir: Path, clock: Clock | None = None,
                 sync_clock: Callable[[], float] = time.monotonic) -> None:
        self.session_dir = session_dir
        self.path = session_dir / EVENTS_FILE
        self._clock = clock or time.time
        self._sync_clock = sync_clock
        self._synced_at = 0.0
        self._unsynced = False
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._seq = 0
        self._listeners: list[Listener] = []
        self._write_lock = threading.RLock()  # listeners run inside it, so they see events in seq order
        self._failure: StorageError | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def open(self) -> ReadResult:
        """Take the lock and open for appending; returns what was already in the log. A disk that refuses
        (read-only, full) is a StorageError in one line; a second writer a SessionLockedError."""
        self._failure = None
        try:
            self.session_dir.mkdir(parents=True, exist_ok=True)
            self._lock_fd = _acquire_lock(self.session_dir / LOCK_FILE)
            existing = read_events(self.path) if self.path.exists() else ReadResult([], [])
            if existing.torn_tail:
                self._truncate_torn_tail()
            self._seq = existing.last_seq
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._synced_at, self._unsynced = self._sync_clock(), False
        except OSError as exc:
            self.close()
            raise storage_error(exc, f"cannot open the log of session {self.session_dir.name} for writing",
                                "free space or fix the disk (read it meanwhile with `speedcopilot replay "
                                f"{self.session_dir.name}`)") from None
        return existing

    def close(self) -> None:
        if self._fd is not None:
            if self._unsynced:
                try:
                    os.fsync(self._fd)
                except OSError:
                    pass  # every line was written; a disk that cannot sync now is reported by its next writer
                self._unsynced = False
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

    def append(self, body: EventBody) -> Event:
        """Write one typed event (flush + fsync) and hand it to the listeners, in seq order. After a failed
        write every append raises that StorageError again."""
        if self._fd is None:
            raise self._failure or RuntimeError("event log is not open")
        if not isinstance(body, EventBody):
            raise TypeError(f"events are typed bodies from copilot.core.session.schema, got {type(body).__name__}")
        data = body.to_dict()
        _check_no_secrets(data)
        with self._write_lock:
            if self._fd is None:  # closed by a failed write in another thread
                raise self._failure or RuntimeError("event log is not open")
            event = Event(seq=self._seq + 1, t=self._clock(), type=body.TYPE, data=data, body=body)
            payload = (event.to_json() + "\n").encode("utf-8")
            self._write_line(payload, sync=body.DURABLE)
            self._seq = event.seq
            for listener in list(self._listeners):
                listener(event)
        return event

    @property
    def failure(self) -> StorageError | None:
        """The write failure that closed this log, if one did."""
        return self._failure

    def _write_line(self, payload: bytes, sync: bool = True) -> None:
        """All of the line, synced now (or, with sync False, within SYNC_INTERVAL_S); on a refused write (full,
        read-only, I/O error) the partial line is cut off again, the log closes (lock released, so a repair can
        take over) and a StorageError says why."""
        assert self._fd is not None
        size = None
        try:
            size = os.fstat(self._fd).st_size
            view = memoryview(payload)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            now = self._sync_clock()
            if sync or now - self._synced_at >= SYNC_INTERVAL_S:
                os.fsync(self._fd)
                self._synced_at, self._unsynced = now, False
            else:
                self._unsynced = True
        except OSError as exc:
            if size is not None:
                try:
                    os.ftruncate(self._fd, size)  # no torn line left behind where the disk allows it
                except OSError:
                    pass  # the reader reports and a later open cuts what is left
            raise self.fail(exc) from None

    def probe(self) -> None:
        """Ask the disk whether it still takes writes (one metadata update of the lock file, no data): a disk
        the kernel switched to read-only after an error says so here, while statvfs may still say rw."""
        if self._lock_fd is None:
            return
        try:
            os.utime(self._lock_fd)
        except OSError as exc:
            if exc.errno in STORAGE_ERRNOS:
                raise self.fail(exc) from None

    def fail(self, exc: OSError) -> StorageError:
        """Close the log for good after the disk refused (or would refuse) a write; the StorageError to raise.
        The lock is released, so `sessions repair` in another terminal can take over."""
        with self._write_lock:
            if self._failure is None:
                self._failure = storage_error(
                    exc, f"cannot write to the log of session {self.session_dir.name} ({self.path})",
                    "new work stopped; a run in progress keeps training and writing its output.log. Free space "
                    f"or fix the disk, then `speedcopilot sessions repair {self.session_dir.name}` records what "
                    "happened meanwhile")
            self.close()
            return self._failure

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
