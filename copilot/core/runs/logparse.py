"""Training-log lines of every upstream era -> MetricPoint.

Formats understood (FACTS.md §1.3, §1.6, §1.7, §2.9):
- modded-nanogpt `step:{s}/{T} key:value ...` lines: val lines (`val_loss:`), train lines with or without
  `train_loss:`, `train_time:` in ms or in seconds (track 3), `step_avg:` possibly `nanms` (record-4 era);
- the llm.c-derived template: `step {s:4d}/{T} | train loss {x} | norm ... | lr ... | (... ms | ... tok/s)`;
- llm.c log files: `s:{step} trl:{loss}` (train) and `s:{step} tel:{loss}` (val);
- any prefix before those (torchrun's `[rank0]:`, `[default0]:`, timestamps), and `\\r`-folded progress output;
- `peak memory allocated: X MiB reserved: Y MiB` and the older `peak memory consumption: X MiB`.

Everything else (the source-code header, nvidia-smi tables, warnings) is rejected by a cheap substring test
before any regex runs.
"""

from __future__ import annotations

import math
import re
from collections import deque
from operator import itemgetter
from typing import Callable

from copilot.core.runs.metrics import MetricPoint

# The usual `step:{s}/{T} [val_loss:] [train_loss:] [train_time:] [step_avg:]` order of every era, matched at the
# start of a line that starts with `step:`, else at the position found by str.find("step:") (much cheaper than a
# regex search over each line). Spelled for the speed of the re engine, with the same matches as the plain
# `step:(\d+)/(\d+)(?:[ \t]+val_loss:(\S+))?...(?:[ \t]+step_avg:([^\sms]+)(?:ms)?)?[ \t]*$` (a test compares them):
# an optional part is `(?:...|)`, a cheap branch where `(?:...)?` sets up a repeat, and the repeats are possessive
# (`++`, never giving back: no shorter run of digits, blanks or non-blanks could let the rest match).
_STEP_COLON_FAST = re.compile(
    r"step:(\d++)/(\d++)"
    r"(?:[ \t]++val_loss:(\S++)|)"
    r"(?:[ \t]++train_loss:(\S++)|)"
    r"(?:[ \t]++train_time:([^\sms]++)(ms|s)|)"  # numbers, nan and inf hold no m or s
    r"(?:[ \t]++step_avg:([^\sms]++)(?:ms|)|)"
    r"[ \t]*+$"
)
# Any other order or extra keys (lr:, norm:, ... of some era): `key:value` tokens read in Python.
_STEP_COLON_ANY = re.compile(r"step:(\d+)/(\d+)((?:[ \t]+[A-Za-z_]\w*:\S*)+)")
# llm.c-derived template (LS record 1) and llm.c's own console line (`step 12/100: train loss 3.1 ...`).
_STEP_SPACE = re.compile(r"(?<![\w])step\s+(\d+)/(\d+)\s*[|:]?\s*train loss\s+([^\s|]+)")
# llm.c log files.
_LLMC = re.compile(r"s:(\d+)\s+(trl|tel):(\S+)")
_PEAK_NEW = re.compile(r"peak memory allocated:\s*(\d+)\s*MiB\s+reserved:\s*(\d+)\s*MiB")
_PEAK_OLD = re.compile(r"peak memory consumption:\s*(\d+)\s*MiB")

DEFAULT_MAX_LINES = 600  # room for a traceback per rank of an 8-GPU torchrun crash

# tuple.__new__ builds a MetricPoint without the named tuple's generated Python __new__ (half the cost of making
# a point); every caller passes all six fields, in order.
_new_tuple = tuple.__new__
_val_loss_of, _train_loss_of = itemgetter(2), itemgetter(3)


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _ms(value: str, unit: str) -> float | None:
    number = _num(value)
    if number is None or unit == "ms":
        return number
    return round(number * 1000.0, 6)  # track 3 prints seconds


def _point(step: int, total: int | None, val: float | None, train: float | None, time_ms: float | None,
           avg_ms: float | None) -> MetricPoint:
    return _new_tuple(MetricPoint, (step, total, val, train, time_ms, avg_ms))


