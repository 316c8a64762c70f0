"""The suggestion pane: the model's rationale (streaming in), its hunks as cards, the decisions staged on them,
and what the guard noted about the result."""

from __future__ import annotations

import re
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Static

from copilot.core.session.projection import SuggestionView
from copilot.ui.panes.base import Pane
from copilot.ui.widgets.shown import show
from copilot.ui.view import View
from copilot.ui.widgets.hunk_card import HunkCard


def suggestion_title(view: SuggestionView | None, streaming: bool) -> str:
    if view is None:
        return "no suggestion yet · s: ask"
    parts = [f"suggestion {view.id}", view.status]
    if view.prompt_tokens or view.completion_tokens:
        parts.append(f"{view.prompt_tokens}+{view.completion_tokens} tok")
    if view.cost_usd is not None:
        parts.append(f"${view.cost_usd:.4f}")
    if view.latency_s is not None:
        parts.append(f"{view.latency_s:.1f}s")
    if view.truncated:
        parts.append("cut off by the token limit")
    if streaming:
        parts.append("streaming…")
    return " · ".join(parts)


_KEEP_BREAK = re.compile(r"^\s*([-*•>+]\s|\d+[.)]\s|#{1,6}\s|\|)|^\s{4,}\S")


def reflow(text: str) -> str:
    """Paragraphs as flowing text: a line break inside a paragraph becomes a space (models wrap at ~80 columns),
    except before list items, headings, quotes, tables and indented code, and never inside ``` fences."""
    out: list[str] = []
    in_fence = False
    new_paragraph = True
    for line in text.strip().split("\n"):
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
            out.append(line.rstrip())
            new_paragraph = not in_fence
            continue
        if in_fence:
            out.append(line.rstrip())
            continue
        if not stripped:
            if out and out[-1] != "":
                out.append("")
            new_paragraph = True
            continue
        if new_paragraph or _KEEP_BREAK.match(line):
            out.append(line.rstrip())
        else:
            out[-1] = f"{out[-1].rstrip()} {stripped}"
        new_paragraph = False
    return "\n".join(out).strip()


def _guard_lines(guard: dict[str, Any] | None) -> list[str]:
    if not guard or not guard.get("findings"):
        return []
    head = "guard: blocks a run until you say so" if guard.get("blocking") else "guard notes"
    lines = [head]
    for f in guard["findings"][:6]:
        mark = "✘" if f.get("severity") == "block" else "·"
        lines.append(f"  {mark} line {f.get('line', '?')}: {f.get('reason') or f.get('rule') or f.get('kind')}")
    if len(guard["findings"]) > 6:
        lines.append(f"  … and {len(guard['findings']) - 6} more")
    return lines


def suggestion_body(view: SuggestionView | None, stream_text: str) -> str:
    if view is None:
        return ""
    lines: list[str] = []
    if view.instruction:
        lines.append(f"you asked: {view.instruction}")
    if view.status == "requested":
        lines.append(stream_text or "waiting for the model…")
    elif view.status == "failed":
        lines.append(f"failed: {view.error or 'unknown error'}")
    else:
        lines.append(reflow(view.rationale) if view.rationale else "(no rationale given)")
    if view.truncated:
        dropped = f" ({view.dropped_blocks} block cut off)" if view.dropped_blocks else ""
        lines.append(f"⚠ cut off by the token limit{dropped}: the complete blocks below are reviewable")
    lines += _guard_lines(view.guard)
    if view.commit:
        lines.append(f"→ committed as {view.commit[:7]}")
    return "\n".join(lines)


def displayed_suggestion(view: View) -> SuggestionView | None:
    state = view.state
    if not state.suggestions:
        return None
    return state.current_suggestion or next(reversed(state.suggestions.values()))


class SuggestionPane(Pane):
    PARTS = frozenset({"suggestion"})

    class CardsShown(Message):
        """New hunk cards are mounted (the app starts their review clocks and may focus the first)."""

        def __init__(self, suggestion_id: str, indices: list[int]) -> None:
            super().__init__()
            self.suggestion_id = suggestion_id
            self.indices = indices

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: tuple[str, int] | None = None  # (suggestion id, number of hunks) the cards are of

    def compose(self) -> ComposeResult:
        yield Static("", id="suggestion-title", classes="pane-title")
        with VerticalScroll(id="rationale-scroll"):
            yield Static("", id="suggestion-body", markup=False)
        with VerticalScroll(id="suggestion-scroll"):
            yield Vertical(id="hunks")
        yield Static("", id="suggestion-keys", classes="pane-hint")

    def render_view(self, view: View) -> None:
        ui = view.ui
        current = displayed_suggestion(view)
        stream = ui.stream.get(current.id, "") if current else ""
        if current is not None and current.status == "requested" and not stream:
            stream = ui.stream.get("", "")
        streaming = ui.requesting and current is not None and current.status == "requested"
        show(self.query_one("#suggestion-title", Static), suggestion_title(current, streaming), fixed_height=True)
        show(self.query_one("#suggestion-body", Static), suggestion_body(current, stream))
        hint = self.query_one("#suggestion-keys", Static)
        box = self.query_one("#hunks")
        if current is None or not current.hunks:
            box.remove_children()
            self._shown = None
            show(hint, _idle_hint(view))
            return
        key = (current.id, len(current.hunks))
        if key != self._shown:
            box.remove_children()
            box.mount_all([HunkCard(h, len(current.hunks), current.decision(h.index),
                                    ui.staged.get((current.id, h.index)), ui.previews.get((current.id, h.index)))
                           for h in current.hunks])
            self._shown = key
            self.post_message(self.CardsShown(current.id, [h.index for h in current.hunks]))
        else:
            for card in box.query(HunkCard):
                h = card.hunk
                card.update_card(current.decision(h.index), ui.staged.get((current.id, h.index)),
                                 ui.previews.get((current.id, h.index)))
        if current.status == "received" and view.driver == "copilot":
            staged = sum(1 for h in current.hunks if (current.id, h.index) in ui.staged)
            show(hint, f"{staged}/{len(current.hunks)} decided · j/k move · A/X all · c or enter: apply")
        else:
            show(hint, _idle_hint(view))

    def cards(self) -> list[HunkCard]:
        return list(self.query("#hunks HunkCard").results(HunkCard))


def _idle_hint(view: View) -> str:
    if view.driver == "agent":
        return "the agent has the wheel · P pause · T take over"
    if view.driver == "replay":
        return "replay · space play/pause · n/N decisions · ←/→ seek"
    if view.driver == "viewer":
        return "read-only view"
    return "waiting for the model…" if view.ui.requesting else "s: ask for a suggestion"
