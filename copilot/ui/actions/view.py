"""What only changes the view, allowed under every driver: the diff toggle, themes, panes, help, quit."""

from __future__ import annotations

from typing import Any

from copilot.ui.screens.help import HelpScreen
from copilot.ui.screens.modals import QuitModal


class ViewActions:
    def action_toggle_diff(self: Any) -> None:
        self.ui.show_diff = not self.ui.show_diff
        self.mark_dirty("script")
        self.flush()

    def action_cycle_theme(self: Any) -> None:
        names = [t.name for t in self._themes]
        if not names:
            return
        position = names.index(self.theme) + 1 if self.theme in names else 0
        self.theme = names[position % len(names)]
        self.notify(f"theme: {self.theme}", timeout=2)

    def action_pane(self: Any, name: str) -> None:
        screen = self.main()
        if screen is not None:
            screen.show_pane(name, self.ui.selected_hunk)

    def action_help(self: Any) -> None:
        self.push_screen(HelpScreen())

    def action_quit_session(self: Any) -> None:
        live = self.live_run_ids()
        if not live:
            self.call_later(self.close_and_exit, False)
            return

        def answer(choice: str | None) -> None:
            if choice in ("leave", "stop"):
                self.quit_choice = choice
                self.call_later(self.close_and_exit, choice == "stop")

        self.push_screen(QuitModal(live), answer)
