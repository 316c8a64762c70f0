"""A separate process that drives the parallel agent on the fixture track, so a test can kill it with SIGKILL.

    python -m tests.support.parallel_driver --sessions DIR --base-url URL --parallel K --nodes N
                                            [--policy flat] [--runner local|slurm://…]

It creates a session, prints `session <id>` on its first line, and runs the agent against the loopback
OpenAI-compatible server at URL (tests/support/openai_server.py). A SLURM runner finds its cluster through
SLURM_CONF in the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from copilot.agent.budget import Budget
from copilot.agent.loop import AutonomousAgent
from copilot.agent.policies import get_policy
from copilot.config import DEFAULT_PRICES
from copilot.core.llm.providers import OpenAIProvider
from copilot.core.session import Session, SessionOptions
from tests.support.fixture_track import FixtureTrack

API_KEY = "sk-test-parallel-0123456789"
HANG_TIMEOUT_S = 300.0  # runs wait for the test's go file without printing


def provider(base_url: str) -> OpenAIProvider:
    return OpenAIProvider(model="test-model", api_key=API_KEY, base_url=base_url, max_retries=0, timeout_s=30,
                          prices=DEFAULT_PRICES)


def runner(url: str):  # noqa: ANN201
    if url.startswith("slurm"):
        from copilot.core.runs.slurm import SlurmRunner

        return SlurmRunner(url, state_poll_s=0.5)
    from copilot.core.runs import LocalRunner

    return LocalRunner()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=Path, required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--policy", default="flat")
    parser.add_argument("--runner", default="local")
    args = parser.parse_args(argv)
    track = FixtureTrack()
    session = Session.create(args.sessions, track, 0, provider(args.base_url), runner=runner(args.runner),
                             options=SessionOptions(mode="auto", edit_retries=0, hang_timeout_s=HANG_TIMEOUT_S,
                                                    runner_url=args.runner))
    print(f"session {session.id}", flush=True)
    agent = AutonomousAgent(session, get_policy(args.policy, args.nodes), Budget(nodes=args.nodes),
                            parallel=args.parallel)
    summary = asyncio.run(agent.run())
    print(f"stopped {summary.stop_reason}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
