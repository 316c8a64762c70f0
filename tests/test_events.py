"""The session log: append + fsync, one writer, tolerant reading."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.core.errors import SessionLockedError
from copilot.core.session.events import EVENTS_FILE, EventLog, read_events


def test_append_and_read_back_in_order(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append("session_started", mode="copilot", record=3)
        log.append("note", text="hello ü")
    result = read_events(tmp_path / EVENTS_FILE)
    assert [e.type for e in result.events] == ["session_started", "note"]
    assert [e.seq for e in result.events] == [1, 2]
    assert result.events[1].get("text") == "hello ü"
    assert result.problems == []
    first = json.loads((tmp_path / EVENTS_FILE).read_text().splitlines()[0])
    assert first["v"] == 1 and first["type"] == "session_started" and isinstance(first["t"], float)


def test_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    with EventLog(tmp_path):
        with pytest.raises(SessionLockedError, match="already open"):
            EventLog(tmp_path).open()


def test_second_writer_in_another_process_is_refused(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append("note", text="x")
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
        log.append("note", text="a")
    with EventLog(tmp_path) as log:
        event = log.append("note", text="b")
    assert event.seq == 2  # continues the sequence


def test_torn_last_line_is_reported_and_repaired_on_open(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        log.append("note", text="kept")
    path = tmp_path / EVENTS_FILE
    with open(path, "ab") as handle:
        handle.write(b'{"v":1,"seq":2,"t":1.0,"type":"no')  # a crash mid-write
    result = read_events(path)
    assert [e.get("text") for e in result.events] == ["kept"]
    assert result.torn_tail and "torn" in result.problems[0]
    with EventLog(tmp_path) as log:  # the writer cuts the torn bytes (kept in a .bak) and continues
        log.append("note", text="after")
    again = read_events(path)
    assert [e.get("text") for e in again.events] == ["kept", "after"]
    assert again.problems == []
    assert list(tmp_path.glob("torn-tail-*.bak"))


def test_garbage_and_unknown_lines_are_skipped_or_kept_and_reported(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    path.write_bytes(
        b'{"v":1,"seq":1,"t":1.0,"type":"note","text":"a"}\n'
        b"garbage here\n"
        b'\xff\xfe not utf8\n'
        b'{"v":1,"seq":2,"t":2.0,"type":"from_the_future","x":1}\n'
        b'[1,2,3]\n'
    )
    result = read_events(path)
    assert [e.type for e in result.events] == ["note", "from_the_future"]
    assert len(result.problems) == 4
    assert any("unknown event type" in p for p in result.problems)


def test_secrets_are_refused(tmp_path: Path) -> None:
    with EventLog(tmp_path) as log:
        with pytest.raises(ValueError, match="secret"):
            log.append("note", text="x", meta={"api_key": "sk-123"})
    assert read_events(tmp_path / EVENTS_FILE).events == []


def test_listeners_see_events_in_order(tmp_path: Path) -> None:
    seen: list[int] = []
    with EventLog(tmp_path) as log:
        log.subscribe(lambda e: seen.append(e.seq))
        for i in range(5):
            log.append("note", text=str(i))
    assert seen == [1, 2, 3, 4, 5]
