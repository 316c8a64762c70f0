"""The footer rebuilds only when the keys it shows change, and restyles in place when only enabled-ness does."""

from __future__ import annotations

from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Button
from textual.widgets._footer import FooterKey

from copilot.ui.widgets.quiet_footer import QuietFooter
from tests.support.ui import wait_until


class FooterApp(App[None]):
    BINDINGS = [Binding("s", "suggest", "suggest"), Binding("r", "run", "run"), Binding("x", "extra", "extra")]

    def __init__(self) -> None:
        super().__init__()
        self.can_run = True
        self.show_extra = False
        self.composes = 0

    def compose(self) -> ComposeResult:
        yield Button("one", id="one")
        yield Button("two", id="two")
        yield QuietFooter()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "run":
            return True if self.can_run else None  # None: shown, but disabled
        if action == "extra":
            return self.show_extra  # False: not shown at all
        return True

    def keys(self) -> dict[str, bool]:
        return {key.action: not key.has_class("-disabled") for key in self.query(FooterKey)
                if key.action != "command_palette"}


def _count_composes(app: FooterApp) -> None:
    footer = app.query_one(QuietFooter)
    compose = footer.compose

    def counted() -> Any:
        app.composes += 1
        return compose()

    footer.compose = counted  # type: ignore[method-assign]


async def test_footer_rebuilds_only_for_a_change_it_shows() -> None:
    app = FooterApp()
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: app.keys() == {"suggest": True, "run": True}, what="the first footer")
        _count_composes(app)
        first = list(app.query(FooterKey))

        app.set_focus(app.query_one("#two"))  # a focus change: Textual signals the bindings, nothing shown changed
        app.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        assert app.composes == 0 and list(app.query(FooterKey)) == first

        app.can_run = False  # only enabled-ness changes: the same key widgets, restyled
        app.refresh_bindings()
        await wait_until(pilot, lambda: app.keys() == {"suggest": True, "run": False}, what="run disabled")
        assert app.composes == 0 and list(app.query(FooterKey)) == first
        assert [key._disabled for key in first if key.action != "command_palette"] == [False, True]  # a click rings the bell

        app.show_extra = True  # a key appears: the footer is built again
        app.refresh_bindings()
        await wait_until(pilot, lambda: app.keys() == {"suggest": True, "run": False, "extra": True},
                         what="the extra key")
        assert app.composes == 1
