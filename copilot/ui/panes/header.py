"""The header line: what is being worked on, against what, by whom, where HEAD is, what is live."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from copilot.core.session.projection import SessionState
from copilot.ui.view import StateUpdated, View
from copilot.ui.widgets.shown import show

COMPACT_BELOW = 110


def _label(state: SessionState, compact: bool) -> str:
    label = state.provider_label or state.provider or "no provider"
    if compact:
        label = "offline oracle" if state.offline and state.provider == "oracle" else (state.model or label)
    if state.offline and "offline" not in label:
        label = f"offline {label}"
    return label


def status_text(state: SessionState, live_runs: int = 0, width: int = 200, driver: str = "copilot") -> Text:
    """The header line. Below 110 columns the badge, the record's time and the provider's details go, so mode,
    branch@commit, live runs and the best time still fit in 80."""
    compact = width < COMPACT_BELOW
    text = Text(no_wrap=True, overflow="ellipsis")
    if not compact:
        text.append(" speedcopilot ", style="bold reverse")
    text.append(f" {state.track or '?'} #{state.record}")
    if state.record_time_s and not compact:
        text.append(f" · record {state.record_time_s:g}s")
    if state.target_val_loss:
        text.append(f" · {'≤' if compact else 'target '}{state.target_val_loss:g}")
    text.append(" · ")
    text.append(_label(state, compact), style="bold" if state.offline else "")
    mode = "replay" if driver == "replay" else ("agent" if state.mode == "auto" and driver == "agent" else state.mode)
    text.append(f" · {mode}", style="bold" if mode != "copilot" else "")
    if state.head:
        text.append(f" · {state.branch or '?'}@{state.head[:7]}")
    if live_runs:
        text.append(f" · {live_runs} live" if compact else f" · {live_runs} run{'s' if live_runs > 1 else ''} live",
                    style="bold")
    best = state.best_time_to_target_ms()
    if best is not None:
        text.append(f" · best {best / 1000:.1f}s")
    if state.ended:
        text.append(" · ended", style="italic")
    return text


class HeaderLine(Static):
    PARTS = frozenset({"header"})

    def on_state_updated(self, message: StateUpdated) -> None:
        if self.PARTS & message.dirty:
            self.render_view(message.view)

    def render_view(self, view: View) -> None:
        if view.ui.opening:
            show(self, Text(" speedcopilot · opening the session…", style="bold"), fixed_height=True)
            return
        show(self, status_text(view.state, view.live_runs, self.size.width or view.width, view.driver),
             fixed_height=True)
