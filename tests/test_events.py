"""The session log: typed events, append + fsync, one writer, tolerant reading that keeps every valid event."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.core.edits import Hunk
from copilot.core.errors import SessionLockedError
from copilot.core.session import schema as s
from copilot.core.session.events import EVENTS_FILE, EventLog, read_events
from copilot.core.session.projection import SessionState


def start(**fields: object) -> s.SessionStarted:
    return s.SessionStarted(track="micro", record=3, **fields)  # type: ignore[arg-type]


def test_append_and_read_back_in_order(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append(start(mode="copilot"))
        log.append(s.Note(text="hello ü"))
    result = read_events(tmp_path / EVENTS_FILE)
    assert [e.type for e in result.events] == ["session_started", "note"]
    assert [e.seq for e in result.events] == [1, 2]
    assert result.events[1].body == s.Note(text="hello ü")
    assert result.problems == []
    first = json.loads((tmp_path / EVENTS_FILE).read_text().splitlines()[0])
    assert first["v"] == 1 and first["type"] == "session_started" and isinstance(first["t"], float)


def test_only_typed_bodies_are_written(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        with pytest.raises(TypeError, match="typed bodies"):
            log.append("note")  # type: ignore[arg-type]


def _example(cls: type[s.EventBody]) -> s.EventBody:
    """A body of `cls` with every field set to a value of its declared kind."""
    values: dict[str, object] = {}
    for spec in s._specs(cls):
        if spec.item is Hunk:
            values[spec.name] = [Hunk(0, "train_gpt.py", "a = 1\n", "a = 2\n", anchor="def f():")]
        elif spec.item is s.HunkDecision:
            values[spec.name] = [s.HunkDecision(0, "edit", edited_replace="a = 3\n", feedback="why", decision_time_s=2.5)]
        else:
            values[spec.name] = {int: 7, float: 1.5, str: "x", bool: True, list: ["a"], dict: {"k": 1}, None: "y"}[
                spec.kind]
    if cls is s.HunkDecided:
        values["decision"] = "accept"
    return cls(**values)


@pytest.mark.parametrize("cls", sorted(s.BODY_TYPES.values(), key=lambda c: c.TYPE), ids=lambda c: c.TYPE)
def test_every_event_type_round_trips_through_the_log(tmp_path: Path, cls: type[s.EventBody]) -> None:
    body = _example(cls)
    with EventLog(tmp_path) as log:
        log.append(body)
    (event,) = read_events(tmp_path / EVENTS_FILE).events
    assert event.body == body


def test_fields_from_a_newer_writer_are_kept(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    path.write_text('{"v":1,"seq":1,"t":1.0,"type":"session_started","track":"micro","record":1,"future":[1,2]}\n')
    (event,) = read_events(path).events
    assert event.body.extra == {"future": [1, 2]} and event.body.to_dict()["future"] == [1, 2]


def test_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with EventLog(tmp_path):
        with pytest.raises(SessionLockedError, match="already open"):
            EventLog(tmp_path).open()


def test_second_writer_in_another_process_is_refused(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append(s.Note(text="x"))
        code = (
            "import sys; from pathlib import Path; from copilot.core.session.events import EventLog\n"
            "from copilot.core.errors import SessionLockedError\n"
            f"try:\n EventLog(Path({str(tmp_path)!r})).open()\nexcept SessionLockedError as e:\n print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "already open" in proc.stdout


def test_lock_is_released_on_close(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append(s.Note(text="a"))
    with EventLog(tmp_path) as log:
        event = log.append(s.Note(text="b"))
    assert event.seq == 2  # continues the sequence


def test_torn_last_line_is_reported_and_repaired_on_open(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append(start())
        log.append(s.Note(text="kept"))
    path = tmp_path / EVENTS_FILE
    with open(path, "ab") as handle:
        handle.write(b'{"v":1,"seq":3,"t":1.0,"type":"no')  # a crash mid-write
    result = read_events(path)
    assert [e.get("text") for e in result.events] == [None, "kept"]
    assert result.torn_tail and "torn" in result.problems[0]
    with EventLog(tmp_path) as log:  # the writer cuts the torn bytes (kept in a .bak) and continues
        log.append(s.Note(text="after"))
    again = read_events(path)
    assert [e.get("text") for e in again.events] == [None, "kept", "after"]
    assert again.problems == []
    assert list(tmp_path.glob("torn-tail-*.bak"))


def test_garbage_unknown_and_malformed_lines_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    path.write_bytes(
        b'{"v":1,"seq":1,"t":1.0,"type":"session_started","track":"micro","record":1}\n'
        b"garbage here\n"
        b'\xff\xfe not utf8\n'
        b'{"v":1,"seq":2,"t":2.0,"type":"from_the_future","x":1}\n'
        b'[1,2,3]\n'
        b'{"v":1,"seq":3,"t":3.0,"type":"run_started","commit":"abc"}\n'
        b'{"v":1,"seq":4,"t":4.0,"type":"metric","step":3}\n'
        b'{"v":1,"seq":5,"t":5.0,"type":"run_finished","run_id":"r1","outcome":"crashed","exit_code":"one"}\n'
    )
    result = read_events(path)
    assert [e.type for e in result.events] == ["session_started", "from_the_future", "run_started", "metric",
                                               "run_finished"]
    problems = "\n".join(result.problems)
    assert "line 2: unreadable" in problems and "line 3: unreadable" in problems and "line 5: unreadable" in problems
    assert "line 4: unknown event type 'from_the_future'" in problems
    assert "line 6: run_started event without run_id" in problems
    assert "line 7: metric event without run_id" in problems
    assert "line 8: run_finished.exit_code should be int" in problems
    assert isinstance(result.events[2].body, s.Malformed)
    SessionState.from_events(result.events)  # folds skip what they cannot use


def test_out_of_order_and_duplicate_seqs_are_kept_and_reported(tmp_path: Path) -> None:
    lines = [{"v": 1, "seq": n, "t": float(n), "type": "note", "text": f"n{n}"} for n in (1, 2, 5, 3, 4, 4, 7)]
    lines[0] = {"v": 1, "seq": 1, "t": 1.0, "type": "session_started", "track": "micro", "record": 1}
    path = tmp_path / EVENTS_FILE
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = read_events(path)
    assert [e.seq for e in result.events] == [1, 2, 3, 4, 4, 5, 7]  # every event, in seq order
    problems = "\n".join(result.problems)
    assert "line 4: seq 3 is out of order (after seq 5)" in problems
    assert "line 6: duplicate seq 4 (also line 5)" in problems
    assert "seq 5 → 7: 1 event missing" in problems


def test_a_log_without_session_started_is_a_clear_warning(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    path.write_text('{"v":1,"seq":7,"t":1.0,"type":"note","text":"middle of a session"}\n')
    result = read_events(path)
    assert len(result.events) == 1 and any("no session_started event" in p for p in result.problems)


def test_secrets_are_refused(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        with pytest.raises(ValueError, match="secret"):
            log.append(s.Note(text="x", extra={"meta": {"api_key": "sk-123"}}))
    assert read_events(tmp_path / EVENTS_FILE).events == []


def test_listeners_see_events_in_order(tmp_path: Path) -> None:
    seen: list[int] = []
    with EventLog(tmp_path) as log:
        log.subscribe(lambda e: seen.append(e.seq))
        for i in range(5):
            log.append(s.Note(text=str(i)))
    assert seen == [1, 2, 3, 4, 5]


def test_hunk_decision_is_the_one_decision_type() -> None:
    decision = s.HunkDecision(2, "edit", edited_replace="b\n", decision_time_s=1.25)
    hunk = Hunk(2, "train_gpt.py", "a\n", "c\n")
    assert decision.applied_to(hunk) == dataclasses.replace(hunk, replace="b\n")
    assert s.HunkDecision.from_dict(decision.to_dict()) == decision
    with pytest.raises(ValueError):
        s.HunkDecision(0, "edit")


def test_metrics_are_synced_within_the_interval_and_durable_events_at_once(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from copilot.core.session import events as ev

    syncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(ev.os, "fsync", lambda fd: (syncs.append(fd), real_fsync(fd))[1])
    now = [100.0]
    log = EventLog(tmp_path, sync_clock=lambda: now[0])
    log.open()
    log.append(start())
    assert len(syncs) == 1  # durable: on disk before append returned
    for step in range(50):
        log.append(s.Metric(run_id="r1", step=step, train_loss=3.0))
    assert len(syncs) == 1  # written (another reader sees them) but not yet synced
    assert len(read_events(tmp_path / EVENTS_FILE).events) == 51
    now[0] += ev.SYNC_INTERVAL_S
    log.append(s.Metric(run_id="r1", step=50, train_loss=3.0))
    assert len(syncs) == 2  # the interval passed: this one syncs every line before it
    log.append(s.Metric(run_id="r1", step=51, train_loss=3.0))
    log.append(s.Note(text="a durable event syncs the metrics before it too"))
    assert len(syncs) == 3
    log.append(s.Metric(run_id="r1", step=52, train_loss=3.0))
    log.close()
    assert len(syncs) == 4  # closing syncs what was left
    assert [e.get("step") for e in read_events(tmp_path / EVENTS_FILE).events if e.type == "metric"] == list(range(53))
