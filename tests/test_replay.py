"""Replay: the shipped example sessions, the player (state_at, decisions, pacing, follow), the app, the CLI."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.core.session.events import EVENTS_FILE, Event, EventLog, read_events
from copilot.core.session.projection import SessionState
from copilot.core.llm.providers import OracleProvider
from copilot.core.session.replay import (
    DECISION_TYPES,
    ReplayPlayer,
    VirtualClock,
    copy_state,
    fmt_clock,
    parse_time,
    workspace_for,
)
from copilot.core.session import Session
from copilot.core.session import schema as sc
from copilot.core.session.schema import HunkDecision
from copilot.ui.actions.replay import SEEK_STEP_S
from copilot.ui.app import CopilotApp
from copilot.ui.panes.timeline import TimelineBar
from copilot.ui.replay import replay_app
from copilot.ui.widgets.code_view import CodeView
from copilot.ui.widgets.hunk_card import HunkCard
from copilot.ui.widgets.loss_chart import LossChart
from copilot.ui.widgets.run_table import RunTable
from tests.support import waiting
from tests.support.fixture_track import FixtureTrack
from tests.support.ui import screen_text, wait_until


REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "sessions" / "examples"
EXAMPLE_NAMES = ("copilot-oracle", "auto-greedy")


def example(name: str) -> Path:
    path = EXAMPLES / name
    assert (path / EVENTS_FILE).is_file() and (path / "workspace.bundle").is_file(), (
        f"{path} is missing; record it with `python bench/record_examples.py`")
    return path


def play_to_end(player: ReplayPlayer, clock=None) -> list[Event]:
    emitted: list[Event] = []
    asyncio.run(player.play(emitted.append, clock=clock or VirtualClock()))
    return emitted


def _run_signature(state: SessionState) -> dict:
    return {rid: (r.commit, r.status, r.points, r.result) for rid, r in state.runs.items()}


def _decisions(state: SessionState) -> dict:
    return {sid: sorted(view.decisions.items()) for sid, view in state.suggestions.items()}


# --------------------------------------------------------------------------------------------------
# The shipped examples
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_are_small_and_name_nothing_of_this_machine(name: str) -> None:
    folder = example(name)
    assert sorted(p.name for p in folder.iterdir()) == ["events.jsonl", "workspace.bundle"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 300_000
    text = (folder / EVENTS_FILE).read_text(encoding="utf-8")
    for leak in ("/home/", "/tmp/", "/work/", "/root/", str(REPO), socket.gethostname()):
        assert leak not in text, f"{name} names {leak!r}"
    result = read_events(folder / EVENTS_FILE)
    assert not result.problems
    started = result.events[0]
    assert started.type == "session_started" and started.get("host", {}).get("hostname") == "<host>"
    assert started.get("track") == "micro"


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_replay_reaches_the_logs_final_state_and_the_bundles_history(name: str, tmp_path: Path) -> None:
    folder = example(name)
    player = ReplayPlayer.from_session(folder, speed=10, cache_dir=tmp_path)
    emitted = play_to_end(player)
    original = read_events(folder / EVENTS_FILE).events
    assert [e.seq for e in emitted] == [e.seq for e in original]
    expected = SessionState.from_events(original)
    state = player.state
    assert state == expected  # the whole projection, field by field
    assert state.head == expected.head and [c.sha for c in state.commits] == [c.sha for c in expected.commits]
    assert _run_signature(state) == _run_signature(expected) and state.runs
    assert _decisions(state) == _decisions(expected)

    workspace = workspace_for(folder, cache_dir=tmp_path)
    assert not str(workspace.path).startswith(str(folder))  # the bundle is cloned elsewhere
    assert workspace.repo.heads[state.branch].commit.hexsha == state.head
    for commit in state.commits[1:]:
        info = workspace.commit_info(commit.sha)
        assert info.parent == commit.parent
        if commit.suggestion_id:
            assert info.trailers.get("Suggestion-Id") == commit.suggestion_id
            assert info.trailers.get("Provenance") == commit.provenance
    for run in state.runs.values():
        workspace.commit_info(run.commit)  # every run's commit is in the history
    assert player.script_at(state.head) == workspace.read(player.script_name, state.head)


def test_copilot_example_holds_accept_reject_with_feedback_edit_commit_and_run(tmp_path: Path) -> None:
    player = ReplayPlayer.from_session(example("copilot-oracle"), cache_dir=tmp_path)
    state = player.state_at(player.duration)
    (suggestion,) = state.suggestions.values()
    decisions = [suggestion.decision(h.index) for h in suggestion.hunks]
    kinds = [d.action for d in decisions if d is not None]
    assert len(kinds) == len(suggestion.hunks)
    assert kinds.count("reject") == 1 and kinds.count("edit") == 1 and kinds.count("accept") >= 2
    rejected = next(h for h, d in zip(suggestion.hunks, decisions) if d.action == "reject")
    edited_hunk, edited = next((h, d) for h, d in zip(suggestion.hunks, decisions) if d.action == "edit")
    assert suggestion.decision(rejected.index).feedback and all(d.decision_time_s for d in decisions)
    commit = state.commits[-1]
    assert commit.provenance == "ai+human-edit" and suggestion.commit == commit.sha == state.head
    head_script = player.script_at(state.head)
    start_script = player.script_at(state.start_commit)
    assert edited.edited_replace in head_script and edited_hunk.search in start_script
    assert rejected.search in head_script  # the rejected hunk did not land
    for hunk, decision in zip(suggestion.hunks, decisions):
        if decision.action == "accept":
            assert hunk.replace in head_script
    (run,) = state.runs.values()
    assert run.commit == commit.sha and run.status != "running" and len(run.val_points) >= 2


# --------------------------------------------------------------------------------------------------
# The player
# --------------------------------------------------------------------------------------------------
def test_state_at_every_position_equals_a_fold_of_the_events_up_to_there(tmp_path: Path) -> None:
    folder = example("copilot-oracle")
    events = read_events(folder / EVENTS_FILE).events
    player = ReplayPlayer.from_session(folder, checkpoint_every=4, cache_dir=tmp_path)
    t0 = events[0].t
    probes = sorted({e.t - t0 for e in events} | {(a.t + b.t) / 2 - t0 for a, b in zip(events, events[1:])})
    for position in probes + [-5.0, player.duration + 5.0]:
        expected = SessionState.from_events([e for e in events if e.t - t0 <= position + 1e-9])
        assert player.state_at(position) == expected, position

    commit_at = next(e.t - t0 for e in events if e.type == "commit_created")
    run_started = next(e.t - t0 for e in events if e.type == "run_started")
    before = player.state_at(commit_at - 0.001)
    assert before.head == before.start_commit and not before.runs
    mid_run = player.state_at((run_started + player.duration) / 2)
    (run,) = mid_run.runs.values()
    assert run.is_live and 0 < len(run.points) < len(player.state_at(player.duration).runs[run.run_id].points)
    # a returned state is the caller's: changing it leaves the player's checkpoints alone
    mid_run.runs[run.run_id].points.clear()
    mid_run.suggestions.clear()
    assert player.state_at((run_started + player.duration) / 2).runs[run.run_id].points


def _long_session(n_metrics: int) -> list[Event]:
    from copilot.core.edits import Hunk

    events = [Event.of(1, 1000.0, sc.SessionStarted(session_id="long", track="micro", record=0,
                                                    target_val_loss=1.5, start_commit="a" * 40)),
              Event.of(2, 1001.0, sc.RunStarted(run_id="r1", commit="a" * 40, command=["python"]))]
    for i in range(n_metrics):
        seq, t = len(events) + 1, 1002.0 + i * 0.01
        if i % 10_000 == 5_000:
            events.append(Event.of(seq, t, sc.SuggestionReceived(suggestion_id=f"s{i}",
                                                                 hunks=[Hunk(0, "x", "a", "b")])))
            continue
        val = 4.0 - i * 1e-5 if i % 100 == 0 else None
        events.append(Event.of(seq, t, sc.Metric(run_id="r1", step=i, train_loss=4.0 - i * 1e-5,
                                                 train_time_ms=i * 10.0, val_loss=val)))
    return events


def test_seeking_in_a_100k_event_session_refolds_at_most_one_checkpoint_gap() -> None:
    events = _long_session(100_000)
    player = ReplayPlayer(events, speed=10)
    player.seek(player.duration)  # the first visit folds once and leaves checkpoints behind
    assert player.events_folded == len(events)
    positions = [player.duration * f for f in (0.93, 0.11, 0.57, 0.35, 0.78, 0.02, 0.99, 0.5)]
    for position in positions:
        before = player.events_folded
        player.seek(position)
        assert player.events_folded - before < player.checkpoint_every  # never a fold from the start
    assert player.checkpoint_every < len(events) / 10
    player.seek(positions[2])
    expected = SessionState.from_events(e for e in events if e.t - events[0].t <= positions[2] + 1e-9)
    assert player.state == expected
    assert player.next_decision() is not None and player.state.suggestions


def test_next_and_previous_decision_walk_the_suggestions_decisions_and_commits(tmp_path: Path) -> None:
    folder = example("copilot-oracle")
    events = read_events(folder / EVENTS_FILE).events
    decision_seqs = [e.seq for e in events if e.type in DECISION_TYPES]
    assert [events[s - 1].type for s in decision_seqs] == ["suggestion_received", "commit_created",
                                                            "suggestion_decided"]
    player = ReplayPlayer.from_session(folder, cache_dir=tmp_path)
    assert player.cursor == 0
    seen = []
    for _ in range(len(events)):  # bounded: a player stuck on one decision fails instead of hanging
        if player.next_decision() is None:
            break
        last = player.events[player.cursor - 1]
        seen.append(last.seq)
        assert player.state == SessionState.from_events(events[: player.cursor])
    assert seen == decision_seqs
    assert player.events[player.cursor - 1].type == "suggestion_decided"
    assert player.state.head == player.state.commits[-1].sha
    back = []
    for _ in range(len(events)):
        if player.previous_decision() is None:
            break
        back.append(player.events[player.cursor - 1].seq)
    assert back == decision_seqs[-2::-1]
    assert player.state.suggestions["s1"].status == "received"  # at the first decision: nothing decided yet
    player.seek(player.duration)  # from after the end, "previous" is the last decision
    assert player.previous_decision() is not None and player.events[player.cursor - 1].seq == decision_seqs[-1]


def _spaced(n: int, gap: float, start: float = 5000.0) -> list[Event]:
    return [Event(i + 1, start + i * gap, "note", {"text": f"n{i}"}) for i in range(n)]


def test_play_paces_events_and_caps_long_gaps() -> None:
    events = _spaced(4, 1.0) + [Event(5, 5003.0 + 3600.0, "note", {"text": "after an hour"})]
    player = ReplayPlayer(events, speed=10, max_wait_s=2.0)
    clock = VirtualClock()
    emitted = play_to_end(player, clock)
    assert [e.seq for e in emitted] == [1, 2, 3, 4, 5]
    assert clock.waited == pytest.approx(0.3 + 2.0)  # 3 gaps of 0.1 s, the hour capped at 2 s
    assert player.position == player.duration == pytest.approx(3603.0)


async def test_pause_resume_seek_and_speed_while_playing() -> None:
    player = ReplayPlayer(_spaced(30, 1.0), speed=20)  # 0.05 s between events
    emitted: list[int] = []

    def on_event(event: Event) -> None:
        emitted.append(event.seq)
        if event.seq == 3:
            player.pause()

    clock = VirtualClock()  # time moves only when the player waits on it, so a pause that leaked would show at once
    task = asyncio.create_task(player.play(on_event, clock=clock))
    await waiting.until(lambda: player.paused, "the pause")
    assert emitted == [1, 2, 3]
    waited = clock.waited
    for _ in range(200):  # unpaused, the loop would apply an event every turn or two
        await asyncio.sleep(0)
    assert emitted == [1, 2, 3] and player.playing and clock.waited == waited  # paused: nothing more, no time
    player.seek(20.0)  # jump forward while paused: events 4..21 are applied, not emitted
    assert player.cursor == 21 and player.state.notes[-1] == "n20"
    player.set_speed(1000)
    player.resume()
    await asyncio.wait_for(task, 60)
    assert emitted == [1, 2, 3, *range(22, 31)]
    assert not player.playing and player.at_end


async def test_follow_tails_a_growing_log_and_survives_a_torn_last_line(tmp_path: Path) -> None:
    session_dir = tmp_path / "live"
    log = EventLog(session_dir)
    log.open()
    log.append(sc.SessionStarted(session_id="live", track="fixture", record=0))
    log.append(sc.Note(text="first"))
    log.close()  # the writer "crashes" while writing its next line:
    with open(session_dir / EVENTS_FILE, "ab") as handle:
        handle.write(b'{"v":1,"seq":3,"t":1.0,"type":"note","te')

    player = ReplayPlayer.from_session(session_dir, follow=True, poll_s=0.02)
    assert any("torn" in p for p in player.problems)
    looks = 0
    read_new = player.poll

    def counted_poll() -> int:
        nonlocal looks
        looks += 1
        return read_new()

    player.poll = counted_poll  # type: ignore[method-assign]
    emitted: list[Event] = []
    task = asyncio.create_task(player.play(emitted.append, clock=VirtualClock()))

    async def until(count: int) -> None:
        for _ in range(10_000):  # a hang guard only: under load the tail may take a while
            if len(emitted) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"only {len(emitted)} events arrived: {[e.type for e in emitted]}")

    async def wait_looks(count: int) -> None:
        await waiting.until(lambda: looks >= count, f"{count} looks at the growing log")

    await until(2)
    looked = looks
    await wait_looks(looked + 3)
    assert [e.seq for e in emitted] == [1, 2] and not task.done()  # the torn line is held back, no crash

    log = EventLog(session_dir)  # the writer comes back: it truncates its torn tail and goes on
    log.open()
    log.append(sc.Note(text="after restart"))
    await until(3)
    assert emitted[2].get("text") == "after restart" and emitted[2].seq == 3
    with open(session_dir / EVENTS_FILE, "ab") as handle:  # a garbage line from elsewhere is skipped
        handle.write(b"not json at all\n")
    log.append(sc.Note(text="still going"))
    log.append(sc.SessionEnded(reason="user"))
    log.close()
    await asyncio.wait_for(task, 60)  # a followed session that ended lets play() return
    assert [e.get("text") for e in emitted[2:4]] == ["after restart", "still going"]
    assert [e.seq for e in emitted] == [1, 2, 3, 4, 5] and player.state.ended
    assert any("unreadable" in p for p in player.problems)


def test_copy_state_is_independent_and_parse_time_reads_the_usual_forms() -> None:
    player = ReplayPlayer(read_events(example("copilot-oracle") / EVENTS_FILE).events)
    player.seek(player.duration)
    copy = copy_state(player.state)
    assert copy == player.state
    next(iter(copy.runs.values())).points.pop()
    next(iter(copy.suggestions.values())).decisions.clear()
    assert copy != player.state
    assert [parse_time(t) for t in ("95", "1:35", "2m", "90s", "1:00:05")] == [95, 95, 120, 90, 3605]
    with pytest.raises(ValueError):
        parse_time("soon")


async def test_replay_of_a_local_session_reads_its_workspace_and_writes_nothing(tmp_path: Path) -> None:
    track = FixtureTrack()
    session = Session.create(tmp_path / "sessions", track, 0, OracleProvider(track, 0))
    view = await session.request_suggestion()
    await session.decide(view.id, [HunkDecision(h.index, "accept", decision_time_s=1.0) for h in view.hunks])
    await session.close()
    before = {p: p.stat().st_mtime_ns for p in session.dir.rglob("*") if ".git" not in p.parts}
    snapshot = (session.dir / EVENTS_FILE).read_bytes()

    player = ReplayPlayer.from_session(session.dir, cache_dir=tmp_path / "cache")
    await player.play(clock=VirtualClock())
    assert player.workspace.path == session.dir / "workspace"
    assert player.script_at() == session.workspace.read(track.script_name, player.state.head)
    assert not (tmp_path / "cache").exists()  # no bundle clone needed
    app = replay_app(ReplayPlayer.from_session(session.dir), autoplay=True, clock=VirtualClock())
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one("#script-text", CodeView).text == player.script_at(),
                         what="the replayed script")
    assert (session.dir / EVENTS_FILE).read_bytes() == snapshot
    after = {p: p.stat().st_mtime_ns for p in session.dir.rglob("*") if ".git" not in p.parts}
    assert after == before


# --------------------------------------------------------------------------------------------------
# The app
# --------------------------------------------------------------------------------------------------
def _script(app: CopilotApp) -> str:
    return app.screen.query_one("#script-text", CodeView).text


def _drawn(app: CopilotApp, player: ReplayPlayer) -> bool:
    """The app has drawn the player's cursor, and the script of its head has loaded."""
    return (app._drawn_cursor == (player.cursor, len(player.events)) and app.ui.script_head == player.state.head
            and not [w for w in app.workers if w.group == "script" and w.is_running])


