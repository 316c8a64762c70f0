"""Drivers: who moves the session on the screen, and which actions the human may take meanwhile.

The screen is the same for all three; the app swaps the driver under it. The live co-pilot lets the human do
everything; the agent drives the session itself (the human watches, pauses, or takes over — taking over swaps in
the co-pilot driver, and a run the agent started stays the session's, watched to its end; handing back swaps
the agent in again, which goes on with its search from the log); a replay feeds a
recorded session from a player and allows only its own keys (play, seek, next decision).

`allows(action)` is the app's check_action answer: True (shown, enabled) or False (hidden). Actions that only
change the view (the diff toggle, pinning a run, themes, panes, help, quit) are always allowed.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from copilot.core.session import Session
    from copilot.core.session.projection import SessionState
    from copilot.core.session.replay import ReplayClock, ReplayPlayer

# what changes the session: the live co-pilot's
SESSION_ACTIONS = frozenset({
    "suggest", "accept", "reject", "edit_hunk", "feedback", "accept_all", "reject_all", "next_hunk", "prev_hunk",
    "goto_hunk", "apply", "run", "cancel_run", "undo", "checkout", "external_edit", "check_edits", "note",
    "measure_baseline",
})
AGENT_ACTIONS = frozenset({"agent_pause", "take_over"})
# the co-pilot's, in a session the agent drove before the human took over
HAND_BACK_ACTIONS = frozenset({"hand_back"})
REPLAY_ACTIONS = frozenset({"toggle_pause", "next_decision", "previous_decision", "seek", "goto", "faster",
                            "slower"})
# that need a suggestion waiting for decisions
HUNK_ACTIONS = frozenset({"accept", "reject", "edit_hunk", "feedback", "accept_all", "reject_all", "apply",
                          "next_hunk", "prev_hunk", "goto_hunk"})


class Driver:
    """No session: a read-only view of a projection (what a test or a viewer hands the app)."""

    name = "viewer"

    def __init__(self, session: "Session | None" = None) -> None:
        self.session = session

    def allows(self, action: str) -> bool:
        return action not in SESSION_ACTIONS | AGENT_ACTIONS | REPLAY_ACTIONS | HAND_BACK_ACTIONS

    def start(self, app: Any) -> None:
        """Begin driving (called on the app's loop when the driver takes over the screen)."""

    def stop(self) -> None:
        """Stop driving; what the session owns (its runs) goes on."""

    def replayed_state(self) -> "SessionState | None":
        """A replay's projection at its cursor (the app renders it instead of folding events itself)."""
        return None


class CopilotDriver(Driver):
    """The human drives: suggestions, decisions, runs, history."""

    name = "copilot"

    def __init__(self, session: "Session") -> None:
        super().__init__(session)
        self._stop_watch: Any = None

    def allows(self, action: str) -> bool:
        if action in HAND_BACK_ACTIONS:
            return self.session is not None and self.session.state.agent_drove
        return action not in AGENT_ACTIONS | REPLAY_ACTIONS

    def start(self, app: Any) -> None:
        assert self.session is not None
        # edits made in another editor are noticed (debounced by the app); watchdog runs its own thread
        self._stop_watch = self.session.workspace.watch(app.on_workspace_change)

    def stop(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch()
            self._stop_watch = None


class AgentDriver(Driver):
    """The autonomous agent drives the same session; the human watches, pauses it, or takes over."""

    name = "agent"

    def __init__(self, session: "Session", agent: Any) -> None:
        super().__init__(session)
        self.agent = agent

    def allows(self, action: str) -> bool:
        if action == "take_over":  # also once the agent has ended by itself: the human goes on
            return True
        if action in AGENT_ACTIONS:
            return bool(self.agent.running)
        return action not in SESSION_ACTIONS | REPLAY_ACTIONS | HAND_BACK_ACTIONS

    def start(self, app: Any) -> None:
        app.run_worker(partial(self._drive, app), name="agent", group="agent", exclusive=True, exit_on_error=False)

    async def _drive(self, app: Any) -> Any:
        summary = await self.agent.run()
        detail = f" ({summary.detail})" if getattr(summary, "detail", None) else ""
        app.notify(f"agent stopped: {summary.stop_reason}{detail}", timeout=10)
        app.refresh_bindings()
        return summary

    def stop(self) -> None:
        if self.agent.running:
            self.agent.stop("app closed")


class ReplayDriver(Driver):
    """A recorded session, played back: read-only, its own keys."""

    name = "replay"

    def __init__(self, player: "ReplayPlayer", clock: "ReplayClock | None" = None, autoplay: bool = True,
                 reference: list[Any] | None = None) -> None:
        super().__init__(None)
        self.player = player
        self.clock = clock
        self.autoplay = autoplay
        self.reference = reference or []  # the record's own curve, when the track is at hand

    def allows(self, action: str) -> bool:
        return action not in SESSION_ACTIONS | AGENT_ACTIONS | HAND_BACK_ACTIONS

    def start(self, app: Any) -> None:
        if self.autoplay:
            self.play(app)

    def play(self, app: Any) -> None:
        if self.player.playing:
            return
        app.run_worker(partial(self.player.play, clock=self.clock), name="player", group="player", exclusive=True,
                       exit_on_error=False)

    def stop(self) -> None:
        self.player.stop()

    def replayed_state(self) -> "SessionState":
        return self.player.state
