"""Output tail of runs: lines buffered per run in plain Python, written to a `Log` in batches."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

from textual.widgets import Log

from copilot.ui.widgets.steady_scrollbars import SteadyScrollbars

MAX_LINES = 2000
# lines written to the log pane per flush (10 a second): writing 2,000 at once stalled the loop ~100 ms;
# a burst is shown within a second, every line kept
LINES_PER_FLUSH = 250


def fold_cr(line: str) -> str:
    """What a terminal would show for a line with carriage returns (progress bars): its last non-empty segment."""
    if "\r" not in line:
        return line
    parts = [p for p in line.split("\r") if p]
    return parts[-1] if parts else ""


def read_tail(path: Path, max_bytes: int = 256_000, max_lines: int = MAX_LINES) -> list[str]:
    """Last lines of a log file, without reading more than max_bytes of it."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").split("\n")
    if size > max_bytes:
        lines = lines[1:]  # first line is probably cut
    if lines and lines[-1] == "":
        lines.pop()
    return [fold_cr(line) for line in lines[-max_lines:]]


class LogBuffers:
    """Per-run bounded line buffers plus the lines not yet written to the screen. Thread-safe appends."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        self.max_lines = max_lines
        self._lines: dict[str, deque[str]] = {}
        self._pending: dict[str, deque[str]] = {}
        self._lock = threading.Lock()
        self.total = 0

    def append(self, run_id: str, line: str) -> None:
        """One output line. Called for every line a run prints, on the event loop: a 100k-line burst makes
        this the loop's hottest path, so no new deque per call (setdefault's default is built every time)."""
        line = line.rstrip("\n")
        if "\r" in line:
            line = fold_cr(line)
        with self._lock:
            kept = self._lines.get(run_id)
            if kept is None:
                kept = self._lines[run_id] = deque(maxlen=self.max_lines)
            pending = self._pending.get(run_id)
            if pending is None:
                pending = self._pending[run_id] = deque(maxlen=self.max_lines)
            kept.append(line)
            pending.append(line)
            self.total += 1

    def seed(self, run_id: str, lines: list[str]) -> None:
        with self._lock:
            if run_id not in self._lines:
                self._lines[run_id] = deque(lines, maxlen=self.max_lines)

    def has(self, run_id: str) -> bool:
        return run_id in self._lines

    def has_pending(self) -> bool:
        return bool(self._pending)

    def lines(self, run_id: str) -> list[str]:
        with self._lock:
            return list(self._lines.get(run_id, ()))

    def take_pending(self, run_id: str | None, limit: int | None = None) -> list[str]:
        """The oldest `limit` pending lines of `run_id`; the rest wait for the next flush. Other runs' pending
        lines are dropped: their full tail is shown when selected."""
        with self._lock:
            pending = self._pending.pop(run_id, None) if run_id else None
            self._pending.clear()
            if not pending:
                return []
            count = len(pending) if limit is None else min(limit, len(pending))
            batch = [pending.popleft() for _ in range(count)]
            if pending:
                self._pending[run_id] = pending  # type: ignore[index]
        return batch


class LogTail(SteadyScrollbars, Log):
    """A `Log` showing one run's tail; `show_run` swaps runs, `write_batch` appends a flush's worth."""

    DEFAULT_CSS = """
    LogTail { height: 1fr; background: $surface; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(max_lines=MAX_LINES, auto_scroll=True, id=id, classes=classes)
        self.run_id: str | None = None

    def show_run(self, run_id: str | None, lines: list[str]) -> None:
        self.run_id = run_id
        self.clear()
        if lines:
            self.write_lines(lines)

    def write_batch(self, lines: list[str]) -> None:
        if lines:
            self.write_lines(lines)
