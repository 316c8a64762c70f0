"""The git workspace: seeded from a record, provenance trailers, undo and branches that lose nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from watchdog.observers.api import BaseObserver

from copilot.core.errors import WorkspaceError
from copilot.core.session.workspace import Workspace, parse_trailers
from tests.support.waiting import wait_until

SCRIPT = "train_gpt.py"


def make(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "ws", {SCRIPT: "lr = 1\nsteps = 10\n"}, "record 0",
                            {"Provenance": "start"})


def test_create_seeds_first_commit_with_trailers(tmp_path: Path) -> None:
    ws = make(tmp_path)
    info = ws.commit_info(ws.head_sha())
    assert info.trailers == {"Provenance": "start"}
    assert ws.read(SCRIPT) == "lr = 1\nsteps = 10\n"
    assert ws.branch() == "main" and not ws.is_dirty()


def test_create_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "precious.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="not empty"):
        make(tmp_path)
    assert (tmp_path / "ws" / "precious.txt").read_text() == "x"


def test_commit_files_and_refusal_on_dirty_tree(tmp_path: Path) -> None:
    ws = make(tmp_path)
    sha = ws.commit_files({SCRIPT: "lr = 2\nsteps = 10\n"}, "Raise lr", {"Provenance": "ai", "Suggestion-Id": "s1"})
    assert ws.commit_info(sha).trailers["Suggestion-Id"] == "s1"
    (ws.path / SCRIPT).write_text("lr = 3  # typed by a human\nsteps = 10\n")
    with pytest.raises(WorkspaceError, match="uncommitted changes"):
        ws.commit_files({SCRIPT: "lr = 4\n"}, "x", {})
    assert (ws.path / SCRIPT).read_text().startswith("lr = 3  # typed by a human")  # never overwritten
    assert "typed by a human" in ws.dirty_diff()
    human = ws.commit_working_tree("Human edit", {"Provenance": "human"})
    assert ws.commit_info(human).parent == sha


def test_undo_is_a_new_commit_and_branching_loses_nothing(tmp_path: Path) -> None:
    ws = make(tmp_path)
    start = ws.head_sha()
    a = ws.commit_files({SCRIPT: "lr = 2\nsteps = 10\n"}, "A", {"Provenance": "ai"})
    undo = ws.revert_head({"Provenance": "revert"})
    assert ws.read(SCRIPT) == "lr = 1\nsteps = 10\n"
    assert ws.commit_info(undo).parent == a
    with pytest.raises(WorkspaceError, match="nothing to undo"):
        fresh = make(tmp_path / "other")
        fresh.revert_head({})
    name = ws.branch_from(start)
    assert name == "attempt-1" and ws.head_sha() == start
    ws.commit_files({SCRIPT: "lr = 5\nsteps = 10\n"}, "B", {"Provenance": "ai"})
    shas = {c.sha for c in ws.log()}
    assert {start, a, undo} <= shas and len(shas) == 4
    assert set(ws.branches()) == {"main", "attempt-1"}


def test_run_notes_attach_to_commits(tmp_path: Path) -> None:
    ws = make(tmp_path)
    ws.add_run_note(ws.head_sha(), "r-1: reached_target in 12.0s")
    ws.add_run_note(ws.head_sha(), "r-2: above_target")
    notes = ws.run_notes(ws.head_sha())
    assert "r-1" in notes and "r-2" in notes


def test_watch_reports_external_edits_in_every_folder_but_never_git_s_own_writes(tmp_path: Path) -> None:
    ws = make(tmp_path)
    (ws.path / "pkg").mkdir()
    (ws.path / "pkg" / "util.py").write_text("x = 1\n")
    changed: list[Path] = []
    seen = threading.Event()

    def on_change(path: Path) -> None:
        changed.append(path)
        # both, in either order: each folder has its own watch and reader thread, so under load the second
        # folder's event can come first
        if {p.name for p in changed} >= {SCRIPT, "util.py"}:
            seen.set()

    stop = ws.watch(on_change)  # the watches are in place when watch() returns
    try:
        (ws.path / ".git" / "scratch").write_text("git's own file\n")
        (ws.path / SCRIPT).write_text("lr = 9\n")
        (ws.path / "pkg" / "util.py").write_text("x = 2\n")
        assert seen.wait(timeout=120), changed  # a hang guard, not a speed check
    finally:
        stop()
    assert {p.name for p in changed} >= {SCRIPT, "util.py"}
    assert not any(".git" in p.parts for p in changed)
    after_stop = len(changed)
    (ws.path / SCRIPT).write_text("lr = 10\n")
    observers = lambda: [t for t in threading.enumerate() if isinstance(t, BaseObserver)]  # noqa: E731
    wait_until(lambda: not observers(), "the observer thread to end")
    assert len(changed) == after_stop  # stopped: nothing more is reported


def test_parse_trailers() -> None:
    assert parse_trailers("Subject\n\nBody text\n\nA: 1\nB-C: two words\n") == {"A": "1", "B-C": "two words"}
    assert parse_trailers("Subject only") == {}
    assert parse_trailers("Subject\n\nnot a trailer line") == {}


@pytest.mark.parametrize("path", ["../outside.py", "/tmp/absolute.py", "sub/../../outside.py", ".git/config",
                                  "link/escaped.py"])
def test_commit_files_never_writes_outside_the_workspace(tmp_path: Path, path: str) -> None:
    """Defence in depth: even a path that slipped past the edit parser cannot leave the workspace."""
    ws = make(tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (ws.path / "link").symlink_to(outside, target_is_directory=True)
    ws.repo.index.add(["link"])
    ws.repo.index.commit("a symlink that leads out")
    head = ws.head_sha()
    with pytest.raises(WorkspaceError, match="refusing to write"):
        ws.commit_files({SCRIPT: "lr = 9\n", path: "pwned = True\n"}, "sneaky", {"Provenance": "ai"})
    assert ws.head_sha() == head and not ws.is_dirty()
    assert ws.read(SCRIPT) == "lr = 1\nsteps = 10\n"
    assert not (tmp_path / "outside.py").exists() and not list(outside.iterdir())
    assert "pwned" not in (ws.path / ".git" / "config").read_text()
