"""Modal dialogs. Each dismisses with its answer (None = cancelled); none of them touches the session."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from copilot.ui.widgets.diff_view import DiffView


class _Dialog(ModalScreen):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextPrompt(_Dialog):
    """One line of text (instruction for the model, feedback on a hunk, a note). Enter submits."""

    def __init__(self, title: str, placeholder: str = "", allow_empty: bool = True, value: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.placeholder = placeholder
        self.allow_empty = allow_empty
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(value=self.value, placeholder=self.placeholder, id="prompt-input")
            yield Static("enter: ok · escape: cancel", classes="dialog-hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text and not self.allow_empty:
            self.notify("type something first, or press escape", severity="warning")
            return
        self.dismiss(text)


class EditHunkModal(_Dialog):
    """An editor pre-filled with the proposed replacement. ctrl+s saves, escape cancels."""

    BINDINGS = [Binding("ctrl+s", "save", "Save edit", priority=True), Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, search: str, replace: str) -> None:
        super().__init__()
        self.title_text = title
        self.search = search
        self.replace = replace

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static("replaces:", classes="dialog-hint")
            with VerticalScroll(classes="dialog-search"):
                yield Static(self.search, markup=False)
            yield Static("with (edit below):", classes="dialog-hint")
            yield TextArea.code_editor(self.replace, language=None, id="edit-area", soft_wrap=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#edit-area", TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one("#edit-area", TextArea).text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)


class ConfirmModal(_Dialog):
    """A question with an optional diff to look at; y/enter = True, n/escape = None."""

    BINDINGS = [
        Binding("y", "yes", "Yes"),
        Binding("n", "cancel", "No"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, question: str, diff_lines: list[str] | None = None, yes: str = "Yes", no: str = "No") -> None:
        super().__init__()
        self.question = question
        self.diff_lines = diff_lines
        self.yes, self.no = yes, no

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide" if self.diff_lines else "dialog"):
            yield Label(self.question, classes="dialog-title")
            if self.diff_lines:
                with VerticalScroll(classes="dialog-diff"):
                    yield DiffView(self.diff_lines)
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="primary")
                yield Button(f"{self.no} (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def action_yes(self) -> None:
        self.dismiss(True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(True if event.button.id == "yes" else None)


class QuitModal(_Dialog):
    """Quitting while runs are live: leave them running (resume re-attaches) or stop them."""

    BINDINGS = [
        Binding("l", "leave", "Leave running"),
        Binding("s", "stop", "Stop runs"),
        Binding("escape", "cancel", "Stay"),
    ]

    def __init__(self, live: list[str]) -> None:
        super().__init__()
        self.live = live

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{len(self.live)} run(s) still training: {', '.join(self.live)}", classes="dialog-title")
            yield Static(
                "Leave them running (they survive; `speedcopilot start --resume` re-attaches) or stop them?",
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Leave running (l)", id="leave", variant="primary")
                yield Button("Stop runs (s)", id="stop", variant="error")
                yield Button("Stay (esc)", id="stay")

    def on_mount(self) -> None:
        self.query_one("#leave", Button).focus()

    def action_leave(self) -> None:
        self.dismiss("leave")

    def action_stop(self) -> None:
        self.dismiss("stop")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"leave": "leave", "stop": "stop"}.get(event.button.id or ""))


class MessageModal(_Dialog):
    """An error or notice that needs reading (multi-line: last error lines of a crashed run)."""

    BINDINGS = [Binding("escape", "cancel", "Close"), Binding("enter", "cancel", "Close")]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog dialog-wide dialog-error"):
            yield Label(self.title_text, classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(self.body, markup=False)
            yield Static("enter / escape: close", classes="dialog-hint")


class GuardModal(_Dialog):
    """A run the integrity guard blocks: what it found (file:line, the change, the rule, why it matters), and the
    human's choice — run anyway ("run") or go back (None / "back")."""

    BINDINGS = [
        Binding("r", "run_anyway", "Run anyway"),
        Binding("b", "back", "Go back"),
        Binding("escape", "back", "Go back"),
    ]

    def __init__(self, commit: str, findings: list[dict]) -> None:
        super().__init__()
        self.commit = commit
        self.findings = findings

    def compose(self) -> ComposeResult:
        blocking = [f for f in self.findings if f.get("severity") == "block"]
        notes = [f for f in self.findings if f.get("severity") != "block"]
        with Vertical(classes="dialog dialog-wide dialog-error", id="guard-dialog"):
            yield Label(f"The integrity guard blocks this run (commit {self.commit[:7]})", classes="dialog-title")
            with VerticalScroll(classes="dialog-body"):
                yield Static(guard_text(blocking, notes), markup=False, id="guard-findings")
            yield Static("A run that changes these cannot be compared with the record: its time would not count.",
                         classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Go back (b / esc)", id="back", variant="primary")
                yield Button("Run anyway (r)", id="run", variant="error")

    def on_mount(self) -> None:
        self.query_one("#back", Button).focus()

    def action_run_anyway(self) -> None:
        self.dismiss("run")

    def action_back(self) -> None:
        self.dismiss("back")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss("run" if event.button.id == "run" else "back")


def guard_text(blocking: list[dict], notes: list[dict]) -> str:
    lines = []
    for f in blocking:
        where = f"{f.get('file', 'train_gpt.py')}:{f.get('line', '?')}"
        lines.append(f"✘ {where} · {f.get('rule') or f.get('kind')}")
        if f.get("text"):
            lines.append(f"    {f['text'].strip()[:160]}")
        lines.append(f"    {f.get('reason', '')}")
        if f.get("why"):
            lines.append(f"    why it matters: {f['why']}")
    if notes:
        lines.append("")
        lines.append("notes (not blocking):")
        lines += [f"  · line {f.get('line', '?')}: {f.get('reason') or f.get('rule')}" for f in notes[:8]]
    return "\n".join(lines)