async def test_replay_app_shows_script_at_head_and_run_curve_and_keys_move_the_timeline(tmp_path: Path) -> None:
    folder = example("copilot-oracle")
    player = ReplayPlayer.from_session(folder, speed=1, cache_dir=tmp_path)
    player.seek(player.duration)
    final = player.state
    head_script = player.script_at(final.head)
    start_script = player.script_at(final.start_commit)
    (run,) = final.runs.values()
    run_started = next(p for p, e in zip(player.positions, player.events) if e.type == "run_started")
    app = replay_app(player, autoplay=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: _drawn(app, player) and _script(app) == head_script, what="the end drawn")
        chart = app.screen.query_one(LossChart)
        await wait_until(pilot, lambda: any(x.kind == "val" for x in chart.series), what="the run's curve")
        val = next(x for x in chart.series if x.kind == "val")
        assert len(val.ys) == len(run.val_points) and val.ys[-1] == run.val_points[-1].val_loss
        await wait_until(pilot, lambda: any(0x2800 < ord(ch) <= 0x28FF for ch in screen_text(app)),
                         what="braille curve points in the chart")
        table = app.screen.query_one(RunTable)
        bar = app.screen.query_one(TimelineBar)
        await wait_until(pilot, lambda: table.row_count == 1 and "end" in bar.caption, what="the run row")
        cards = list(app.screen.query(HunkCard).results(HunkCard))  # the recorded decisions on the hunk cards
        assert "reject" in [c.decision.action for c in cards if c.decision is not None]
        assert app.check_action("suggest", ()) is False and app.check_action("run", ()) is False  # read-only

        await pilot.press("N")  # back to the last decision: the run has not started yet
        await wait_until(pilot, lambda: _drawn(app, player) and table.row_count == 0, what="before the run")
        assert player.events[player.cursor - 1].type == "suggestion_decided"
        # the chart redraws at most every MIN_REDRAW_S (panes/chart.py): wait for it rather than race it
        await wait_until(pilot, lambda: not any(x.kind == "val" for x in chart.series), what="the chart emptied")
        await pilot.press("N", "N")  # back past the commit to the suggestion: the script is the record's
        await wait_until(pilot, lambda: _drawn(app, player) and _script(app) == start_script, what="the start")
        assert player.events[player.cursor - 1].type == "suggestion_received"
        await pilot.press("n")
        await wait_until(pilot, lambda: _drawn(app, player) and _script(app) == head_script, what="the commit")
        assert player.events[player.cursor - 1].type == "commit_created"

        position = player.position
        await pilot.press("space")  # play (speed 1: the next event is a second away)
        await wait_until(pilot, lambda: player.playing and not player.paused, what="playing")
        await pilot.press("space")
        await wait_until(pilot, lambda: player.paused, what="paused")
        paused_at = player.position
        assert paused_at >= position
        await pilot.press("plus")
        assert player.speed == 2
        await pilot.press("right")  # seeks are in recorded seconds whatever the speed
        assert player.position == pytest.approx(min(player.duration, paused_at + SEEK_STEP_S))
        await pilot.press("left")
        assert player.position == pytest.approx(max(0.0, min(player.duration, paused_at + SEEK_STEP_S) - SEEK_STEP_S))
        await pilot.press("g")  # jump to a typed time; the replay keeps drawing under the dialog
        await wait_until(pilot, lambda: len(app.screen_stack) == 2, what="the time prompt")
        target = round(run_started + (player.duration - run_started) / 2, 1)  # in the middle of the run
        await pilot.press("q", "n", "N", "space", *["backspace"] * 4, *f"{target:.1f}", "enter")  # typed, not keys
        await wait_until(pilot, lambda: len(app.screen_stack) == 1 and player.position == target, what="the jump")
        await wait_until(pilot, lambda: _drawn(app, player) and table.row_count == 1, what="the run mid-way")
        assert app.is_running and fmt_clock(target) in bar.caption
        assert player.state.runs[run.run_id].is_live
        await pilot.press("q")
    assert not player.playing


