"""Parallel autonomous search on SLURM: K nodes at once vs one at a time, same node budget, same answers.

Usage: python bench/parallel_search.py [--parallel 4] [--nodes 8] [--policy flat] [--repeats 2]
                                       [--node-cpus 2 4] [--sleep 0.1] [--json FILE]

For each --node-cpus value a throw-away cluster is started on this machine (the tests' fixture: munged,
slurmctld, slurmd; needs root and slurm-wlm + munge), whose one node declares that many CPUs (each job takes
one). On it, autonomous sessions on the fixture track (tests/support/fixture_track.py: tiny scripts that
print upstream-format lines) run with K = 1 and K = --parallel, alternating which goes first in each repeat.
Answers come from the loopback OpenAI-compatible server (tests/support/openai_server.py), so both sessions
build the same tree: --nodes drafts (flat) with DECAY 0.950, 0.949, ... and SLEEP_S = --sleep per step; the
agent stops each run at the target (step 15 of 30).

Reported per session: wall time of the whole search (agent.run, baseline run included), and per run
- submit -> first output line (run.json's queued_at, taken just before sbatch, to the first line the
  session's watcher handed on; it polls every 0.1 s): the scheduler's overhead, plus waiting for a free CPU
  when more jobs than CPUs are live,
- queue time (submit -> the job script's `started` file) and start -> first line,
and the wall-time ratio K / 1 per repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copilot.agent.budget import Budget  # noqa: E402
from copilot.agent.loop import AutonomousAgent  # noqa: E402
from copilot.agent.policies import get_policy  # noqa: E402
from copilot.config import DEFAULT_PRICES  # noqa: E402
from copilot.core.llm.providers import OpenAIProvider  # noqa: E402
from copilot.core.runs import read_run_info  # noqa: E402
from copilot.core.runs.slurm import SlurmRunner  # noqa: E402
from copilot.core.session import Session, SessionOptions  # noqa: E402
from tests.support.agent import block  # noqa: E402
from tests.support.fixture_track import FixtureTrack  # noqa: E402
from tests.support.openai_server import OpenAIServer  # noqa: E402


def answers(nodes: int, sleep_s: float) -> list[str]:
    """Draft i: DECAY 0.950 - i/1000 (all cross the target at step 15) and SLEEP_S per step."""
    search = "SLEEP_S = 0.01\nSTEP_MS = 10.0\n\nLR = 0.001\nWARMUP = 0\nNOTE = \"fixture\"\nVERBOSE = True\n\n" \
             "DECAY = 0.97  # loss multiplier per step"
    out = []
    for i in range(nodes):
        decay = f"{0.950 - i / 1000:.3f}"
        replace = search.replace("SLEEP_S = 0.01", f"SLEEP_S = {sleep_s}").replace("DECAY = 0.97", f"DECAY = {decay}")
        out.append(block(search, replace, f"Decay {decay} per step."))
    return out


async def one_session(base: Path, url: str, env: dict[str, str], parallel: int, nodes: int, policy: str,
                      sleep_s: float) -> dict[str, Any]:
    first_line: dict[str, float] = {}

    def on_line(run_id: str, _: str) -> None:
        first_line.setdefault(run_id, time.time())

    with OpenAIServer() as server:
        server.script(answers(nodes, sleep_s))
        provider = OpenAIProvider(model="test-model", api_key="sk-bench-parallel-0123456789",
                                  base_url=server.base_url, max_retries=0, timeout_s=60, prices=DEFAULT_PRICES)
        session = Session.create(base / f"k{parallel}", FixtureTrack(), 0, provider,
                                 runner=SlurmRunner(url, tool_env=env),
                                 options=SessionOptions(mode="auto", edit_retries=0, hang_timeout_s=300.0,
                                                        runner_url=url))
        session.subscribe_lines(on_line)
        agent = AutonomousAgent(session, get_policy(policy, nodes), Budget(nodes=nodes), parallel=parallel)
        started = time.monotonic()
        summary = await agent.run()
        wall = time.monotonic() - started
    runs = []
    for run_id, view in session.state.runs.items():
        info = read_run_info(session.dir / "runs" / run_id)
        start_file = session.dir / "runs" / run_id / "started"
        job_start = start_file.stat().st_mtime if start_file.exists() else None
        line = first_line.get(run_id)
        runs.append({
            "run_id": run_id, "node": view.node_id, "outcome": view.status,
            "submit_to_first_line_s": line - info["queued_at"] if line is not None else None,
            "queue_s": job_start - info["queued_at"] if job_start is not None else None,
            "start_to_first_line_s": line - job_start if line is not None and job_start is not None else None,
            "run_s": (view.result or {}).get("wall_time_s"),
        })
    bad = [r for r in runs if r["outcome"] != "reached_target"]
    if summary.stop_reason != "budget" or bad or len(runs) != nodes + 1:
        raise SystemExit(f"K={parallel}: unexpected end {summary.stop_reason} ({summary.detail}); runs {bad}")
    return {"parallel": parallel, "wall_s": wall, "runs": runs, "session": str(session.dir)}


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    return f"{statistics.median(values):.2f} s ({min(values):.2f}–{max(values):.2f})"


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=8)
    parser.add_argument("--policy", default="flat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--node-cpus", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--sleep", type=float, default=0.1, help="SLEEP_S per training step of the drafts")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from tests.support.slurm import SlurmCluster

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d"), "commit": commit, "host": platform.node(),
                              "cpus": os.cpu_count(), "args": {k: str(v) for k, v in vars(args).items()},
                              "clusters": []}
    print(f"commit {commit} · {os.cpu_count()} CPUs · load {load()} · K={args.parallel} vs 1 · "
          f"{args.nodes} nodes ({args.policy}) · SLEEP_S {args.sleep}")
    with tempfile.TemporaryDirectory(prefix="parallel-bench-") as tmp:
        for cpus in args.node_cpus:
            base = Path(tmp) / f"cpus{cpus}"
            cluster = SlurmCluster.start(base / "cluster", cpus=cpus)
            entry: dict[str, Any] = {"node_cpus": cpus, "repeats": []}
            try:
                for repeat in range(args.repeats):
                    order = [1, args.parallel] if repeat % 2 == 0 else [args.parallel, 1]
                    done: dict[int, dict[str, Any]] = {}
                    for k in order:
                        done[k] = asyncio.run(one_session(base / f"r{repeat}", cluster.url(), cluster.env, k,
                                                          args.nodes, args.policy, args.sleep))
                        cluster.cancel_all()
                    ratio = done[args.parallel]["wall_s"] / done[1]["wall_s"]
                    entry["repeats"].append({"order": order, "load": load(), "ratio": ratio,
                                             "sessions": [done[1], done[args.parallel]]})
                    print(f"node CPUs {cpus} · repeat {repeat + 1} (order {order}, load {load()}): "
                          f"K=1 {done[1]['wall_s']:.1f} s, K={args.parallel} {done[args.parallel]['wall_s']:.1f} s, "
                          f"ratio {ratio:.2f}")
                    for k in (1, args.parallel):
                        runs = done[k]["runs"]
                        print(f"    K={k}: submit->first line {spread([r['submit_to_first_line_s'] for r in runs])}"
                              f" · queue {spread([r['queue_s'] for r in runs])}"
                              f" · start->first line {spread([r['start_to_first_line_s'] for r in runs])}"
                              f" · run {spread([r['run_s'] for r in runs])}")
            finally:
                cluster.stop()
            report["clusters"].append(entry)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
