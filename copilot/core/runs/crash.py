"""The first real exception of a crashed run, read from its output (torchrun or plain Python).

torchrun hides a worker's error behind its own: the worker's traceback comes first (its lines prefixed
`[rank0]: ` on recent PyTorch, bare on older ones or with one process), then torchrun's own traceback ending
in `ChildFailedError`, then a block framed by `=====` lines that names the failed ranks under "Failures:"
and the first one under "Root Cause (first observed failure):" with its exit code (or the signal that
killed it). `crash_summary(lines)` finds the root-cause rank's traceback and reports its exception, message
and the frame of the record's own script, as plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TRACEBACK_START = "Traceback (most recent call last):"
_RANK_PREFIX = re.compile(r"^\[(?:default)?rank(\d+)\]:\s?(.*)$")
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+)(?:, in (.*))?$')
_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
_ROOT_CAUSE = "Root Cause (first observed failure):"
_FIELD = re.compile(r"^\s+(\w+)\s*:\s?(.*)$")
_LAUNCHER_FILES = ("torch/distributed/", "torch\\distributed\\", "/bin/torchrun")
MAX_TRACEBACK_LINES = 60


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str | None
    code: str | None


@dataclass(frozen=True)
class RootCause:
    """torchrun's "Root Cause" entry: which rank failed first and how."""

    rank: int | None
    exit_code: int | None
    detail: str | None  # its "traceback :" field, e.g. "Signal 9 (SIGKILL) received by PID 123"


@dataclass(frozen=True)
class CrashSummary:
    rank: int | None
    exception: str | None  # e.g. "AssertionError", or None when the rank died without a traceback
    message: str
    file: str | None  # the frame of the record's script (else the innermost frame)
    line: int | None
    code: str | None  # the source line of that frame, as the traceback shows it
    traceback: list[str] = field(default_factory=list)  # that rank's traceback, prefixes removed
    root_cause: RootCause | None = None

    def headline(self) -> str:
        """One line: who failed, with what, where."""
        who = f"rank {self.rank}: " if self.rank is not None else ""
        if self.exception is None:
            detail = self.message or "died without a Python traceback"
            return f"{who}{detail}"
        what = f"{self.exception}: {self.message}" if self.message else self.exception
        where = ""
        if self.file is not None:
            where = f" at {_short(self.file)}:{self.line}"
            if self.code and not self.message:
                where += f" ({self.code})"
        return f"{who}{what}{where}"

    def text(self) -> str:
        """The headline, then the traceback of the failing rank."""
        return "\n".join([self.headline(), *self.traceback]) if self.traceback else self.headline()


@dataclass
class _Traceback:
    rank: int | None
    start: int  # index of the first line in the output
    lines: list[str]
    frames: list[Frame]
    exception: str | None
    message: str


def crash_summary(lines: list[str], script_name: str = "train_gpt.py") -> CrashSummary | None:
    """The readable cause of a crash in `lines` (a run's output), or None when it shows none."""
    clean = [line.rstrip("\r\n") for line in lines]
    tracebacks = _tracebacks(clean)
    root = _root_cause(clean)
    workers = [tb for tb in tracebacks if not _is_launcher(tb)]
    chosen = None
    if root is not None and root.rank is not None:
        chosen = next((tb for tb in workers if tb.rank == root.rank), None)
    ranked = [tb for tb in workers if tb.rank is not None]
    if chosen is None and ranked:
        chosen = min(ranked, key=lambda tb: tb.start)  # the first rank observed failing
    if chosen is None and workers:
        chosen = max(workers, key=lambda tb: tb.start)  # one process: the traceback it died with is the last
    if chosen is None:
        if root is None:
            return None
        detail = root.detail if root.detail and not root.detail.startswith("To enable traceback") else None
        message = detail or (f"exited with code {root.exit_code} without a Python traceback"
                             if root.exit_code is not None else "failed without a Python traceback")
        return CrashSummary(rank=root.rank, exception=None, message=message, file=None, line=None, code=None,
                            root_cause=root)
    frame = _script_frame(chosen.frames, script_name)
    return CrashSummary(
        rank=chosen.rank if chosen.rank is not None else (root.rank if root else None),
        exception=chosen.exception,
        message=chosen.message,
        file=frame.file if frame else None,
        line=frame.line if frame else None,
        code=frame.code if frame else None,
        traceback=chosen.lines[-MAX_TRACEBACK_LINES:],
        root_cause=root,
    )


def _streams(lines: list[str]) -> list[tuple[int, int | None, str]]:
    """(index, rank or None, text) for every line, rank prefixes removed."""
    out = []
    for index, line in enumerate(lines):
        m = _RANK_PREFIX.match(line)
        out.append((index, int(m.group(1)), m.group(2)) if m else (index, None, line))
    return out


