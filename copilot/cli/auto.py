"""`speedcopilot auto`: the autonomous agent, headless, with a live tree of its nodes."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from copilot.cli._common import (
    add_provider_flags,
    add_session_dir_flag,
    add_track_flag,
    console,
    fmt_seconds,
    non_negative_int,
    plain,
    positive_float,
    positive_int,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from copilot.agent.policies import DEFAULT_NODES, POLICIES

    parser = subparsers.add_parser("auto", help="let the autonomous agent search from record N (or resume it)")
    parser.add_argument("--record", type=non_negative_int, default=None, help="record to start from (default 0)")
    add_track_flag(parser)
    add_provider_flags(parser)
    parser.add_argument("--policy", choices=list(POLICIES), default=None,
                        help="search scaffold (default tree; resumed sessions keep theirs)")
    parser.add_argument("--nodes", type=positive_int, default=None,
                        help=f"node budget, the baseline run not counted (default {DEFAULT_NODES})")
    parser.add_argument("--budget-minutes", type=positive_float, default=None, help="wall-clock budget in minutes")
    parser.add_argument("--budget-usd", type=positive_float, default=None, help="LLM spending budget in US dollars")
    parser.add_argument("--budget-tokens", type=positive_int, default=None, help="LLM token budget (prompt + completion)")
    parser.add_argument("--budget-accel-seconds", type=positive_float, default=None,
                        help="accelerator budget: GPUs × run seconds (CPU seconds on the micro track)")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="seed of the policy's random choices (default 0)")
    parser.add_argument("--parallel", type=positive_int, default=None, metavar="K",
                        help="nodes whose runs may be live at once (default 1; resumed sessions keep theirs): "
                        "K SLURM jobs, or K local CPU slots on the micro track")
    parser.add_argument("--gpus", type=positive_int, default=None, help="GPUs per run (nanogpt track: 1, 2, 4 or 8)")
    parser.add_argument("--runner", default=None, help="local (default), ssh://[user@]host[:port]/path, or "
                        "slurm://[partition][?gpus=8&time=00:30:00&account=…&cpus=…&mem=…&qos=…]")
    parser.add_argument("--resume", metavar="ID", default=None, help="continue a session (id, prefix, or 'last')")
    add_session_dir_flag(parser, access="write")
    parser.set_defaults(func=run)


def agent_settings(args: argparse.Namespace, saved: dict[str, Any] | None) -> tuple[Any, Any, int]:
    """Policy, budget and seed: flags, else what a resumed session used, else defaults."""
    from copilot.agent.budget import Budget
    from copilot.agent.policies import DEFAULT_NODES, Policy, get_policy

    saved = saved or {}
    saved_budget = dict(saved.get("budget") or {})
    flags = {"nodes": args.nodes, "wall_minutes": args.budget_minutes, "usd": args.budget_usd,
             "tokens": args.budget_tokens, "accel_seconds": args.budget_accel_seconds}
    merged = {**saved_budget, **{k: v for k, v in flags.items() if v is not None}}
    if "nodes" not in merged and not saved:
        merged["nodes"] = DEFAULT_NODES
    budget = Budget.from_dict(merged)
    if args.policy is not None:
        policy = get_policy(args.policy, budget.nodes)
    elif saved.get("policy"):
        policy = Policy.from_dict(saved["policy"])
        if policy.name == "flat" and args.nodes is not None:
            policy = get_policy("flat", budget.nodes)
    else:
        policy = get_policy("tree", budget.nodes)
    seed = args.seed if args.seed is not None else int(saved.get("seed", 0) or 0)
    return policy, budget, seed


def parallel_setting(args: argparse.Namespace, saved: dict[str, Any] | None) -> int:
    """Nodes at once: the flag, else what a resumed session used, else the config's `parallel` (default 1)."""
    from copilot.cli._common import settings_from_args
    from copilot.core.errors import ConfigError

    if args.parallel is not None:
        if args.parallel < 1:
            raise ConfigError(f"--parallel {args.parallel}: give 1 or more nodes at once")
        return int(args.parallel)
    if saved and "policy" in saved:  # a session the agent already drove keeps its own K
        return int(saved.get("parallel", 1) or 1)
    return settings_from_args(args).parallel


def run(args: argparse.Namespace) -> int:
    from copilot.agent.loop import AutonomousAgent
    from copilot.agent.tree import AgentTree
    from copilot.cli.start import open_session
    from copilot.core.session.events import EVENTS_FILE, read_events

    for name in ("participant", "mode", "theme"):  # open_session reads these from `start`'s flags
        if not hasattr(args, name):
            setattr(args, name, None)
    if not getattr(args, "resume", None):  # recorded in session_started, so compare sees the budget
        args.agent_budget = agent_settings(args, {})[1].to_dict()
    _, session = open_session(args, mode="auto", driver="auto")
    out = console()
    try:
        saved = AgentTree.from_events(read_events(session.dir / EVENTS_FILE).events).config
        policy, budget, seed = agent_settings(args, saved)
        parallel = parallel_setting(args, saved)
        agent = AutonomousAgent(session, policy, budget, seed, parallel=parallel,
                                allow_guard_override=session.options.agent_guard_override)
        header = plain("speedcopilot auto", style="bold")
        header.append(f" · session {session.id} · policy {policy.name} · seed {seed} · "
                      + (f"{parallel} nodes at once · " if parallel > 1 else "")
                      + f"{session.state.track} record {session.state.record} · provider {session.state.provider_label}")
        out.print(header)
        summary = asyncio.run(_drive(agent, out))
    finally:
        if session.log.is_open:
            live = session.live_runs()
            session.close_now(reason="interrupted")
            if live:
                out.print(plain(f"run(s) {', '.join(live)} keep going; `speedcopilot auto --resume {session.id}` "
                                "picks them up"))
    _print_summary(out, summary, session)
    failed = _no_node_succeeded(summary)
    if failed:
        out.print(plain(f"auto: {failed}", style="bold red"))
    return 1 if summary.stop_reason in ("baseline_failed", "provider_failed") or failed else 0


