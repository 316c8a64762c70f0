"""Replay: feed a recorded session's events to the same projection the live UI uses (DESIGN §1).

`ReplayPlayer` holds the events on a timeline (seconds since the first event) and answers
`state_at(position)` by folding events into `SessionState` from the nearest cached checkpoint, so seeking in a
long session costs at most `checkpoint_every` applications plus one structural copy. `play()` emits the events
at scaled time (`speed` recorded seconds per second, each wait capped at `max_wait_s`), honours
`pause()/resume()/seek()/speed` while it runs, and with `follow=True` tails the events file of a session that is
still being written (a torn last line is held back until its newline arrives).

Read-only throughout: no lock is taken, nothing in the session folder is written. Exported and example sessions
ship `workspace.bundle` instead of a workspace; `workspace_for` clones it into a cache folder.
"""

from __future__ import annotations

import asyncio
import bisect
import copy
import dataclasses
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol

from copilot.core.errors import SessionNotFoundError, WorkspaceError
from copilot.core.session import schema as s
from copilot.core.session.events import EVENTS_FILE, Event, read_events
from copilot.core.session.projection import SessionState

if TYPE_CHECKING:  # git (GitPython) loads only when a replay reads scripts, not for the app's first frame
    from copilot.core.session.workspace import Workspace

DECISION_TYPES = frozenset({"suggestion_received", "suggestion_decided", "hunk_decided", "commit_created"})
BUNDLE_FILE = "workspace.bundle"
WORKSPACE_DIR = "workspace"
DEFAULT_SPEED = 10.0
DEFAULT_MAX_WAIT_S = 2.0  # longest pause between two events, in replay (wall) seconds
DEFAULT_POLL_S = 0.25  # how often a followed session's file is checked when caught up
MIN_SPEED, MAX_SPEED = 0.1, 10_000.0

EventCallback = Callable[[Event], "Awaitable[None] | None"]


