"""Replay in the app: the same screen and panes as the live co-pilot, driven by a ReplayDriver, with the
timeline bar docked at the bottom. Read-only: nothing in the session folder is written, no lock is taken."""

from __future__ import annotations

from typing import Any

from copilot.core.session.replay import ReplayClock, ReplayPlayer
from copilot.ui.drivers import ReplayDriver


def replay_app(player: ReplayPlayer, *, theme: str | None = None, autoplay: bool = True,
               clock: ReplayClock | None = None, reference: list[Any] | None = None) -> Any:
    from copilot.ui.app import CopilotApp

    return CopilotApp(driver=ReplayDriver(player, clock=clock, autoplay=autoplay, reference=reference), theme=theme)


def run_replay_app(player: ReplayPlayer, theme: str | None = None, reference: list[Any] | None = None) -> int:
    app = replay_app(player, theme=theme, reference=reference)
    try:
        return int(app.run() or 0)
    finally:
        player.stop()


__all__ = ["replay_app", "run_replay_app"]
