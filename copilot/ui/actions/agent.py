"""Autonomous mode in the app: pause or resume the agent, take over (the session continues in co-pilot mode,
and a run the agent started stays the session's, watched to its end), and hand back (the agent goes on with its
search from the log; a run the human started stays the session's too)."""

from __future__ import annotations

from typing import Any

from copilot.ui.drivers import AgentDriver, CopilotDriver


class AgentActions:
    def _agent(self: Any) -> Any:
        return self.driver.agent if isinstance(self.driver, AgentDriver) else None

    def action_agent_pause(self: Any) -> None:
        agent = self._agent()
        if agent is None or not agent.running:
            return
        if agent.paused:
            agent.resume()
            self.notify("agent resumed")
        else:
            agent.pause()
            self.notify("agent pauses before its next suggestion or run")

    def action_take_over(self: Any) -> None:
        """Also once the agent has ended by itself (a budget spent): the session goes on in co-pilot mode."""
        agent = self._agent()
        if agent is None:
            return
        agent.take_over()
        self.use_driver(CopilotDriver(self.session))
        self.notify("you have the wheel: the session is in co-pilot mode now · H hands it back")

    def action_hand_back(self: Any) -> None:
        if not isinstance(self.driver, CopilotDriver) or not self.driver.allows("hand_back"):
            return
        why_not = self._why_not_hand_back()
        if why_not:
            self.notify(why_not, title="not handed back", severity="warning")
            return
        from copilot.agent.budget import BudgetUsage  # the agent's modules stay out of the app's start
        from copilot.core.session.events import EVENTS_FILE, read_events

        events = read_events(self.session.dir / EVENTS_FILE).events  # read once: the agent's setup and its budget
        driver = self.agent_driver(self.session, switched_by="human", events=events)
        spent = driver.agent.budget.exhausted(BudgetUsage.from_events(events))
        if spent:
            self.notify(f"the agent's budget is spent ({spent}): the session stays yours", title="not handed back",
                        severity="warning")
            return
        self.use_driver(driver)
        self.notify("the agent has the wheel again: it goes on with its search · T takes over")

    def _why_not_hand_back(self: Any) -> str | None:
        if any(worker.group == "agent" and not worker.is_finished for worker in self.workers):
            return "the agent is still stopping: press H again in a moment"  # it ends at its next check
        if len(self.screen_stack) > 1:
            return "close the dialog first"
        waiting = self.state.current_suggestion
        if waiting is not None and waiting.status == "requested":
            return "a suggestion is on its way: decide it first, then hand back"
        if waiting is not None and waiting.status == "received":
            return "decide the waiting hunks first (a accept, x reject, c apply), then hand back"
        return None