# --------------------------------------------------------------------------------------------------
# Clocks: what play() waits with. The asyncio clock sleeps for real; the virtual one advances at once.
# --------------------------------------------------------------------------------------------------
class ReplayClock(Protocol):
    def now(self) -> float: ...

    async def wait(self, wake: asyncio.Event, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True when `wake` was set before that."""
        ...


class AsyncioClock:
    """Real time on the running event loop."""

    def now(self) -> float:
        return time.monotonic()

    async def wait(self, wake: asyncio.Event, timeout: float) -> bool:
        if wake.is_set():
            return True
        try:
            await asyncio.wait_for(wake.wait(), timeout=max(0.0, timeout))
        except asyncio.TimeoutError:
            return False
        return True


class VirtualClock:
    """Time that jumps forward instead of sleeping: replays as fast as possible, with the same ordering.

    `waited` is the replay time a real clock would have spent (useful to check the pacing without waiting)."""

    def __init__(self) -> None:
        self._now = 0.0
        self.waited = 0.0

    def now(self) -> float:
        return self._now

    async def wait(self, wake: asyncio.Event, timeout: float) -> bool:
        await asyncio.sleep(0)  # let other tasks (a pause, a seek) run between events
        if wake.is_set():
            return True
        step = max(0.0, timeout)
        self._now += step
        self.waited += step
        return False


# --------------------------------------------------------------------------------------------------
# Reading a log that may still grow
# --------------------------------------------------------------------------------------------------
@dataclass
class EventTail:
    """Incremental reader of an events.jsonl: complete lines only; a torn last line waits for its newline.

    Lines already seen are skipped, so a writer that truncates its own torn tail on reopen, or a file that is
    rewritten, never yields an event twice; an event whose seq is out of order, or a second event with the same
    seq, is kept (the reader reports those)."""

    path: Path
    offset: int = 0
    last_seq: int = 0
    problems: list[str] = field(default_factory=list)
    pending_bytes: int = 0  # size of the incomplete last line seen at the last read
    seen: set[tuple[int, float, str]] = field(default_factory=set)  # (seq, t, type) of every event yielded

    def read_new(self) -> list[Event]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # truncated or replaced: read it again; seq dedupes
            self.offset = 0
        if size == self.offset:
            self.pending_bytes = 0
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(size - self.offset)
        end = chunk.rfind(b"\n") + 1
        self.pending_bytes = len(chunk) - end
        events: list[Event] = []
        for raw in chunk[:end].split(b"\n"):
            if not raw.strip():
                continue
            event = self._parse(raw)
            key = (event.seq, event.t, event.type) if event is not None else None
            if event is not None and key not in self.seen:
                self.seen.add(key)
                events.append(event)
                self.last_seq = max(self.last_seq, event.seq)
        self.offset += end
        return events

    def _parse(self, raw: bytes) -> Event | None:
        try:
            record = json.loads(raw.decode("utf-8"))
            if not isinstance(record, dict) or "type" not in record or "seq" not in record:
                raise ValueError("not an event object")
            return Event.from_record(record)
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            self.problems.append(f"{self.path.name}: unreadable line skipped ({exc})")
            return None


# --------------------------------------------------------------------------------------------------
# State copies: cheap structural copies (frozen dataclasses such as MetricPoint are shared, not copied)
# --------------------------------------------------------------------------------------------------
def copy_state(state: SessionState) -> SessionState:
    """An independent copy of a projection; immutable leaves are shared, so this is fast for long runs."""
    return _copy(state)


def _copy(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, list):
        return [_copy(v) for v in value] if value and not _is_immutable(value[0]) else list(value)
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if value.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            return value
        new = copy.copy(value)
        for f in dataclasses.fields(value):
            setattr(new, f.name, _copy(getattr(value, f.name)))
        return new
    return copy.deepcopy(value)


def _is_immutable(value: Any) -> bool:
    if isinstance(value, (str, int, float, bool, type(None))):
        return True
    return dataclasses.is_dataclass(value) and value.__dataclass_params__.frozen  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------------
# The player
# --------------------------------------------------------------------------------------------------
class ReplayPlayer:
    """A recorded session on a timeline. Positions are recorded seconds since the first event.

    The cursor is the number of events applied; `state` is the projection at the cursor. Methods that move the
    cursor (seek, next/previous decision) may be called while `play()` runs, from the same event loop."""

    def __init__(
        self,
        events: list[Event],
        speed: float = DEFAULT_SPEED,
        start_at: float = 0.0,
        *,
        max_wait_s: float = DEFAULT_MAX_WAIT_S,
        checkpoint_every: int | None = None,
        follow: bool = False,
        events_path: Path | None = None,
        session_dir: Path | None = None,
        poll_s: float = DEFAULT_POLL_S,
        cache_dir: Path | None = None,
        tail: EventTail | None = None,
    ) -> None:
        if tail is not None and events_path is None:
            events_path = tail.path
        if follow and events_path is None:
            raise ValueError("follow=True needs the events file to tail (events_path)")
        self.events: list[Event] = []
        self.positions: list[float] = []
        self._t0: float | None = None
        self.speed = _clamp_speed(speed)
        self.max_wait_s = max_wait_s
        # a checkpoint holds a copy of the state (O(points so far)); spacing them ~√n apart keeps both the
        # memory (O(n·√n) pointers) and the refold after a seek (≤ spacing events) small
        self.checkpoint_every = max(1, checkpoint_every or max(1000, 10 * math.isqrt(len(events))))
        self.follow = follow
        self.session_dir = session_dir
        self.poll_s = poll_s
        self.cache_dir = cache_dir
        # a tail given by from_session continues where its first read stopped; otherwise the file is read again
        # from the start when polled and the events already held are skipped by seq
        self._tail = tail if tail is not None else EventTail(events_path) if events_path is not None else None
        self._checkpoints: dict[int, SessionState] = {0: SessionState()}
        self.events_folded = 0  # events applied by state_at_index so far (what a seek costs, countable)
        self._decisions: list[int] = []
        self._extend(events)
        if self._tail is not None and tail is None:
            self._tail.last_seq = max((e.seq for e in self.events), default=0)
            self._tail.seen.update((e.seq, e.t, e.type) for e in self.events)
        self._paused = False
        self._playing = False
        self._stopped = False
        self._wake: asyncio.Event | None = None
        self._epoch = 0  # bumped by every seek, so a play loop woken mid-wait knows its wait is void
        self._wait_from: tuple[float, float, float, float] | None = None  # (clock start, delay, pos, target)
        self._clock: ReplayClock | None = None
        self._workspace: Workspace | None = None
        self._scripts: dict[str, str] = {}
        self._git_lock = threading.Lock()
        self._cursor = 0
        self._position = 0.0
        self._state = SessionState()
        if start_at > 0:
            self.seek(start_at)

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def from_session(
        cls,
        session_dir: Path,
        speed: float = DEFAULT_SPEED,
        start_at: float = 0.0,
        *,
        follow: bool = False,
        **kwargs: Any,
    ) -> "ReplayPlayer":
        """Read `<session_dir>/events.jsonl` (without taking the session lock)."""
        path = Path(session_dir) / EVENTS_FILE
        if not path.is_file():
            raise SessionNotFoundError(f"{session_dir} holds no {EVENTS_FILE}: not a speedcopilot session folder")
        read = read_events(path)  # every valid event in seq order, each problem named with its line
        tail = EventTail(path)
        tail.read_new()  # positions the tail after the complete lines (what `read` holds)
        tail.seen = {(e.seq, e.t, e.type) for e in read.events}
        tail.problems = [p for p in read.problems if "torn last line" not in p] + tail.problems
        if tail.pending_bytes:
            tail.problems.append(f"{EVENTS_FILE}: torn last line ({tail.pending_bytes} bytes) held back")
        return cls(read.events, speed, start_at, follow=follow, session_dir=Path(session_dir), tail=tail, **kwargs)

    def _extend(self, events: list[Event]) -> None:
        for event in events:
            if self._t0 is None:
                self._t0 = event.t
            position = max(event.t - self._t0, self.positions[-1] if self.positions else 0.0)
            if event.type in DECISION_TYPES:
                self._decisions.append(len(self.events))
            self.events.append(event)
            self.positions.append(position)

    @property
    def problems(self) -> list[str]:
        return list(self._tail.problems) if self._tail is not None else []

    # -- where we are --------------------------------------------------------------------------
    @property
    def duration(self) -> float:
        return self.positions[-1] if self.positions else 0.0

    @property
    def cursor(self) -> int:
        """How many events are applied."""
        return self._cursor

    @property
    def position(self) -> float:
        """The current timeline position; moves smoothly while play() waits for the next event."""
        if self._wait_from is not None and self._clock is not None and not self._paused:
            start, delay, pos, target = self._wait_from
            if delay > 0:
                fraction = min(1.0, max(0.0, (self._clock.now() - start) / delay))
                return pos + (target - pos) * fraction
        return self._position

    @property
    def state(self) -> SessionState:
        """The projection at the cursor (the player's own object: read it, do not change it)."""
        return self._state

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def at_end(self) -> bool:
        return self._cursor >= len(self.events)

    def decision_positions(self) -> list[float]:
        return [self.positions[i] for i in self._decisions]

    # -- folding -------------------------------------------------------------------------------
    def index_at(self, position: float) -> int:
        """Number of events at or before `position`."""
        return bisect.bisect_right(self.positions, position + 1e-9)

    def state_at(self, position: float) -> SessionState:
        """A fresh projection of every event at or before `position` (seconds since the first event)."""
        return self.state_at_index(self.index_at(position))

    def state_at_index(self, index: int) -> SessionState:
        """A fresh projection of the first `index` events, folded from the nearest checkpoint."""
        index = max(0, min(index, len(self.events)))
        base = max(i for i in self._checkpoints if i <= index)
        state = copy_state(self._checkpoints[base])
        step = self.checkpoint_every
        self.events_folded += index - base
        for i in range(base, index):
            state.apply(self.events[i])
            if (i + 1) % step == 0 and (i + 1) not in self._checkpoints:
                self._checkpoints[i + 1] = copy_state(state)
        return state

    # -- moving --------------------------------------------------------------------------------
    def seek(self, position: float) -> None:
        """Jump to `position` (clamped to the timeline): the state becomes every event at or before it."""
        position = max(0.0, min(float(position), self.duration))
        self._jump(self.index_at(position), position)

    def seek_relative(self, seconds: float) -> None:
        self.seek(self.position + seconds)

    def rewind(self) -> None:
        """Back to before the first event (nothing applied), so play() emits every event again."""
        self._jump(0, 0.0)

    def next_decision(self) -> float | None:
        """Jump just past the next suggestion, hunk decision or commit; its position, or None when none is left."""
        k = bisect.bisect_left(self._decisions, self._cursor)
        if k >= len(self._decisions):
            return None
        index = self._decisions[k]
        self._jump(index + 1, self.positions[index])
        return self.positions[index]

    def previous_decision(self) -> float | None:
        """Jump back to the decision before the one just shown (or before the current position)."""
        k = bisect.bisect_left(self._decisions, self._cursor - 1) - 1
        if k < 0:
            return None
        index = self._decisions[k]
        self._jump(index + 1, self.positions[index])
        return self.positions[index]

    def _jump(self, cursor: int, position: float) -> None:
        if cursor == self._cursor + 1 and cursor <= len(self.events):
            self._state.apply(self.events[cursor - 1])  # one step forward: no need to refold
        elif cursor != self._cursor:
            self._state = self.state_at_index(cursor)
        self._cursor = cursor
        self._position = position
        self._wait_from = None
        self._epoch += 1
        self._poke()

    def set_speed(self, speed: float) -> float:
        self._position = self.position  # keep the interpolated point before the rate changes
        self._wait_from = None
        self.speed = _clamp_speed(speed)
        self._poke()
        return self.speed

    def faster(self) -> float:
        return self.set_speed(self.speed * 2)

    def slower(self) -> float:
        return self.set_speed(self.speed / 2)

    def pause(self) -> None:
        if not self._paused:
            self._position = self.position
            self._wait_from = None
            self._paused = True
            self._poke()

    def resume(self) -> None:
        if self._paused:
            self._paused = False
            self._poke()

    def toggle_pause(self) -> bool:
        """Pause or resume; returns whether the player is now paused."""
        if self._paused:
            self.resume()
        else:
            self.pause()
        return self._paused

    def stop(self) -> None:
        """End play() at the next opportunity."""
        self._stopped = True
        self._poke()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- following a live session --------------------------------------------------------------
    def poll(self) -> int:
        """Read events appended to a followed session since the last look; how many arrived."""
        if self._tail is None:
            return 0
        new = self._tail.read_new()  # lines already held are skipped by the tail; out-of-order ones are kept
        self._extend(new)
        return len(new)

    # -- playing -------------------------------------------------------------------------------
    async def play(self, on_event: EventCallback | None = None, clock: ReplayClock | None = None) -> None:
        """Apply and emit events from the cursor on, at scaled time, until the end (or, following, until the
        session has ended and no new line came in; or stop()). on_event may be sync or async."""
        if self._playing:
            raise RuntimeError("this player is already playing; pause(), seek() or stop() it instead")
        self._clock = clock or AsyncioClock()
        self._wake = asyncio.Event()
        self._playing = True
        self._stopped = False
        try:
            await self._loop(on_event)
        finally:
            self._playing = False
            self._wait_from = None

    async def _loop(self, on_event: EventCallback | None) -> None:
        clock, wake = self._clock, self._wake
        assert clock is not None and wake is not None
        while not self._stopped:
            if self._paused:
                wake.clear()
                await wake.wait()
                continue
            if self._cursor >= len(self.events):
                if self.follow and self.poll():
                    continue
                if not self.follow or self._caught_up():
                    return
                wake.clear()
                await AsyncioClock().wait(wake, self.poll_s)  # new lines come in real time, whatever the clock
                continue
            target = self.positions[self._cursor]
            delay = min(max(0.0, target - self._position) / self.speed, self.max_wait_s)
            if delay > 0:
                wake.clear()
                self._wait_from = (clock.now(), delay, self._position, target)
                woken = await clock.wait(wake, delay)
                self._wait_from = None
                if woken:
                    continue  # paused, re-paced, sought or stopped: each already saved the position it wants
            event = self.events[self._cursor]
            self._state.apply(event)
            self._cursor += 1
            self._position = target
            if on_event is not None:
                result = on_event(event)
                if inspect.isawaitable(result):
                    await result

    def _caught_up(self) -> bool:
        return self._state.ended and (self._tail is None or self._tail.pending_bytes == 0)

    # -- the workspace -------------------------------------------------------------------------
    @property
    def script_name(self) -> str:
        for event in self.events:
            if event.type == "session_started":
                return str(event.get("script") or "train_gpt.py")
        return "train_gpt.py"

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            if self.session_dir is None:
                raise WorkspaceError("this replay has no session folder, so no workspace to read scripts from")
            self._workspace = workspace_for(self.session_dir, cache_dir=self.cache_dir)
        return self._workspace

    def script_at(self, commit_sha: str | None = None) -> str:
        """The script's text at a commit (default: the state's head), from the session's git history.
        Safe to call from worker threads (one git read at a time)."""
        sha = commit_sha or self._state.head
        if not sha:
            return ""
        with self._git_lock:  # GitPython's cat-file pipe is not safe to share between threads
            if sha not in self._scripts:
                self._scripts[sha] = script_at(self.workspace, sha, self.script_name)
            return self._scripts[sha]


def _clamp_speed(speed: float) -> float:
    return min(MAX_SPEED, max(MIN_SPEED, float(speed)))


# --------------------------------------------------------------------------------------------------
# Workspaces of recorded sessions
# --------------------------------------------------------------------------------------------------
def script_at(workspace: Workspace, commit_sha: str, script: str = "train_gpt.py") -> str:
    try:
        return workspace.read(script, commit_sha)
    except WorkspaceError:
        raise
    except Exception as exc:  # unknown commit (a log from another workspace): say so plainly
        raise WorkspaceError(f"commit {commit_sha[:10]} is not in the session's workspace history ({exc})") from None


def default_cache_dir() -> Path:
    env = os.environ.get("SPEEDCOPILOT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("speedcopilot"))


def workspace_for(session_dir: Path, cache_dir: Path | None = None) -> Workspace:
    """The session's git workspace: `<session>/workspace/`, or a clone of `<session>/workspace.bundle` kept in
    `<cache>/replay/<bundle hash>/` (exported and example sessions). Never writes to the session folder."""
    from copilot.core.session.workspace import Workspace

    session_dir = Path(session_dir)
    local = session_dir / WORKSPACE_DIR
    if (local / ".git").exists():
        return Workspace.open(local)
    bundle = session_dir / BUNDLE_FILE
    if not bundle.is_file():
        raise WorkspaceError(
            f"{session_dir} has neither a workspace/ git repository nor a {BUNDLE_FILE}; "
            "scripts cannot be shown (the events still replay)"
        )
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()[:16]
    target = (cache_dir or default_cache_dir()) / "replay" / digest
    if not (target / ".git").exists():
        _clone_bundle(bundle, target)
    return Workspace.open(target)


def _clone_bundle(bundle: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".clone-", dir=target.parent))
    env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0"}
    try:
        for args in (
            ["clone", "--quiet", str(bundle.resolve()), str(scratch / "repo")],
            # every branch, tag and note, not only the checked-out branch
            ["-C", str(scratch / "repo"), "fetch", "--quiet", "--update-head-ok", str(bundle.resolve()),
             "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", "+refs/notes/*:refs/notes/*"],
        ):
            done = subprocess.run(["git", *args], capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                raise WorkspaceError(f"could not open {bundle.name}: git {args[0] if args[0] != '-C' else args[2]} "
                                     f"failed: {done.stderr.strip()}")
        try:
            os.replace(scratch / "repo", target)
        except OSError:
            if not (target / ".git").exists():  # not a concurrent clone that won the race
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# One line of text per event (the headless timeline; plain strings, styled by the CLI)
# --------------------------------------------------------------------------------------------------
def describe_event(event: Event, state: SessionState | None = None) -> str:
    """A one-line human summary of an event (after it was applied to `state`, when given)."""
    b = event.body
    if isinstance(b, s.SessionStarted):
        return (f"{b.mode} session on {b.track or '?'} record {b.record} (target {b.target_val_loss:g}) · "
                f"{b.provider_label or b.provider or '?'}")
    if isinstance(b, s.SuggestionRequested):
        return f"{b.suggestion_id} requested" + (f": {_short(b.instruction)}" if b.instruction else "")
    if isinstance(b, s.SuggestionReceived):
        cut = " · cut off by the token limit" if b.truncated else ""
        return (f"{b.suggestion_id} received · {len(b.hunks)} hunk{'s' if len(b.hunks) != 1 else ''}{cut} · "
                f"{_short(_first_line(b.rationale))}")
    if isinstance(b, s.SuggestionFailed):
        return f"{b.suggestion_id} failed: {_short(b.error)}"
    if isinstance(b, (s.SuggestionDecided, s.HunkDecided)):
        decisions = b.decisions if isinstance(b, s.SuggestionDecided) else [b.as_decision()]
        parts = []
        for d in decisions:
            text = f"hunk {d.index + 1}: {d.action} after {d.decision_time_s:.1f}s"
            if d.feedback:
                text += f" “{_short(d.feedback, 60)}”"
            parts.append(text)
        commit = f" → {b.commit[:7]}" if isinstance(b, s.SuggestionDecided) and b.commit else ""
        return f"{b.suggestion_id} " + "; ".join(parts) + commit
    if isinstance(b, s.FeedbackGiven):
        return f"feedback on hunk {(b.hunk_index or 0) + 1}: {_short(b.text)}"
    if isinstance(b, s.CommitCreated):
        return f"commit {b.sha[:7]} [{b.provenance}] {_short(b.message)}"
    if isinstance(b, s.BranchSwitched):
        return f"on {b.branch} at {b.sha[:7]}"
    if isinstance(b, s.RunStarted):
        return f"run {b.run_id} started on {b.commit[:7]} ({b.runner})"
    if isinstance(b, s.Metric):
        parts = [f"run {b.run_id} step {b.step}"]
        if b.val_loss is not None:
            parts.append(f"val {b.val_loss:.4f}")
        if b.train_loss is not None:
            parts.append(f"train {b.train_loss:.4f}")
        if b.train_time_ms is not None:
            parts.append(f"at {b.train_time_ms / 1000:.1f}s")
        return " · ".join(parts)
    if isinstance(b, s.TargetReached):
        at = f" at {b.time_to_target_ms / 1000:.1f}s" if b.time_to_target_ms is not None else ""
        return f"run {b.run_id} reached the target{at} (step {b.step})"
    if isinstance(b, s.RunFinished):
        text = f"run {b.run_id} {b.outcome}"
        if b.time_to_target_ms is not None:
            text += f" · target in {b.time_to_target_ms / 1000:.1f}s"
        if b.final_val_loss is not None:
            text += f" · final val {b.final_val_loss:.4f}"
        return text
    if isinstance(b, s.NodeCreated):
        return f"node {b.node_id} ({b.kind})" + (f" from node {b.parent}" if b.parent is not None else "")
    if isinstance(b, s.NodeScored):
        text = f"node {b.node_id} scored: {b.outcome or '?'}"
        if b.final_val_loss is not None:
            text += f" · final val {b.final_val_loss:.4f}"
        return text + (f" · {_short(b.reason)}" if b.reason else "")
    if isinstance(b, s.BudgetExhausted):
        return f"budget used up: {b.reason}"
    if isinstance(b, s.GuardReport):
        return f"guard: {len(b.findings)} finding(s){' (blocking)' if b.blocking else ''}"
    if isinstance(b, s.GuardOverride):
        return f"guard: the human chose to {'run anyway' if b.choice == 'run' else 'go back'} ({', '.join(b.rules)})"
    if isinstance(b, s.Note):
        return _short(b.text)
    if isinstance(b, s.Error):
        return _short(b.message)
    if isinstance(b, s.ModeChanged):
        return f"mode → {b.mode}"
    if isinstance(b, s.SessionEnded):
        return f"session ended ({b.reason})"
    if isinstance(b, s.Malformed):
        return f"({b.type_name}: {b.problem})"
    return ""


def fmt_clock(seconds: float) -> str:
    seconds = max(0.0, seconds)
    minutes, rest = divmod(seconds, 60)
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{int(hours)}:{int(minutes):02d}:{rest:04.1f}"
    return f"{int(minutes)}:{rest:04.1f}"


def parse_time(text: str) -> float:
    """'95', '95.5', '1:35', '1:02:03' or '90s'/'2m' → seconds; ValueError otherwise."""
    text = text.strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text)
    if match:
        return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]
    parts = text.split(":")
    if 2 <= len(parts) <= 3 and all(re.fullmatch(r"\d+(?:\.\d+)?", p) for p in parts):
        total = 0.0
        for part in parts:
            total = total * 60 + float(part)
        return total
    raise ValueError(f"not a time: {text!r} (try 95, 1:35 or 2m)")


def _first_line(text: str) -> str:
    return next((line.strip() for line in str(text).splitlines() if line.strip()), "")


def _short(text: Any, limit: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "AsyncioClock",
    "DECISION_TYPES",
    "EventTail",
    "ReplayClock",
    "ReplayPlayer",
    "VirtualClock",
    "copy_state",
    "default_cache_dir",
    "describe_event",
    "fmt_clock",
    "parse_time",
    "script_at",
    "workspace_for",
]
