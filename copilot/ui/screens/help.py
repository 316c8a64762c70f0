"""Help screen: the key map, grouped, generated from the same table as the bindings."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from copilot.ui.keys import EXTRA_KEYS, KEYMAP, display_key


def help_table() -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column("key", no_wrap=True, style="bold")
    table.add_column("what")
    groups: dict[str, list[tuple[str, str]]] = {}
    for item in KEYMAP:
        groups.setdefault(item.group, []).append((display_key(item.keys), item.help))
    for group, key, text in EXTRA_KEYS:
        groups.setdefault(group, []).append((key, text))
    for number, (group, rows) in enumerate(groups.items()):
        if number:
            table.add_row("", "")
        table.add_row(group, "", style="underline")
        for key, text in rows:
            table.add_row(key, text)
    return table


class HelpScreen(ModalScreen):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog dialog-wide", id="help"):
            yield Static("speedcopilot — keys", classes="dialog-title")
            yield Static(help_table())
            yield Static("escape / ? / q: close", classes="dialog-hint")

    async def action_dismiss(self, result: object = None) -> None:
        self.dismiss(None)
