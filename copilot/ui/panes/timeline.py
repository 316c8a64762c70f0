"""The replay's timeline bar: where the replay is, with a mark at every suggestion, decision and commit."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from copilot.ui.view import StateUpdated, Timeline


class TimelineBar(Widget):
    DEFAULT_CSS = """
    TimelineBar { height: 2; padding: 0 1; background: $panel; }
    TimelineBar > .timeline--done { color: $primary; }
    TimelineBar > .timeline--todo { color: $text-muted; }
    TimelineBar > .timeline--mark { color: $warning; }
    TimelineBar > .timeline--head { color: $accent; text-style: bold; }
    """
    COMPONENT_CLASSES = {"timeline--done", "timeline--todo", "timeline--mark", "timeline--head"}
    PARTS = frozenset({"timeline"})

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.timeline = Timeline(0.0, 0.0, (), "")

    @property
    def caption(self) -> str:
        return self.timeline.caption

    def on_state_updated(self, message: StateUpdated) -> None:
        timeline = message.view.ui.timeline
        if timeline is not None and timeline != self.timeline:
            self.timeline = timeline
            self.refresh()

    def render(self) -> Text:
        t = self.timeline
        width = max(10, self.size.width - 2)
        styles = {name: self.get_component_rich_style(f"timeline--{name}") for name in ("done", "todo", "mark",
                                                                                          "head")}
        head = int(round((width - 1) * (t.position / t.duration))) if t.duration > 0 else 0
        marked = {min(max(int(round((width - 1) * (m / t.duration))) if t.duration > 0 else 0, 0), width - 1)
                  for m in t.marks}
        text = Text(no_wrap=True, overflow="crop")
        for i in range(width):
            if i == head:
                text.append("●", styles["head"])
            elif i in marked:
                text.append("◆", styles["mark"])
            else:
                text.append("━" if i < head else "─", styles["done"] if i < head else styles["todo"])
        text.append("\n")
        text.append(t.caption)
        return text