def _parse_step_colon_fast(match: re.Match[str]) -> MetricPoint | None:
    step, total, val, train, time_value, time_unit, avg = match.groups()
    if val is None and train is None and time_value is None:
        return None
    try:
        # Hot path: one try block, no helper calls (this runs once per training step of every log).
        val_loss = None if val is None else float(val)
        train_loss = None if train is None else float(train)
        train_time_ms = None
        if time_value is not None:
            train_time_ms = float(time_value)
            if time_unit == "s":  # track 3 prints seconds
                train_time_ms = round(train_time_ms * 1000.0, 6)
    except ValueError:
        return None
    step_avg_ms = None
    if avg is not None:
        try:
            step_avg_ms = float(avg)
        except ValueError:  # an unreadable average still leaves the point
            pass
    return _new_tuple(MetricPoint, (int(step), int(total), val_loss, train_loss, train_time_ms, step_avg_ms))


def _parse_step_colon_any(match: re.Match[str]) -> MetricPoint | None:
    val_loss = train_loss = train_time_ms = step_avg_ms = None
    for token in match.group(3).split():
        key, _, value = token.partition(":")
        if key == "val_loss":
            if (val_loss := _num(value)) is None:
                return None
        elif key == "train_loss":
            if (train_loss := _num(value)) is None:
                return None
        elif key == "train_time":
            if value.endswith("ms"):
                train_time_ms = _num(value[:-2])
            elif value.endswith("s"):
                train_time_ms = _ms(value[:-1], "s")
            else:
                train_time_ms = _num(value)
        elif key == "step_avg":
            step_avg_ms = _num(value[:-2] if value.endswith("ms") else value)
    if val_loss is None and train_loss is None and train_time_ms is None:
        return None
    return _point(int(match.group(1)), int(match.group(2)), val_loss, train_loss, train_time_ms, step_avg_ms)


def _word_start(line: str, pos: int) -> bool:
    if pos == 0:
        return True
    before = line[pos - 1]
    return not (before.isalnum() or before == "_")


def _parse_step_segment(line: str) -> MetricPoint | None:
    pos = line.find("step:")
    if pos >= 0:
        while pos >= 0:
            # Both regexes need a digit after `step:`; code such as `step: int` is rejected without them.
            if line[pos + 5 : pos + 6].isdecimal() and _word_start(line, pos):
                match = _STEP_COLON_FAST.match(line, pos)
                if match is not None:
                    return _parse_step_colon_fast(match)
                match = _STEP_COLON_ANY.match(line, pos)
                if match is not None:
                    return _parse_step_colon_any(match)
            pos = line.find("step:", pos + 5)
        return None
    if "train loss" in line:
        match = _STEP_SPACE.search(line)
        if match is None or (loss := _num(match.group(3))) is None:
            return None
        # The template's `(... ms | ...)` is the time of that one step, not an average: not reported.
        return _point(int(match.group(1)), int(match.group(2)), None, loss, None, None)
    pos = line.find("s:")
    while pos >= 0:
        if _word_start(line, pos):
            match = _LLMC.match(line, pos)
            if match is not None:
                if (loss := _num(match.group(3))) is None:
                    return None
                if match.group(2) == "tel":
                    return _point(int(match.group(1)), None, loss, None, None, None)
                return _point(int(match.group(1)), None, None, loss, None, None)
        pos = line.find("s:", pos + 2)
    return None


def fold_cr(line: str) -> str:
    """What a terminal shows for a line holding carriage returns: the last non-empty segment."""
    if "\r" not in line:
        return line
    for segment in reversed(line.split("\r")):
        if segment:
            return segment
    return ""


def parse_line(line: str) -> MetricPoint | None:
    """One log line -> MetricPoint, or None for anything that is not a metric line."""
    if "\r" in line:
        line = fold_cr(line)
    return _parse_step_segment(line)


def parse_peak_memory(line: str) -> tuple[int, int | None] | None:
    """(allocated MiB, reserved MiB or None for the older one-number line), or None."""
    if "peak memory" not in line:
        return None
    match = _PEAK_NEW.search(line)
    if match is not None:
        return int(match.group(1)), int(match.group(2))
    match = _PEAK_OLD.search(line)
    if match is not None:
        return int(match.group(1)), None
    return None


def any_bad_loss(points: list[MetricPoint]) -> bool:
    """is_bad_loss for any of the points, looped in C (filter drops None and 0.0, both harmless)."""
    isfinite = math.isfinite
    return not (all(map(isfinite, filter(None, map(_val_loss_of, points))))
                and all(map(isfinite, filter(None, map(_train_loss_of, points)))))