# --------------------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------------------
def _speedcopilot() -> str:
    found = Path(sys.executable).parent / "speedcopilot"
    return str(found) if found.exists() else shutil.which("speedcopilot") or "speedcopilot"


def test_cli_headless_prints_the_timeline(tmp_path: Path) -> None:
    env = {**os.environ, "SPEEDCOPILOT_CACHE_DIR": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run([_speedcopilot(), "replay", "copilot", "--session-dir", str(EXAMPLES), "--headless"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for needle in ("replay of copilot-oracle", "suggestion_received", "suggestion_decided", "reject after",
                   "edit after", "commit_created", "run_started", "val ", "run_finished", "final state"):
        assert needle in out, needle
    assert out.index("commit_created") < out.index("run_finished")
    assert "train " not in out  # training-loss lines only with --all-metrics

    events = read_events(example("copilot-oracle") / EVENTS_FILE).events
    commit_at = next(e.t - events[0].t for e in events if e.type == "commit_created")
    later = subprocess.run([_speedcopilot(), "replay", str(example("copilot-oracle")), "--headless", "--from",
                            f"{commit_at + 0.01:.2f}"], capture_output=True, text=True, env=env, timeout=60)
    assert later.returncode == 0 and "applied silently" in later.stdout and "suggestion_received" not in later.stdout

    missing = subprocess.run([_speedcopilot(), "replay", "nope", "--session-dir", str(tmp_path), "--headless"],
                             capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1 and "speedcopilot sessions list" in missing.stderr


async def test_a_replay_shows_the_guard_findings_and_the_override_of_a_run() -> None:
    """What the human was shown and chose stays visible when the session is replayed."""
    from tests.support.ui import C1, EventMaker, sample_events

    maker = EventMaker()
    maker.events = sample_events(finished_run=False)
    finding = {"rule": "val.bent", "kind": "val_loss", "severity": "block", "line": 412,
               "reason": "the printed val loss is clamped"}
    maker.add(sc.GuardReport(commit=C1, findings=[finding], blocking=True))
    maker.add(sc.GuardOverride(commit=C1, choice="run", rules=["val.bent"]))
    maker.add(sc.RunStarted(run_id="r9", commit=C1, command=["python", "train_gpt.py"], runner="local"))
    player = ReplayPlayer(maker.events, speed=1)
    player.seek(player.duration)
    app = replay_app(player, autoplay=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_until(pilot, lambda: app._drawn_cursor == (player.cursor, len(player.events)), what="the end")
        note = app.screen.query_one("#guard-notes")
        await wait_until(pilot, lambda: "run anyway by your choice" in str(note.render()), what="the guard note")
        assert "line 412: the printed val loss is clamped" in str(note.render())
