"""Attempt tree: commits as a tree by parent, each with its provenance; its runs are child rows, one each, so
no result is cut off."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from copilot.core.session.projection import CommitView, RunView, SessionState
from copilot.ui.widgets.run_table import short_run_id
from copilot.ui.widgets.steady_scrollbars import SteadyScrollbars

PROVENANCE_MARK = {"ai": "ai", "human": "you", "ai+human-edit": "ai+you", "revert": "undo", "start": "record"}


def run_label(run: RunView) -> Text:
    result = run.result or {}
    text = Text(f"run {short_run_id(run.run_id)}: ", style="italic")
    if run.is_live and run.queued:
        text.append("queued", style="dim")
        return text
    if run.is_live:
        best = run.best_val
        text.append("running" + (f", best val {best:.4f}" if best is not None else ""))
        if run.reached_target and run.time_to_target_ms is not None:
            text.append(f", target at {run.time_to_target_ms / 1000:.1f}s ✓", style="bold")
        return text
    if run.reached_target and run.time_to_target_ms is not None:
        text.append(f"✓ target in {run.time_to_target_ms / 1000:.1f}s", style="bold")
    else:
        text.append(run.status)
    loss = result.get("final_val_loss")
    if isinstance(loss, (int, float)):
        text.append(f", final val {loss:.4f}")
    return text


def run_summary(runs: list[RunView]) -> str:
    """All of a commit's runs on one line (for places with room for one line)."""
    return " · ".join(run_label(run).plain for run in runs)


def commit_label(commit: CommitView, head: str | None, branch: str | None, node: str | None = None) -> Text:
    """`node`: the agent's node on this commit and where it is, e.g. "node 3 · queued"."""
    text = Text()
    text.append(commit.sha[:7], style="bold" if commit.sha == head else "")
    text.append(f" [{PROVENANCE_MARK.get(commit.provenance, commit.provenance)}] ")
    if node:
        text.append(f"{node}  ", style="bold" if node.endswith("running") else "italic")
    text.append((commit.message.splitlines() or [""])[0])
    if commit.sha == head:
        text.append(f"  ◀ HEAD ({branch or commit.branch})", style="bold")
    return text


def node_text(state: SessionState, sha: str) -> str | None:
    """The agent's node on a commit and its phase (preparing | queued | running | done), or None."""
    node = state.node_of_commit(sha)
    if node is None:
        return None
    phase = state.node_phase(node)
    if phase == "done" and node.outcome:
        phase = f"done, {node.outcome}" + (" (buggy)" if node.buggy and node.outcome != "crashed" else "")
    return f"{node.label} · {phase}"


class HistoryTree(SteadyScrollbars, Tree[str]):
    """Node data is the commit sha (runs: None); `sync` rebuilds the tree when commits, runs or HEAD changed."""

    DEFAULT_CSS = """
    HistoryTree { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("attempts", id=id, classes=classes)
        self.show_root = False
        self.guide_depth = 2
        self._signature: tuple | None = None
        self._run_nodes: dict[str, TreeNode[str]] = {}
        self._commit_nodes: dict[str, tuple[CommitView, TreeNode[str]]] = {}

    def sync(self, state: SessionState) -> None:
        runs_by_commit: dict[str, list[RunView]] = {}
        for run in state.runs.values():
            runs_by_commit.setdefault(run.commit, []).append(run)
        signature = (state.head, state.branch, tuple(c.sha for c in state.commits), tuple(state.runs))
        if signature == self._signature:
            # same commits and runs: only run rows whose text changed are relabelled (a rebuild re-lays-out)
            for run_id, node in self._run_nodes.items():
                run = state.runs.get(run_id)
                if run is not None:
                    label = run_label(run)
                    if node.label.plain != label.plain:
                        node.set_label(label)
            for sha, (commit, node) in self._commit_nodes.items():  # an agent node's phase moved on
                label = commit_label(commit, state.head, state.branch, node_text(state, sha))
                if node.label.plain != label.plain:
                    node.set_label(label)
            return
        self._signature = signature
        self.clear()
        self._run_nodes = {}
        self._commit_nodes = {}
        seen: dict[str, TreeNode[str]] = {}
        for commit in state.commits:
            if commit.sha in seen:
                continue
            parent = seen.get(commit.parent or "", self.root)
            node = parent.add(commit_label(commit, state.head, state.branch, node_text(state, commit.sha)),
                              data=commit.sha, expand=True)
            self._commit_nodes[commit.sha] = (commit, node)
            for run in runs_by_commit.get(commit.sha, []):
                self._run_nodes[run.run_id] = node.add_leaf(run_label(run), data=None)
            seen[commit.sha] = node
            if commit.sha == state.head:
                self.call_after_refresh(self.move_cursor, node)
        self.root.expand_all()

    @property
    def selected_sha(self) -> str | None:
        node = self.cursor_node
        while node is not None and node.data is None and node.parent is not None:
            node = node.parent  # a run row: its commit
        return node.data if node is not None else None
