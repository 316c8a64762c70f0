"""The agent's search tree as a projection of the session log (node_created / node_scored events).

Like SessionState, it is a pure fold over events: the live agent, a resumed agent, the Textual app and replay
all rebuild the same tree from the same log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from copilot.agent.policies import Plan, best_node
from copilot.core.session import schema as s
from copilot.core.session.events import Event

ROOT_ID = 0
_FOLDED = frozenset({"node_created", "node_scored", "note", "budget_exhausted", "session_resumed"})


@dataclass
class Node:
    id: int
    parent: int | None
    commit: str | None  # None: the suggestion never became a commit
    branch: str
    kind: str  # root | draft | improve | debug
    debug_depth: int
    step: int = 0
    step_size: int = 1
    base: str | None = None  # the commit the node branched from (its code when commit is None)
    suggestion_id: str | None = None
    description: str = ""
    created_t: float | None = None
    # filled by node_scored
    scored: bool = False
    buggy: bool = False
    outcome: str | None = None
    reason: str | None = None
    time_to_target_ms: float | None = None
    final_val_loss: float | None = None
    reached_target: bool = False
    run_id: str | None = None
    error: str | None = None
    wall_time_s: float | None = None

    @property
    def label(self) -> str:
        return "root" if self.id == ROOT_ID else f"node {self.id}"


@dataclass
class AgentTree:
    nodes: dict[int, Node] = field(default_factory=dict)
    config: dict[str, Any] | None = None  # the agent's policy, budget and seed (from the agent_config note)
    exhausted: str | None = None  # the last budget_exhausted reason

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> "AgentTree":
        tree = cls()
        for event in events:
            tree.apply(event)
        return tree

    def apply(self, event: Event) -> None:
        if event.type not in _FOLDED:
            return
        body = event.body
        if isinstance(body, s.NodeCreated):
            self._created(body, event.t)
        elif isinstance(body, s.NodeScored):
            self._scored(body)
        elif isinstance(body, s.Note) and body.kind == "agent_config":
            self.config = dict(body.agent or {})
        elif isinstance(body, s.BudgetExhausted):
            self.exhausted = body.reason
        elif isinstance(body, s.SessionResumed):
            self.exhausted = None

    def _created(self, b: s.NodeCreated, t: float) -> None:
        self.nodes[b.node_id] = Node(
            id=b.node_id,
            parent=b.parent,
            commit=b.commit,
            branch=b.branch,
            kind=b.kind,
            debug_depth=b.debug_depth,
            step=b.step,
            step_size=b.step_size or 1,
            base=b.base,
            suggestion_id=b.suggestion_id,
            description=b.description or "",
            created_t=t,
        )

    def _scored(self, b: s.NodeScored) -> None:
        node = self.nodes.get(b.node_id)
        if node is None:
            return
        node.scored = True
        node.buggy = b.buggy
        node.outcome = b.outcome
        node.reason = b.reason
        node.time_to_target_ms = b.time_to_target_ms
        node.final_val_loss = b.final_val_loss
        node.reached_target = b.reached_target
        node.run_id = b.run_id
        node.error = b.error
        node.wall_time_s = b.wall_time_s

    # -- queries ---------------------------------------------------------------------------------
    @property
    def root(self) -> Node | None:
        return self.nodes.get(ROOT_ID)

    @property
    def search_nodes(self) -> list[Node]:
        """Every node but the baseline root, in creation order."""
        return [n for i, n in sorted(self.nodes.items()) if i != ROOT_ID]

    def next_id(self) -> int:
        return max(self.nodes, default=-1) + 1

    def unscored(self) -> list[Node]:
        return [n for _, n in sorted(self.nodes.items()) if not n.scored]

    def children_count(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for node in self.nodes.values():
            if node.parent is not None:
                counts[node.parent] = counts.get(node.parent, 0) + 1
        return counts

    def children(self, node_id: int) -> list[Node]:
        return [n for _, n in sorted(self.nodes.items()) if n.parent == node_id]

    def last_step(self) -> Plan | None:
        nodes = self.search_nodes
        if not nodes:
            return None
        last = max(nodes, key=lambda n: (n.step, n.id))
        return Plan(step=last.step, parent=last.parent or ROOT_ID, kind=last.kind, size=last.step_size)

    def step_count(self, step: int) -> int:
        return sum(1 for n in self.search_nodes if n.step == step)

    def best(self) -> Node | None:
        return best_node(self)

    def buggy_count(self) -> int:
        return sum(1 for n in self.search_nodes if n.scored and n.buggy)

    def depth(self, node_id: int) -> int:
        depth, node = 0, self.nodes.get(node_id)
        while node is not None and node.parent is not None:
            depth += 1
            node = self.nodes.get(node.parent)
        return depth
