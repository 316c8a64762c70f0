"""A replay's keys: play/pause, the next or previous decision, seeking, a typed time, speed."""

from __future__ import annotations

from typing import Any

from copilot.core.session.replay import fmt_clock, parse_time
from copilot.ui.drivers import ReplayDriver
from copilot.ui.screens.modals import TextPrompt

SEEK_STEP_S = 10.0  # ←/→ move this many seconds of the recorded session, whatever the speed


class ReplayActions:
    def _player(self: Any) -> Any:
        return self.driver.player if isinstance(self.driver, ReplayDriver) else None

    def action_toggle_pause(self: Any) -> None:
        player = self._player()
        if player is None:
            return
        if not player.playing:
            if player.at_end and not player.follow:
                player.rewind()
            player.resume()
            self.driver.play(self)
        else:
            player.toggle_pause()
        self.flush()

    def action_next_decision(self: Any) -> None:
        player = self._player()
        if player is not None and player.next_decision() is None:
            self.notify("no later decision", timeout=2)
        self.flush()

    def action_previous_decision(self: Any) -> None:
        player = self._player()
        if player is not None and player.previous_decision() is None:
            self.notify("no earlier decision", timeout=2)
        self.flush()

    def action_seek(self: Any, direction: int) -> None:
        player = self._player()
        if player is not None:
            player.seek_relative(direction * SEEK_STEP_S)
        self.flush()

    def action_faster(self: Any) -> None:
        if (player := self._player()) is not None:
            player.faster()
        self.flush()

    def action_slower(self: Any) -> None:
        if (player := self._player()) is not None:
            player.slower()
        self.flush()

    def action_goto(self: Any) -> None:
        player = self._player()
        if player is None:
            return

        def done(text: str | None) -> None:
            if not text:
                return
            try:
                player.seek(parse_time(text))
            except ValueError as exc:
                self.notify(str(exc), severity="warning")
            self.flush()

        self.push_screen(TextPrompt(f"Jump to time (0 – {fmt_clock(player.duration)}; e.g. 95, 1:35, 2m)"), done)
