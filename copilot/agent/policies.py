"""Search scaffolds of the LLM speedrunning benchmark as data, and node selection over an AgentTree.

Policy(N0, N, p_debug, D_max) follows the benchmark's generalised AIDE search (FACTS.md §2.4): first N0 drafts
from the starting record; then each step either debugs a buggy leaf (probability p_debug, while its debug depth
is below D_max) or expands the best node, with N children per step. Flat (best-of-M) only drafts.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from copilot.core.errors import ConfigError

if TYPE_CHECKING:
    from copilot.agent.tree import AgentTree, Node

DEFAULT_NODES = 20


@dataclass(frozen=True)
class Policy:
    name: str
    initial_drafts: int  # N0: children of the root made before any iteration
    branching: int  # N: children per later step (0: no iteration, i.e. flat best-of-N0)
    debug_prob: float  # p_debug
    max_debug_depth: int  # D_max: a buggy node at this debug depth is not debugged further

    def __post_init__(self) -> None:
        if self.initial_drafts < 1:
            raise ConfigError(f"policy {self.name}: needs at least one initial draft")
        if self.branching < 0 or not 0.0 <= self.debug_prob <= 1.0 or self.max_debug_depth < 0:
            raise ConfigError(f"policy {self.name}: branching >= 0, 0 <= debug_prob <= 1, max_debug_depth >= 0")

    @property
    def iterates(self) -> bool:
        return self.branching > 0

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "initial_drafts": self.initial_drafts, "branching": self.branching,
                "debug_prob": self.debug_prob, "max_debug_depth": self.max_debug_depth}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "Policy":
        return cls(name=str(data["name"]), initial_drafts=int(data["initial_drafts"]),  # type: ignore[arg-type]
                   branching=int(data["branching"]), debug_prob=float(data["debug_prob"]),  # type: ignore[arg-type]
                   max_debug_depth=int(data["max_debug_depth"]))  # type: ignore[arg-type]


# The benchmark's scaffolds (Paper Table 2) plus greedy hill climbing. Flat's N0 is the node budget.
POLICIES: dict[str, Policy] = {
    "flat": Policy("flat", DEFAULT_NODES, 0, 0.0, 0),
    "tree": Policy("tree", 1, 3, 0.0, 0),
    "forest": Policy("forest", 3, 3, 0.0, 0),
    "aide": Policy("aide", 3, 1, 0.5, 5),
    "multi-aide": Policy("multi-aide", 3, 3, 0.5, 5),
    "greedy": Policy("greedy", 1, 1, 0.0, 0),
}


def get_policy(name: str, nodes: int | None = None) -> Policy:
    """The named scaffold; flat drafts `nodes` times (best-of-N)."""
    policy = POLICIES.get(name)
    if policy is None:
        raise ConfigError(f"unknown policy {name!r}; choose one of: {', '.join(POLICIES)}")
    if name == "flat" and nodes is not None:
        policy = replace(policy, initial_drafts=max(1, nodes))
    return policy


@dataclass(frozen=True)
class Plan:
    """One step of the search: `size` children of `parent`, all of one kind."""

    step: int
    parent: int
    kind: str  # draft | improve | debug
    size: int


def score_key(node: "Node") -> tuple[int, float, float, int]:
    """Sort key of a scored node: reaching the target first (fastest), then lowest final val loss."""
    ttt = node.time_to_target_ms
    loss = node.final_val_loss
    finite = loss is not None and math.isfinite(loss)
    if node.reached_target and ttt is not None:
        return (0, float(ttt), float(loss) if finite else math.inf, node.id)
    return (1, math.inf, float(loss) if finite else math.inf, node.id)


def best_node(tree: "AgentTree") -> "Node | None":
    """The best good (non-buggy, scored) node, root included."""
    good = [n for n in tree.nodes.values() if n.scored and not n.buggy]
    return min(good, key=score_key) if good else None


def debuggable_leaves(tree: "AgentTree", policy: Policy) -> list["Node"]:
    children = tree.children_count()
    return [n for n in tree.nodes.values()
            if n.scored and n.buggy and n.id != 0 and children.get(n.id, 0) == 0
            and n.debug_depth < policy.max_debug_depth]


def step_rng(seed: int, step: int) -> random.Random:
    """One RNG per step, so a resumed search takes the same decisions without replaying RNG state."""
    return random.Random(f"speedcopilot-agent/{seed}/{step}")


def next_plan(tree: "AgentTree", policy: Policy, seed: int) -> Plan | None:
    """What to do next: finish an interrupted step, draft, debug or expand. None: the policy is done."""
    last = tree.last_step()
    if last is not None and tree.step_count(last.step) < last.size:
        return last
    drafts = sum(1 for n in tree.nodes.values() if n.kind == "draft")
    if drafts < policy.initial_drafts:
        return Plan(step=0, parent=0, kind="draft", size=policy.initial_drafts)
    if not policy.iterates:
        return None
    step = (last.step + 1) if last is not None else 1
    rng = step_rng(seed, step)
    if policy.debug_prob > 0 and rng.random() < policy.debug_prob:
        leaves = debuggable_leaves(tree, policy)
        if leaves:
            leaf = rng.choice(sorted(leaves, key=lambda n: n.id))
            return Plan(step=step, parent=leaf.id, kind="debug", size=policy.branching)
    best = best_node(tree)
    return Plan(step=step, parent=best.id if best is not None else 0, kind="improve", size=policy.branching)
