"""End to end in a real terminal: `speedcopilot start` inside tmux, driven with send-keys, read with capture-pane."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from copilot.core.session.events import EVENTS_FILE, read_events
from tests.support.faults import Tmux, wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def test_start_suggest_accept_all_commit_edit_in_editor_quit_in_tmux(tmp_path: Path) -> None:
    from copilot.core.tracks.microdata import prepare_micro_data

    data = tmp_path / "data"
    prepare_micro_data(data, size="small")
    sessions = tmp_path / "sessions"
    done = tmp_path / "exit_code"
    bin_dir = Path(sys.executable).parent
    editor = tmp_path / "editor.sh"  # a non-interactive $EDITOR: the app suspends, runs it, resumes
    editor.write_text("#!/bin/sh\nsed -i 's/^import argparse$/import argparse  # edited by a human/' \"$1\"\n")
    editor.chmod(0o755)
    env = {"SPEEDCOPILOT_DATA_DIR": str(data), "PATH": f"{bin_dir}:{os.environ['PATH']}", "EDITOR": str(editor)}
    exports = " ".join(f"{k}={v!s}" for k, v in env.items())
    command = (f"env {exports} speedcopilot start --record 0 --track micro --provider oracle "
               f"--session-dir {sessions}; echo $? > {done}")
    tmux = Tmux(tmp_path / "tmux.sock")
    tmux.start(command, width=120, height=40)
    try:
        screen = tmux.wait_for("offline oracle")
        assert "micro #0" in screen and "Suggestion" in screen and "Loss" in screen
        tmux("send-keys", "s")
        tmux.wait_for("Ask for a suggestion")
        tmux("send-keys", "faster please", "Enter")
        tmux.wait_for("hunk 1/")
        tmux("send-keys", "A")
        tmux.wait_for("decided ·")
        tmux("send-keys", "c")
        tmux.wait_for("committed")
        tmux("send-keys", "E")
        tmux.wait_for("Commit your edit")
        # the dialog's diff may paint a frame after its title: wait for the line, not one capture
        tmux.wait_for("+import argparse  # edited by a human")
        tmux("send-keys", "y")
        tmux.wait_for("(human)")
        tmux("send-keys", "q")
        wait_for(done.exists, "the app to exit")
        assert done.read_text().strip() == "0"
    finally:
        tmux.close()
    (session_dir,) = [p for p in sessions.iterdir() if p.is_dir()]
    events = read_events(session_dir / EVENTS_FILE).events
    types = [e.type for e in events]
    for expected in ("session_started", "suggestion_requested", "suggestion_received", "suggestion_decided",
                     "commit_created", "session_ended"):
        assert expected in types
    assert types.index("commit_created") > types.index("suggestion_received")
    requested = next(e for e in events if e.type == "suggestion_requested")
    assert requested.get("instruction") == "faster please"
    commits = [e for e in events if e.type == "commit_created"]
    assert [c.get("provenance") for c in commits] == ["ai", "human"]
    assert "external_edit_detected" in types
