"""Reviewing a suggestion: decisions staged per hunk (timed on the app's clock), moving between hunks."""

from __future__ import annotations

from typing import Any

from textual import on

from copilot.core.session.projection import SuggestionView
from copilot.core.session.schema import HunkDecision
from copilot.ui.screens.modals import EditHunkModal, TextPrompt
from copilot.ui.widgets.code_view import CodeView
from copilot.ui.widgets.hunk_card import HunkCard


class ReviewActions:
    def _current_hunk(self: Any) -> tuple[SuggestionView, int] | None:
        view = self.state.current_suggestion
        if view is None or view.status != "received" or not view.hunks:
            return None
        index = min(max(self.ui.selected_hunk, 0), len(view.hunks) - 1)
        return view, view.hunks[index].index

    def _stage(self: Any, view: SuggestionView, index: int, action: str, **extra: Any) -> None:
        key = (view.id, index)
        recorded = view.decision(index)
        if recorded is not None:
            self.notify(f"hunk {index + 1} is already decided ({recorded.action})", severity="warning")
            return
        now = self.clock()
        # Time on this hunk: from when it was shown, or from the previous decision on this suggestion if that
        # came later (reviewing hunk by hunk, the next one gets the human's attention only then).
        start = max(self.ui.shown_at.get(key, now), self.ui.last_decision_at.get(view.id, float("-inf")))
        self.ui.staged[key] = HunkDecision(index, action, decision_time_s=round(max(0.0, now - start), 3), **extra)
        self.ui.last_decision_at[view.id] = now
        self.mark_dirty("suggestion")
        self.flush()

    def action_accept(self: Any) -> None:
        if (cur := self._current_hunk()) is not None:
            self._stage(*cur, "accept")
            self.action_next_hunk()

    def action_reject(self: Any) -> None:
        if (cur := self._current_hunk()) is not None:
            self._stage(*cur, "reject")
            self.action_next_hunk()

    def action_feedback(self: Any) -> None:
        if (cur := self._current_hunk()) is None:
            return
        view, index = cur

        def done(text: str | None) -> None:
            if text:
                self._stage(view, index, "reject", feedback=text)
                self.action_next_hunk()

        self.push_screen(TextPrompt(f"Why reject hunk {index + 1}? (sent to the model)", allow_empty=False), done)

    def action_edit_hunk(self: Any) -> None:
        if (cur := self._current_hunk()) is None:
            return
        view, index = cur
        hunk = next(h for h in view.hunks if h.index == index)
        staged = self.ui.staged.get((view.id, index))
        start = staged.edited_replace if staged and staged.edited_replace is not None else hunk.replace

        def done(text: str | None) -> None:
            if text is None:
                return
            if text == hunk.replace:
                self._stage(view, index, "accept")
            else:
                self._stage(view, index, "edit", edited_replace=text)
            self.action_next_hunk()

        self.push_screen(EditHunkModal(f"Edit hunk {index + 1} · {hunk.path}", hunk.search, start), done)

    def _stage_all(self: Any, action: str) -> None:
        view = self.state.current_suggestion
        if view is None:
            return
        for hunk in view.undecided:
            if (view.id, hunk.index) not in self.ui.staged:
                self._stage(view, hunk.index, action)

    def action_accept_all(self: Any) -> None:
        self._stage_all("accept")

    def action_reject_all(self: Any) -> None:
        self._stage_all("reject")

    def staged_decisions(self: Any, view: SuggestionView) -> tuple[list[HunkDecision], int]:
        """Every hunk's decision as staged; an undecided hunk is a reject. (decisions, how many were undecided)"""
        decisions, skipped = [], 0
        for hunk in view.undecided:
            staged = self.ui.staged.get((view.id, hunk.index))
            if staged is None:
                skipped += 1
                staged = HunkDecision(hunk.index, "reject")
            decisions.append(staged)
        return decisions, skipped

    # -- moving between hunks --------------------------------------------------------------------
    def _focus_hunk(self: Any, position: int, arriving: bool = False) -> None:
        screen = self.main()
        if screen is None:
            return
        cards = list(screen.query("#hunks HunkCard").results(HunkCard))
        if not cards:
            return
        position = max(0, min(position, len(cards) - 1))
        self.ui.selected_hunk = position
        if arriving and not self._focus_is_free(screen):
            return  # a suggestion that lands must not pull focus out of the pane the human works in
        if screen.pane_visible("suggestion"):
            cards[position].focus()
        cards[position].scroll_visible()

    def _focus_is_free(self: Any, screen: Any) -> bool:
        from textual.widgets import Tabs

        focused = screen.focused
        if focused is None or isinstance(focused, (Tabs, HunkCard)):
            return True
        return any(node.id == "suggestion" for node in focused.ancestors)

    def action_next_hunk(self: Any) -> None:
        self._focus_hunk(self.ui.selected_hunk + 1)

    def action_prev_hunk(self: Any) -> None:
        self._focus_hunk(self.ui.selected_hunk - 1)

    @on(HunkCard.Selected)
    def _hunk_selected(self: Any, message: HunkCard.Selected) -> None:
        view = self.state.current_suggestion
        if view is None:
            return
        for position, hunk in enumerate(view.hunks):
            if hunk.index == message.index:
                self.ui.selected_hunk = position

    def action_goto_hunk(self: Any) -> None:
        """Select the script lines the current hunk touches (from its preview's place in the file)."""
        if (cur := self._current_hunk()) is None:
            return
        view, index = cur
        hunk = next(h for h in view.hunks if h.index == index)
        preview = self.ui.previews.get((view.id, index))
        if preview is None or preview.first_line is None:
            self.notify("the hunk's lines are not in the current script (it may not apply)", severity="warning")
            return
        first = preview.first_line - 1
        last = first + max(0, hunk.search.count("\n") - 1)
        self.ui.show_diff = False
        self.mark_dirty("script")
        self.flush()
        screen = self.main()
        if screen is None:
            return
        screen.show_pane("script")
        area = screen.query_one("#script-text", CodeView)
        area.call_after_refresh(area.mark_lines, first, last)  # once the pane is shown and sized
