"""End to end in a real terminal: `speedcopilot start` inside tmux, driven with send-keys, read with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from copilot.core.session.events import EVENTS_FILE, read_events

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Tmux:
    def __init__(self, socket: Path) -> None:
        self.socket = str(socket)

    def __call__(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=10)
        return result.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p")

    def wait_for(self, text: str, timeout_s: float = 120.0) -> str:
        timeout_s = max(timeout_s, 120.0)  # a hang guard, not a speed check: a loaded machine may be slow
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared; screen was:\n{self.screen()}")


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
    tmux("new-session", "-d", "-x", "120", "-y", "40", command)
    try:
        screen = tmux.wait_for("offline oracle", 30)
        assert "micro #0" in screen and "Suggestion" in screen and "Loss" in screen
        tmux("send-keys", "s")
        tmux.wait_for("Ask for a suggestion", 10)
        tmux("send-keys", "faster please", "Enter")
        tmux.wait_for("hunk 1/", 30)
        tmux("send-keys", "A")
        tmux.wait_for("decided ·", 10)
        tmux("send-keys", "c")
        tmux.wait_for("committed", 15)
        tmux("send-keys", "E")
        tmux.wait_for("Commit your edit", 15)
        # the dialog's diff may paint a frame after its title: wait for the line, not one capture
        tmux.wait_for("+import argparse  # edited by a human")
        tmux("send-keys", "y")
        tmux.wait_for("(human)", 15)
        tmux("send-keys", "q")
        deadline = time.monotonic() + 120  # hang guard
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert done.exists(), f"the app did not exit; screen:\n{tmux.screen()}"
        assert done.read_text().strip() == "0"
    finally:
        tmux("kill-server")
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
