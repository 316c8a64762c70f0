"""Attempt tree: commits as a tree by parent, each with its provenance and the results of its runs."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from copilot.core.session.projection import CommitView, RunView, SessionState
from copilot.ui.widgets.run_table import short_run_id

PROVENANCE_MARK = {"ai": "ai", "human": "you", "ai+human-edit": "ai+you", "revert": "undo", "start": "record"}


def run_summary(runs: list[RunView]) -> str:
    if not runs:
        return ""
    parts = []
    for run in runs:
        result = run.result or {}
        name = short_run_id(run.run_id)
        if run.is_live:
            best = run.best_val
            parts.append(f"{name} running" + (f" {best:.3f}" if best is not None else ""))
        elif result.get("reached_target") and result.get("time_to_target_ms") is not None:
            parts.append(f"{name} ✓ {result['time_to_target_ms'] / 1000:.1f}s")
        else:
            loss = result.get("final_val_loss")
            parts.append(f"{name} {run.status}" + (f" {loss:.3f}" if isinstance(loss, (int, float)) else ""))
    return " · ".join(parts)


def commit_label(commit: CommitView, runs: list[RunView], head: str | None) -> Text:
    text = Text()
    text.append(commit.sha[:7], style="bold" if commit.sha == head else "")
    text.append(f" [{PROVENANCE_MARK.get(commit.provenance, commit.provenance)}] ")
    text.append((commit.message.splitlines() or [""])[0][:60])
    summary = run_summary(runs)
    if summary:
        text.append(f"  {summary}", style="italic")
    if commit.sha == head:
        text.append(f"  ◀ HEAD ({commit.branch})", style="bold")
    return text


class HistoryTree(Tree[str]):
    """Node data is the commit sha; `sync` rebuilds the tree when the commit/run set changed."""

    DEFAULT_CSS = """
    HistoryTree { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("attempts", id=id, classes=classes)
        self.show_root = False
        self.guide_depth = 2
        self._signature: tuple | None = None

    def sync(self, state: SessionState) -> None:
        runs_by_commit: dict[str, list[RunView]] = {}
        for run in state.runs.values():
            runs_by_commit.setdefault(run.commit, []).append(run)
        signature = (
            state.head,
            tuple(c.sha for c in state.commits),
            tuple((r.run_id, r.status, r.best_val) for r in state.runs.values()),
        )
        if signature == self._signature:
            return
        self._signature = signature
        self.clear()
        seen: dict[str, TreeNode[str]] = {}
        for commit in state.commits:
            if commit.sha in seen:
                continue
            parent = seen.get(commit.parent or "", self.root)
            node = parent.add(commit_label(commit, runs_by_commit.get(commit.sha, []), state.head),
                              data=commit.sha, expand=True)
            seen[commit.sha] = node
            if commit.sha == state.head:
                self.call_after_refresh(self.move_cursor, node)
        self.root.expand_all()

    @property
    def selected_sha(self) -> str | None:
        node = self.cursor_node
        return node.data if node is not None else None