def _tracebacks(lines: list[str]) -> list[_Traceback]:
    """Every traceback in the output, per rank stream (a chained one counts as one, ending in the last)."""
    by_rank: dict[int | None, list[tuple[int, str]]] = {}
    for index, rank, text in _streams(lines):
        by_rank.setdefault(rank, []).append((index, text))
    found: list[_Traceback] = []
    for rank, stream in by_rank.items():
        i = 0
        while i < len(stream):
            if stream[i][1].strip() != TRACEBACK_START:
                i += 1
                continue
            tb, i = _read_traceback(rank, stream, i)
            found.append(tb)
    return found


def _read_traceback(rank: int | None, stream: list[tuple[int, str]], i: int) -> tuple[_Traceback, int]:
    """Read from the "Traceback" line at stream[i]: frames, then the exception line; follow chained ones
    ("During handling of the above exception ...") so that the exception raised last is the one reported."""
    start = stream[i][0]
    body: list[str] = []
    frames: list[Frame] = []
    exception, message = None, ""
    n = len(stream)
    while i < n and stream[i][1].strip() == TRACEBACK_START:
        body.append(stream[i][1])
        i += 1
        frames = []
        while i < n and (stream[i][1].startswith((" ", "\t")) or not stream[i][1].strip()):
            text = stream[i][1]
            frame = _FRAME.match(text)
            if frame:
                code = None
                nxt = stream[i + 1][1] if i + 1 < n else ""
                if nxt.startswith("    ") and not _FRAME.match(nxt) and set(nxt.strip()) - set("^~ "):
                    code = nxt.strip()
                frames.append(Frame(frame.group(1), int(frame.group(2)), frame.group(3), code))
            if text.strip():
                body.append(text)
            i += 1
        if i >= n:
            break
        exception, message = _exception_of(stream[i][1].strip())
        body.append(stream[i][1])
        i += 1
        j = i  # a chained traceback follows after a blank line and one of the _CHAIN sentences
        while j < n and not stream[j][1].strip():
            j += 1
        if j < n and stream[j][1].startswith(_CHAIN):
            body += ["", stream[j][1], ""]
            j += 1
            while j < n and not stream[j][1].strip():
                j += 1
            i = j
            continue
        break
    return _Traceback(rank, start, body, frames, exception, message), i


def _exception_of(line: str) -> tuple[str, str]:
    """("AssertionError", "") from "AssertionError"; ("ChildFailedError", "…") from a dotted name."""
    name, sep, rest = line.partition(": ")
    if not sep and line.endswith(":"):
        name, rest = line[:-1], ""
    name = name.strip()
    if " " in name or not name:
        return line, ""
    return name.rsplit(".", 1)[-1], rest.strip()


def _is_launcher(tb: _Traceback) -> bool:
    """torchrun's own traceback: it ends in ChildFailedError, raised from torch.distributed's launcher."""
    if tb.exception and tb.exception.endswith("ChildFailedError"):
        return True
    return bool(tb.frames) and any(part in tb.frames[-1].file for part in _LAUNCHER_FILES) and any(
        f.file.endswith("torchrun") for f in tb.frames)


def _script_frame(frames: list[Frame], script_name: str) -> Frame | None:
    """The innermost frame in the record's script, else the innermost frame outside site-packages, else the last."""
    if not frames:
        return None
    own = [f for f in frames if f.file.replace("\\", "/").rsplit("/", 1)[-1] == script_name]
    if own:
        return own[-1]
    local = [f for f in frames if "site-packages" not in f.file and "dist-packages" not in f.file
             and not f.file.startswith("<")]
    return (local or frames)[-1]


def _root_cause(lines: list[str]) -> RootCause | None:
    start = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip() == _ROOT_CAUSE), None)
    if start is None:
        return None
    fields: dict[str, str] = {}
    for line in lines[start + 1 :]:
        if line.startswith("=") or (line.startswith("-") and set(line.strip()) == {"-"}):
            break
        m = _FIELD.match(line)
        if m:
            fields[m.group(1)] = m.group(2).strip()
    rank = _leading_int(fields.get("rank"))
    exit_code = _leading_int(fields.get("exitcode"))
    return RootCause(rank=rank, exit_code=exit_code, detail=fields.get("traceback"))


def _leading_int(text: str | None) -> int | None:
    if not text:
        return None
    m = re.match(r"\s*(-?\d+)", text)
    return int(m.group(1)) if m else None


def _short(path: str) -> str:
    return path.replace("\\", "/").rsplit("/", 1)[-1]


__all__ = ["CrashSummary", "Frame", "RootCause", "crash_summary"]
