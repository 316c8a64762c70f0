"""Autonomous mode: the co-pilot loop with a policy instead of a human, on the same Session engine.

Each node: branch from the parent node's commit, ask the provider for a suggestion (the session's prompt context
plus a short instruction naming the node's job and the recent search history), accept every hunk, run, and score
with the same runner and log parser the human gets. Nodes go to the log as node_created / node_scored events,
so the search tree is a projection of the log (copilot/agent/tree.py) and a killed agent resumes from it.

Parallel search (`parallel=K`): up to K nodes' runs live at once. The git steps (checkout of the parent,
suggestion, commit) stay one at a time on the session's single working copy; each run trains its own commit in
a copy of its own (Session.start_run(commit=...)), so the working copy moves on to the next node while it goes.
A node holds its slot from creation to score. The nodes of one step (one Plan: `size` children of one parent)
run together; a new step waits until every earlier node is scored, because which node it expands or debugs
depends on those scores. That is how the benchmark's own runner parallelises (all experiments of an iteration
as SLURM jobs, then wait for them all), and it makes K > 1 build the same tree as K = 1 from the same answers.
Each live node is followed by its own task, which scores it the moment its run ends (the tree is updated as
results arrive, in the order of the log).

Hooks for a UI driving the same session: pause() / resume() (take effect between steps; runs in flight keep
going and are scored as they end), stop() (ends run() at once; runs in flight keep going and stay attached to
the session; a later run() adopts them as its live nodes) and take_over() (stop + mode_changed to copilot, so
the human continues in the same session). Handing back is a new agent's run() on the same session: it logs
mode_changed to auto (by whoever `mode_changed_by` names) and goes on with the search the log holds.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from copilot.agent.budget import Budget, BudgetUsage
from copilot.agent.policies import Plan, Policy, next_plan
from copilot.agent.tree import ROOT_ID, AgentTree, Node
from copilot.core.errors import (
    ConfigError,
    EditApplyError,
    EditParseError,
    ProviderError,
    ProviderExhausted,
    RunError,
    SpeedcopilotError,
    WorkspaceError,
)
from copilot.core.session import GuardBlocked, HunkDecision
from copilot.core.session import schema as s
from copilot.core.session.events import EVENTS_FILE, Event, read_events

BUGGY_OUTCOMES = frozenset({"crashed", "diverged", "hung", "timed_out", "cancelled"})
HISTORY_NODES = 6  # nodes listed in the instruction
ERROR_CHARS = 1200  # error text kept per node (node_scored.error, instruction)
LINE_CHARS = 160  # one history line
WATCH_POLL_S = 0.5  # how often budgets are checked while a run is in flight


class _Stopped(Exception):
    """stop() or take_over() was called."""


@dataclass
class AgentProgress:
    """What a display needs after each change: the tree, the spending and what the agent is doing now."""

    tree: AgentTree
    usage: BudgetUsage
    budget: Budget
    policy: Policy
    activity: str
    node_id: int | None = None
    last_line: str = ""
    paused: bool = False
    live: tuple[int, ...] = ()  # nodes whose runs are in flight
    parallel: int = 1


@dataclass
class _Live:
    """A node whose run is in flight, and the task that scores it when the run ends."""

    node: Node
    run_id: str
    task: "asyncio.Task[None]"
    adopted: bool  # re-attached after a kill (a cancelled run is then run again, not scored)


@dataclass
class AgentSummary:
    session_id: str
    policy: str
    stop_reason: str  # budget | policy_complete | provider_exhausted | stopped | taken_over | provider_failed |
    #                   baseline_failed
    detail: str
    nodes: list[Node] = field(default_factory=list)
    best: Node | None = None
    baseline: Node | None = None
    usage: dict[str, Any] = field(default_factory=dict)

    @property
    def buggy(self) -> int:
        return sum(1 for n in self.nodes if n.buggy)


class AutonomousAgent:
    def __init__(
        self,
        session: Any,
        policy: Policy,
        budget: Budget,
        seed: int = 0,
        *,
        close_on_finish: bool = True,
        max_provider_failures: int = 3,
        allow_guard_override: bool = False,
        stop_at_target: bool = True,
        parallel: int = 1,
        mode_changed_by: str = "agent",
    ) -> None:
        if not isinstance(parallel, int) or parallel < 1:
            raise ConfigError(f"parallel must be a whole number of at least 1, got {parallel!r}")
        local = getattr(session.runner, "name", "local") == "local"
        if parallel > 1 and local and getattr(session.track, "name", "") == "nanogpt":
            raise ConfigError(f"--parallel {parallel} with the local runner would train {parallel} nanogpt runs on "
                              "the same GPUs; use --runner slurm://… for parallel GPU runs, or --parallel 1")
        self.session = session
        self.parallel = parallel
        self.mode_changed_by = mode_changed_by  # "human" when a human hands the session back to it
        self.policy = policy
        self.budget = budget
        self.seed = seed
        self.close_on_finish = close_on_finish
        self.max_provider_failures = max_provider_failures
        self.allow_guard_override = allow_guard_override  # run commits the guard blocks (config: never by default)
        self.stop_at_target = stop_at_target  # no budget burnt after the score is known
        self.tree = AgentTree()
        self.usage = BudgetUsage()
        self.activity = "idle"
        self.node_id: int | None = None
        self.last_line = ""
        self._gate = asyncio.Event()
        self._gate.set()
        self._stop_reason: str | None = None
        self._current: asyncio.Future[Any] | None = None
        self._on_progress: Callable[[AgentProgress], None] | None = None
        self._provider_failures = 0
        self._exhausted: str | None = None  # why the provider has nothing more to propose
        self._live: dict[int, _Live] = {}
        self._redo: list[Node] = []  # adopted nodes whose runs must start again
        self._cut: set[str] = set()  # runs cancelled because a budget ran out
        self._running = False

    # -- hooks for a driver (UI, CLI) ----------------------------------------------------------
    @property
    def paused(self) -> bool:
        return not self._gate.is_set()

    @property
    def running(self) -> bool:
        return self._running

    def pause(self) -> None:
        """Hold before the next suggestion or run (a run in flight keeps going)."""
        if not self.paused:
            self._gate.clear()
            self._log_note("agent paused", "agent_paused")
            self._progress("paused")

    def resume(self) -> None:
        if self.paused:
            self._gate.set()
            self._log_note("agent resumed", "agent_resumed")
            self._progress("resumed")

    def stop(self, reason: str = "stopped") -> None:
        """End run() now. A suggestion in flight is abandoned (logged as failed); runs in flight keep going
        and stay attached to the session (its watchers follow them; a later run() scores them)."""
        if self._stop_reason is None:
            self._stop_reason = reason
        self._gate.set()
        if self._current is not None and not self._current.done():
            self._current.cancel()
        self._release_followers()

    @property
    def live_nodes(self) -> list[Node]:
        return [live.node for live in self._live.values()]

    @property
    def live_runs(self) -> dict[int, str]:
        """node id -> the run in flight that will score it"""
        return {node_id: live.run_id for node_id, live in self._live.items()}

    def take_over(self) -> None:
        """The human takes the wheel: stop the agent and switch the session to co-pilot mode. A run in flight
        stays the session's: it is watched to its end, its metrics and result logged as usual."""
        self.stop("taken_over")
        if self.session.log.is_open:
            self.session.log.append(s.ModeChanged(mode="copilot", previous="auto", by="human"))

    # -- the loop ------------------------------------------------------------------------------
    async def run(self, on_progress: Callable[[AgentProgress], None] | None = None) -> AgentSummary:
        """Search until a budget ends, the policy is done, or stop()/take_over(); resumable from the log."""
        if self._running:
            raise SpeedcopilotError("the agent is already running")
        self._running = True
        self._on_progress = on_progress
        self._stop_reason = None
        events = read_events(self.session.dir / EVENTS_FILE).events
        self.tree = AgentTree.from_events(events)
        self.usage = BudgetUsage.from_events(events)
        self._live, self._redo, self._cut = {}, [], set()
        set_slots = getattr(self.session.runner, "set_slots", None)
        if callable(set_slots):  # the local runner: K CPU slots, one per live run
            set_slots(self.parallel)
        self.session.subscribe(self._on_event)
        self.session.subscribe_lines(self._on_line)
        monitor = asyncio.ensure_future(self._watch_budget())
        try:
            await self._prepare()
            kind, detail = await self._search()
        except _Stopped:
            kind, detail = self._stop_reason or "stopped", "stopped by request"
        finally:
            monitor.cancel()
            self.session.unsubscribe(self._on_event)
            self.session.unsubscribe_lines(self._on_line)
            self._release_followers()
            self._running = False
            self._current = None
        self._progress(f"finished: {detail}")
        if kind in ("budget", "policy_complete", "provider_exhausted", "provider_failed", "baseline_failed") \
                and self.close_on_finish \
                and self.session.log.is_open:
            await self.session.close(reason="budget_exhausted" if kind == "budget" else kind)
        return self.summary(kind, detail)

    def summary(self, kind: str = "", detail: str = "") -> AgentSummary:
        return AgentSummary(
            session_id=self.session.id,
            policy=self.policy.name,
            stop_reason=kind,
            detail=detail,
            nodes=self.tree.search_nodes,
            best=self.tree.best(),
            baseline=self.tree.root,
            usage=self.usage.to_dict(),
        )

    async def _prepare(self) -> None:
        if self.session.state.mode != "auto":
            self.session.log.append(s.ModeChanged(mode="auto", previous=self.session.state.mode,
                                                  by=self.mode_changed_by))
        config = self.config()
        if self.tree.config != config:
            self.session.log.append(s.Note(
                text=f"autonomous agent: policy {self.policy.name}, seed {self.seed}, budget {self.budget.to_dict()}",
                kind="agent_config",
                agent=config,
            ))
        if await self.session.stash_leftovers():  # left by a killed agent between writing and committing
            self._log_note("stashed uncommitted changes left in the workspace (git stash list)", "agent_stash")

    def config(self) -> dict[str, Any]:
        config = {"policy": self.policy.to_dict(), "budget": self.budget.to_dict(), "seed": self.seed}
        if self.parallel > 1:  # left out at 1, so sessions from before --parallel resume without a new note
            config["parallel"] = self.parallel
        return config

    async def _search(self) -> tuple[str, str]:
        # a baseline that failed in an earlier process is run once more (the setup may have been fixed since)
        retry_root = self.tree.root is not None and self.tree.root.scored and self.tree.root.buggy
        self._adopt(self.tree.unscored())  # resumed: nodes created before the kill, never scored
        while True:
            await self._wait_gate()
            if self._provider_failures >= self.max_provider_failures:
                await self._drain()
                message = (f"the provider failed {self._provider_failures} times in a row; check the endpoint, "
                           "model and API key, then resume with `speedcopilot auto --resume`")
                self.session.log.append(s.Error(message=message, where="agent"))
                return "provider_failed", message
            if len(self._live) >= self.parallel:
                await self._wait_any()
                continue
            reason = self.budget.exhausted(self.usage, live_accel_s=self._live_accel())
            if reason is not None:
                if self._live:  # nodes already started are paid for: score them first
                    await self._wait_any()
                    continue
                self.session.log.append(s.BudgetExhausted(reason=reason, budget=self.budget.to_dict(),
                                                          usage=self.usage.to_dict()))
                return "budget", reason
            if self._redo:
                node = self._redo.pop(0)
                self._log_note(f"running {node.label} again: its run did not finish", "agent_rerun")
                await self._start(node)
                continue
            root = self.tree.root
            if root is None or retry_root:
                retry_root = False
                await self._run_root()
                continue
            if not root.scored:  # every plan depends on the baseline's score
                if ROOT_ID in self._live:
                    await self._wait_any()
                else:
                    self._redo.append(root)
                continue
            if root.buggy:
                await self._drain()
                message = (f"the starting record itself failed ({describe(root)}); the setup is broken (data, "
                           "GPUs, environment): fix it, then resume with `speedcopilot auto --resume`")
                self.session.log.append(s.Error(message=message, where="agent"))
                return "baseline_failed", message
            plan = next_plan(self.tree, self.policy, self.seed)
            if plan is None:
                if self._live:  # the policy may have more to do once these are scored
                    await self._wait_any()
                    continue
                self._log_note(f"policy {self.policy.name} complete", "agent_done")
                return "policy_complete", f"policy {self.policy.name} has no further steps"
            if any(n.step < plan.step for n in self.live_nodes):  # a new step waits for the last one's scores
                await self._wait_any()
                continue
            await self._expand(plan)
            if self._exhausted is not None:
                await self._drain()  # what is already running is still scored
                self._log_note(f"the provider has nothing left to propose: {self._exhausted}", "agent_done")
                return "provider_exhausted", self._exhausted

    async def _wait_gate(self) -> None:
        if self._stop_reason is not None:
            raise _Stopped
        if not self._gate.is_set():
            self._progress("paused")
            await self._gate.wait()
        if self._stop_reason is not None:
            raise _Stopped

    # -- nodes ---------------------------------------------------------------------------------
    async def _run_root(self) -> None:
        """The baseline: the starting record's commit, run once like any node (again if it failed before)."""
        start = self.session.state.start_commit
        if self.tree.root is None:
            branch = await self._branch_for(ROOT_ID, start)
            self._create(ROOT_ID, None, start, start, branch, "root", 0, Plan(-1, ROOT_ID, "root", 1), None,
                         "baseline: the starting record")
        else:
            self._log_note("running the baseline again: it failed before", "agent_rerun")
        await self._start(self.tree.nodes[ROOT_ID])

    async def _expand(self, plan: Plan) -> None:
        node_id = self.tree.next_id()
        parent = self.tree.nodes[plan.parent]
        base = self._base_of(parent)
        depth = parent.debug_depth + 1 if plan.kind == "debug" else 0
        branch = await self._branch_for(node_id, base)
        self.node_id = node_id
        self._progress(f"asking for a suggestion ({plan.kind} of {parent.label})")
        instruction = self._instruction(plan, node_id, parent)
        try:
            view = await self._await(self.session.request_suggestion(instruction=instruction))
        except ProviderExhausted as exc:
            self._exhausted = str(exc)  # not a buggy node: there is simply nothing more to try
            return
        except (ProviderError, EditParseError, EditApplyError) as exc:
            if isinstance(exc, ProviderError):
                self._provider_failures += 1
            suggestion_id = self._last_suggestion_id()
            self._create(node_id, plan.parent, None, base, branch, plan.kind, depth, plan, suggestion_id, "")
            self._score_failure(node_id, "suggestion_failed", type(exc).__name__, str(exc))
            return
        self._provider_failures = 0
        try:
            commit = await self.session.decide(view.id, [HunkDecision(h.index, "accept") for h in view.hunks])
        except (EditApplyError, WorkspaceError) as exc:
            self._create(node_id, plan.parent, None, base, branch, plan.kind, depth, plan, view.id, view.rationale)
            self._score_failure(node_id, "apply_failed", type(exc).__name__, str(exc))
            return
        if commit is None:
            self._create(node_id, plan.parent, None, base, branch, plan.kind, depth, plan, view.id, view.rationale)
            self._score_failure(node_id, "no_change", "no_change", "the suggestion did not change any file")
            return
        self._create(node_id, plan.parent, commit.sha, base, branch, plan.kind, depth, plan, view.id, commit.message)
        await self._start(self.tree.nodes[node_id])

    def _adopt(self, nodes: list[Node]) -> None:
        """Nodes created before a kill: follow their re-attached runs as live nodes, score runs that ended
        meanwhile, and queue the rest to run again."""
        live = set(self.session.live_runs())
        for node in nodes:
            if node.commit is None:
                self._score_failure(node.id, "interrupted", "interrupted",
                                    "the agent stopped before this node had code")
                continue
            run_id = self._run_of(node)
            if run_id is not None and run_id in live:
                self._progress(f"re-attached to the run of {node.label}")
                self._follow(node, run_id, adopted=True)
                continue
            result = self.session.state.runs[run_id].result if run_id is not None else None
            if result is not None and result.get("outcome") != "cancelled":
                self._score_result(node, result)
                continue
            self._redo.append(node)  # never started, lost, or cancelled by a user stopping the agent

    async def _start(self, node: Node) -> None:
        """Start the node's run on its own copy of its commit and follow it; the working copy is free again."""
        self.node_id = node.id
        self._progress(f"starting the run of {node.label}")
        try:
            run = await self.session.start_run(commit=node.commit, node_id=node.id, started_by="agent",
                                               override_guard=self.allow_guard_override,
                                               stop_at_target=self.stop_at_target)
        except GuardBlocked as exc:
            self._score_failure(node.id, "guard_refused", "guard", str(exc))
            return
        except RunError as exc:
            self._score_failure(node.id, "start_failed", "start_failed", str(exc))
            return
        self._follow(node, run.run_id, adopted=False)

    def _follow(self, node: Node, run_id: str, adopted: bool) -> None:
        task = asyncio.ensure_future(self._score_when_done(node, run_id, adopted))
        self._live[node.id] = _Live(node, run_id, task, adopted)
        self._progress(f"running {node.label}")

    async def _score_when_done(self, node: Node, run_id: str, adopted: bool) -> None:
        """Wait for the run's end (the session watches it; this only waits) and score the node at once."""
        try:
            try:
                result = (await self.session.wait_run(run_id)).to_event_fields()
            except RunError as exc:
                self._score_failure(node.id, "watch_failed", "watch_failed", str(exc))
                return
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # the agent stopped: the run goes on, a later run() adopts it
                if self._stop_reason is None:  # the session stopped watching (closed under the agent)
                    self._stop_reason = "stopped"
                return  # the node stays unscored for a resume
            cut = run_id in self._cut
            if adopted and result.get("outcome") == "cancelled" and not cut:
                self._redo.append(node)  # cancelled by someone stopping the runs, not by its code
                return
            self._score_result(node, result, reason_override="budget" if cut else None)
        finally:
            live = self._live.get(node.id)
            if live is not None and live.run_id == run_id:
                del self._live[node.id]

    async def _wait_any(self) -> None:
        """Until a live node is scored. Stopping the agent ends the waiting, never the runs or their watching."""
        while self._live:
            tasks = {live.task for live in self._live.values()}
            done, _ = await asyncio.wait(tasks, timeout=WATCH_POLL_S, return_when=asyncio.FIRST_COMPLETED)
            if self._stop_reason is not None:
                raise _Stopped
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]  # a bug in scoring: not to be swallowed
            if done:
                return

    async def _watch_budget(self) -> None:
        """All through run(), paused or asking for a suggestion: cancel the live runs once they (with what was
        spent before) exhaust the wall or accelerator budget."""
        while True:
            await asyncio.sleep(WATCH_POLL_S)
            if self._live:
                try:
                    await self._cut_runs_over_budget()
                except SpeedcopilotError as exc:  # the runner could not be asked to stop; say so, keep watching
                    self._log_note(f"could not cancel a run over budget: {exc}", "agent_budget_cut")

    async def _drain(self) -> None:
        while self._live:
            await self._wait_any()

    async def _cut_runs_over_budget(self) -> None:
        cut = self.budget.run_limit_hit(self.usage, None, self._live_accel())
        if cut is None:
            return
        for live in list(self._live.values()):
            if live.run_id in self._cut:
                continue
            self._cut.add(live.run_id)
            self._log_note(f"cancelling the run of {live.node.label}: {cut}", "agent_budget_cut")
            try:
                await self.session.cancel_run(live.run_id)
            except RunError:  # it ended meanwhile
                pass

    def _live_accel(self) -> float:
        """Accelerator-seconds of the runs in flight: run time only (a queued job costs nothing yet)."""
        now = time.time()
        runs = self.session.state.runs
        seconds = sum(runs[live.run_id].run_seconds(now) for live in self._live.values()
                      if live.run_id in runs and runs[live.run_id].is_live)
        return self.usage.gpus * seconds

    def _release_followers(self) -> None:
        """Stop following the live runs (they go on, watched by the session)."""
        for live in list(self._live.values()):
            if not live.task.done():
                live.task.cancel()
        self._live.clear()

    # -- scoring -------------------------------------------------------------------------------
    def _score_result(self, node: Node, result: dict[str, Any], reason_override: str | None = None) -> None:
        outcome = str(result.get("outcome"))
        final = result.get("final_val_loss")
        reason: str | None = None
        if outcome in BUGGY_OUTCOMES:
            reason = outcome
        elif final is None or not math.isfinite(float(final)):
            reason = "no_metric"
        elif result.get("timer_suspect"):
            reason = "timer_suspect"
        if reason_override and reason:
            reason = reason_override
        reached = bool(result.get("reached_target")) and reason is None
        tail = result.get("error_summary") or "\n".join(result.get("error_tail") or [])
        self.session.log.append(s.NodeScored(
            node_id=node.id,
            buggy=reason is not None,
            outcome=outcome,
            reason=reason,
            time_to_target_ms=result.get("time_to_target_ms") if reached else None,
            final_val_loss=final,
            reached_target=reached,
            run_id=result.get("run_id"),
            wall_time_s=result.get("wall_time_s"),
            error=tail[-ERROR_CHARS:] if tail else None,
        ))
        self._progress(f"scored {node.label}: {outcome}")

    def _score_failure(self, node_id: int, outcome: str, reason: str, error: str) -> None:
        self.session.log.append(s.NodeScored(node_id=node_id, buggy=True, outcome=outcome, reason=reason,
                                             reached_target=False, error=error[-ERROR_CHARS:]))
        self._progress(f"scored node {node_id}: {outcome}")

    # -- helpers ---------------------------------------------------------------------------------
    def _create(self, node_id: int, parent: int | None, commit: str | None, base: str | None, branch: str,
                kind: str, depth: int, plan: Plan, suggestion_id: str | None, description: str) -> None:
        self.session.log.append(s.NodeCreated(
            node_id=node_id,
            parent=parent,
            commit=commit,
            base=base,
            branch=branch,
            kind=kind,
            debug_depth=depth,
            step=plan.step,
            step_size=plan.size,
            suggestion_id=suggestion_id,
            description=description[:200],
        ))

    async def _await(self, coro: Any) -> Any:
        task = asyncio.ensure_future(coro)
        self._current = task
        try:
            return await task
        except asyncio.CancelledError:
            if self._stop_reason is not None:
                raise _Stopped from None
            raise
        finally:
            self._current = None

    def _base_of(self, node: Node) -> str:
        """The code a node stands for: its commit, else (no commit) what it was branched from."""
        return node.commit or node.base or self.session.state.start_commit

    async def _branch_for(self, node_id: int, sha: str) -> str:
        """Branch node-<id> at sha; reuse it if a killed agent made it and left it there."""
        name = f"node-{node_id}"
        heads = await self.session.branch_heads()
        if name in heads:
            if heads[name] == sha:
                if (await self.session.head())[1] != name:
                    await self.session.switch_branch(name)
                return name
            k = 2
            while f"{name}-{k}" in heads:
                k += 1
            name = f"{name}-{k}"
        return await self.session.checkout(sha, branch=name)

    def _run_of(self, node: Node) -> str | None:
        runs = [r for r in self.session.state.runs.values() if r.node_id == node.id]
        if not runs:  # a log from before runs named their node
            runs = [r for r in self.session.state.runs.values() if r.node_id is None and r.commit == node.commit
                    and (node.created_t is None or r.started_at >= node.created_t)]
        return runs[-1].run_id if runs else None

    def _last_suggestion_id(self) -> str | None:
        return next(reversed(self.session.state.suggestions), None) if self.session.state.suggestions else None

    def _on_event(self, event: Event) -> None:
        self.tree.apply(event)
        self.usage.apply(event)

    def _on_line(self, run_id: str, line: str) -> None:
        self.last_line = line
        if self._on_progress is not None and ("val_loss" in line or "Error" in line):
            self._progress(self.activity)

    def _log_note(self, text: str, kind: str) -> None:
        if self.session.log.is_open:
            self.session.log.append(s.Note(text=text, kind=kind))

    def _progress(self, activity: str) -> None:
        self.activity = activity
        if self._on_progress is not None:
            self._on_progress(AgentProgress(self.tree, self.usage, self.budget, self.policy, activity,
                                            self.node_id, self.last_line, self.paused,
                                            tuple(sorted(self._live)), self.parallel))

    # -- the instruction -------------------------------------------------------------------------
    def _instruction(self, plan: Plan, node_id: int, parent: Node) -> str:
        head = f"Autonomous search ({self.policy.name}), node {node_id}. "
        if plan.kind == "draft":
            drafts = sum(1 for n in self.tree.search_nodes if n.kind == "draft") + 1
            task = (f"Draft {drafts} of {self.policy.initial_drafts}: propose one self-contained change to the "
                    "starting script that reaches the target validation loss in less training time. "
                    "Try an idea different from the earlier drafts listed below.")
        elif plan.kind == "debug":
            task = (f"{parent.label.capitalize()} is buggy ({describe(parent)}). Fix what broke while keeping its "
                    "intended change; the script in front of you is that node's code.")
            if parent.error:
                task += "\nIts error output ended with:\n" + parent.error[-ERROR_CHARS:]
        else:
            name = "the baseline (the starting record)" if parent.id == ROOT_ID else parent.label
            task = (f"Improve on {name} ({describe(parent)}), the best so far; the script in front of you "
                    "is its code. Propose one further change that reaches the target in less training time.")
        return head + task + self._history(node_id)

    def _history(self, node_id: int) -> str:
        nodes = [n for n in self.tree.nodes.values() if n.id != node_id][-HISTORY_NODES:]
        if not nodes:
            return ""
        lines = ["", "Search so far (most recent last):"]
        for n in nodes:
            origin = "baseline" if n.id == ROOT_ID else f"{n.kind} of {self.tree.nodes[n.parent].label}" \
                if n.parent in self.tree.nodes else n.kind
            text = f"- {n.label} ({origin}): {n.description or '(no change)'} -> {describe(n)}"
            lines.append(text[:LINE_CHARS])
        return "\n".join(lines)


def describe(node: Node) -> str:
    """One line: how a node did."""
    if not node.scored:
        return "not scored yet"
    if node.buggy:
        lines = [line for line in (node.error or "").strip().splitlines() if line.strip()]
        # a run's error is a tail whose last line is the exception; our own messages lead with what happened
        # and what to do (the lines after are help for the model); either line is shown whole
        pick = lines[-1:] if node.outcome in BUGGY_OUTCOMES or node.outcome == "no_metric" else lines[:1]
        detail = f": {pick[0].strip()}" if pick else ""
        return f"buggy, {node.outcome}{detail}"
    if node.reached_target and node.time_to_target_ms is not None:
        return f"reached the target in {node.time_to_target_ms / 1000:.1f} s"
    if node.final_val_loss is not None:
        return f"ended above the target at val loss {node.final_val_loss:.4f}"
    return str(node.outcome)

