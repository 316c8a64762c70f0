"""Autonomous mode in the app: pause or resume the agent, or take over (the session continues in co-pilot mode,
and a run the agent started stays the session's, watched to its end)."""

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
        self.notify("you have the wheel: the session is in co-pilot mode now")