def _no_node_succeeded(summary: Any) -> str | None:
    """Why the search found nothing usable (every node it tried failed), or None."""
    nodes = [n for n in summary.nodes if n.scored]
    if not nodes or any(not n.buggy for n in nodes):
        return None
    reasons: dict[str, int] = {}
    for n in nodes:
        key = str(n.reason or n.outcome)
        reasons[key] = reasons.get(key, 0) + 1
    counted = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return (f"no node succeeded ({len(nodes)} of {len(nodes)} failed: {counted}); the errors are above and in "
            f"`speedcopilot sessions show {summary.session_id} --events`")


async def _drive(agent: Any, out: Any) -> Any:
    from rich.live import Live

    from copilot.cli._settle import settle_and_report
    from copilot.core.session.repair import open_runs

    # the runs a killed driver left open: ended ones recorded now, live ones followed before the search goes on
    await settle_and_report(agent.session, open_runs(agent.session.state), out, follow=True,
                            following_why=" before the search goes on")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, agent.stop, "interrupted")
        except (NotImplementedError, RuntimeError):
            pass
    view = TreeView(agent.session)
    if out.is_terminal:
        with Live(view, console=out, refresh_per_second=4, transient=False):
            return await agent.run(on_progress=view.update)
    summary = await agent.run(on_progress=lambda p: view.print_new(out, p))
    if view.last is not None:
        out.print(view.render(view.last))
    return summary


class TreeView:
    """Renders the agent's progress: the node tree, the best time so far, the budget spent, the activity."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self._printed: set[int] = set()
        self.last: Any = None

    def update(self, progress: Any) -> None:
        self.last = progress

    def __rich__(self) -> Any:  # Live re-renders this on every refresh, so the clock keeps moving
        return self.render(self.last)

    def render(self, progress: Any) -> Any:
        from rich.console import Group
        from rich.text import Text
        from rich.tree import Tree

        if progress is None:
            return Text("starting…")
        tree = progress.tree
        root = tree.root
        state = self.session.state
        top = Tree(_node_text(root, state) if root is not None else Text("baseline (not run yet)"))
        self._add_children(top, tree, 0)
        best = tree.best()
        lines = [top, Text(f"best: {_best_text(best)}" + _record_text(state))]
        lines.append(Text("budget: " + progress.budget.describe(progress.usage)))
        now = ("[paused] " if progress.paused else "") + progress.activity
        if progress.parallel > 1:
            now += f" · live {len(progress.live)}/{progress.parallel}"
        lines.append(Text(f"now: {now}", style="dim"))
        if progress.last_line:
            lines.append(Text(progress.last_line[-120:], style="dim"))
        return Group(*lines)

    def _add_children(self, branch: Any, tree: Any, node_id: int) -> None:
        for child in tree.children(node_id):
            self._add_children(branch.add(_node_text(child, self.session.state)), tree, child.id)

    def print_new(self, out: Any, progress: Any) -> None:
        """Plain output (not a terminal): one line per node as it is scored."""
        self.last = progress
        for node in sorted(progress.tree.nodes.values(), key=lambda n: n.id):
            if node.scored and node.id not in self._printed:
                self._printed.add(node.id)
                out.print(_node_text(node, self.session.state))


def _node_text(node: Any, state: Any = None) -> Any:
    from rich.text import Text

    from copilot.agent.loop import describe

    kind = "baseline" if node.kind == "root" else node.kind
    text = Text(f"{node.label} [{kind}] ")
    text.append((node.description or "")[:48] + " ", style="dim")
    view = state.nodes.get(node.id) if state is not None and not node.scored else None
    if view is not None:  # queued (a scheduler holds it) / running / preparing (no run yet)
        text.append(state.node_phase(view), style="yellow")
        return text
    if not node.scored:
        style = "yellow"
    elif node.buggy:
        style = "red"
    elif node.reached_target:
        style = "green"
    else:
        style = "cyan"
    text.append(describe(node), style=style)
    return text


def _best_text(best: Any) -> str:
    if best is None:
        return "–"
    if best.reached_target and best.time_to_target_ms is not None:
        return f"{best.label}, target in {fmt_seconds(best.time_to_target_ms / 1000)}"
    if best.final_val_loss is not None:
        return f"{best.label}, above target (val {best.final_val_loss:.4f})"
    return best.label


def _record_text(state: Any) -> str:
    parts = []
    if state.record_time_s is not None:
        parts.append(f"record {state.record}: {fmt_seconds(state.record_time_s)}")
    if state.next_record_time_s is not None:
        parts.append(f"record {state.record + 1}: {fmt_seconds(state.next_record_time_s)}")
    return f"  ({'; '.join(parts)})" if parts else ""


def _print_summary(out: Any, summary: Any, session: Any) -> None:
    out.print(plain(f"stopped: {summary.stop_reason} ({summary.detail})"))
    out.print(plain(f"nodes: {len(summary.nodes)} ({summary.buggy} buggy); best: {_best_text(summary.best)}"))
    usage = summary.usage
    out.print(f"spent: {usage.get('wall_minutes', 0):.1f} min, {usage.get('tokens', 0)} tokens, "
              f"${usage.get('usd', 0.0):.4f}, {usage.get('accel_seconds', 0.0):.1f} accelerator-s")
    out.print(plain(f"session {summary.session_id} in {session.dir}"))
