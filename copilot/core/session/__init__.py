"""The session: one event log, one git workspace, one engine that drives the loop.

    schema.py      the event types (one frozen dataclass each) and the one decision type
    events.py      events.jsonl writer (lock, append + fsync) and tolerant reader
    projection.py  SessionState = fold(events), rendered by every driver
    workspace.py   the git repo of a session: provenance trailers, run notes, undo, branches
    engine.py      Session: propose -> review -> commit -> run -> observe; owns the git thread and run watchers
    replay.py      ReplayPlayer: a recorded session on a timeline, fed to the same projection
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from copilot._lazy import lazy_exports

_EXPORTS = {
    "RUNS_DIR": "engine",
    "WORKSPACE_DIR": "engine",
    "GuardBlocked": "engine",
    "HunkDecision": "schema",
    "Session": "engine",
    "SessionOptions": "engine",
    "commit_message": "engine",
    "ensure_not_open": "engine",
    "host_info": "engine",
    "list_session_dirs": "engine",
    "load_state": "engine",
    "new_session_id": "engine",
    "resolve_session_dir": "engine",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

if TYPE_CHECKING:  # what type checkers and readers see
    from copilot.core.session.engine import (
        RUNS_DIR,
        WORKSPACE_DIR,
        GuardBlocked,
        Session,
        SessionOptions,
        commit_message,
        ensure_not_open,
        host_info,
        list_session_dirs,
        load_state,
        new_session_id,
        resolve_session_dir,
    )
    from copilot.core.session.schema import HunkDecision

__all__ = [
    "RUNS_DIR", "WORKSPACE_DIR", "GuardBlocked", "HunkDecision", "Session", "SessionOptions", "commit_message",
    "ensure_not_open", "host_info", "list_session_dirs", "load_state", "new_session_id", "resolve_session_dir",
]
