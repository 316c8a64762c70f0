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
        agent = self._agent()
        if agent is None or not agent.running:
            return
        agent.take_over()
        self.use_driver(CopilotDriver(self.session))
        self.notify("you have the wheel: the session is in co-pilot mode now · H hands it back")

    def action_hand_back(self: Any) -> None:
        if not isinstance(self.driver, CopilotDriver) or not self.driver.allows("hand_back"):
            return
        waiting = self.state.current_suggestion
        if waiting is not None and waiting.status == "received":
            self.notify("decide the waiting hunks first (a accept, x reject, c apply), then hand back",
                        title="hunks are waiting", severity="warning")
            return
        self.use_driver(self.agent_driver(self.session, switched_by="human"))
        self.notify("the agent has the wheel again: it goes on with its search · T takes over")