def is_bad_loss(point: MetricPoint) -> bool:
    """True when the point carries a NaN or infinite loss (the run diverged)."""
    val_loss, train_loss = point.val_loss, point.train_loss
    return (val_loss is not None and not math.isfinite(val_loss)) or (
        train_loss is not None and not math.isfinite(train_loss)
    )


class LogParser:
    """Incremental parser: feed arbitrary chunks of a log, get the metric points of the lines completed.

    A line is complete at `\\n`; a `\\r` also completes a progress segment (parsed at once, so a tqdm-style
    line that is redrawn in place still streams its metrics), and `last_lines` keeps the folded line.
    """

    def __init__(self, max_lines: int = DEFAULT_MAX_LINES, keep_points: bool = True) -> None:
        self.points: list[MetricPoint] = []
        self.peak_memory: tuple[int, int | None] | None = None
        self.nan_seen = False
        self.last_lines: deque[str] = deque(maxlen=max_lines)
        self.lines_seen = 0
        self._keep_points = keep_points
        self._buf = ""
        self._fold = ""  # last non-empty \r segment of the line now being built

    # -- public ----------------------------------------------------------------------------
    def feed(self, chunk: str, on_line: Callable[[str], None] | None = None) -> list[MetricPoint]:
        """Parse the lines this chunk completes; a trailing partial line waits for the next chunk."""
        if not chunk:
            return []
        data = self._buf + chunk if self._buf else chunk
        lines = data.split("\n")
        self._buf = lines.pop()
        new: list[MetricPoint] = []
        if self._fold or "\r" in data:
            for line in lines:
                self._complete_line_cr(line, new, on_line)
            if "\r" in self._buf:
                self._consume_cr_segments(new)
        else:
            self._complete_lines_fast(lines, new, on_line)
        if new and self._keep_points:
            self.points.extend(new)
        return new

    def flush(self, on_line: Callable[[str], None] | None = None) -> list[MetricPoint]:
        """Treat a pending unterminated line as complete (call once the log has ended)."""
        if not self._buf and not self._fold:
            return []
        return self.feed("\n", on_line)

    @property
    def val_points(self) -> list[MetricPoint]:
        return [p for p in self.points if p.val_loss is not None]

    @property
    def last_point(self) -> MetricPoint | None:
        return self.points[-1] if self.points else None

    # -- internals -------------------------------------------------------------------------
    def _complete_lines_fast(
        self, lines: list[str], new: list[MetricPoint], on_line: Callable[[str], None] | None
    ) -> None:
        # Hot path: the loop body is kept tiny; most lines fail the substring tests. A line that starts with
        # `step:` in the usual key order (most metric lines) is matched at once, as _parse_step_segment would match it.
        append = new.append
        match_usual = _STEP_COLON_FAST.match  # at the line's start only
        for line in lines:
            if "step" in line or "l:" in line:
                if (match := match_usual(line)) is not None:
                    point = _parse_step_colon_fast(match)
                else:
                    point = _parse_step_segment(line)
                if point is not None:
                    append(point)
            elif "peak memory" in line:
                self._note_peak(line)
            if on_line is not None and line:
                on_line(line)
        if not self.nan_seen and new:
            self.nan_seen = any_bad_loss(new)
        self.lines_seen += len(lines)
        self.last_lines.extend(filter(None, lines))

    def _parse_segment(self, segment: str, new: list[MetricPoint]) -> None:
        point = _parse_step_segment(segment)
        if point is not None:
            new.append(point)
            if is_bad_loss(point):
                self.nan_seen = True
        elif "peak memory" in segment:
            self._note_peak(segment)

    def _consume_cr_segments(self, new: list[MetricPoint]) -> None:
        segments = self._buf.split("\r")
        self._buf = segments.pop()
        for segment in segments:
            if segment:
                self._parse_segment(segment, new)
                self._fold = segment

    def _complete_line_cr(
        self, line: str, new: list[MetricPoint], on_line: Callable[[str], None] | None
    ) -> None:
        folded = self._fold
        self._fold = ""
        for segment in line.split("\r"):
            if segment:
                self._parse_segment(segment, new)
                folded = segment
        self.lines_seen += 1
        if folded:
            self.last_lines.append(folded)
            if on_line is not None:
                on_line(folded)

    def _note_peak(self, line: str) -> None:
        peak = parse_peak_memory(line)
        if peak is not None:
            self.peak_memory = peak
