"""A burst of 100k run output lines (plus metric events) into the running app: CPU spent, and responsiveness.

Run by hand: python bench/app_ingest.py [--lines 100000] [--metrics 2000]. Headless Textual (run_test), the same
code paths as live: a thread appends lines the way a run watcher does, events go through `ingest`, and the one
0.1 s flush applies them. Reports process CPU seconds from the first line until the last one is on screen, and
the worst event-loop lag seen by a 10 ms ticker (a key press waits at most about that long).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from copilot.core.session.events import Event  # noqa: E402
from copilot.ui.app import CopilotApp  # noqa: E402
from tests.support.ui import metric_points, sample_state  # noqa: E402


async def bench(lines: int, metrics: int) -> dict[str, float]:
    app = CopilotApp(state=sample_state(live_run=True))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.5)
        assert app.selected_run_id() == "r2"
        lags: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                lags.append(time.perf_counter() - before - 0.01)

        tick = asyncio.create_task(ticker())
        await asyncio.sleep(1.0)  # idle baseline: the machine's own noise
        idle = list(lags)
        lags.clear()
        points = metric_points("r2", steps=metrics, every=10)
        seq = app.state.last_seq

        def produce() -> None:
            for i in range(lines):
                app.logs.append("r2", f"step:{i}/{lines} train_loss:3.1234 train_time:{i}ms step_avg:1.00ms\n")

        cpu0, wall0 = time.process_time(), time.perf_counter()
        producer = threading.Thread(target=produce)
        producer.start()
        for fields in points:
            seq += 1
            app.ingest(Event(seq=seq, t=time.time(), type="metric", data=fields))
        await asyncio.to_thread(producer.join)
        log = app.screen.query_one("#log-tail")
        last = f"step:{lines - 1}/{lines} train_loss:3.1234 train_time:{lines - 1}ms step_avg:1.00ms"
        while not (log.lines and log.lines[-1] == last and (not metrics or app.state.runs["r2"].points[-1].step == metrics)):
            await pilot.pause(0.02)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        stop.set()
        await tick
        chart_points = sum(len(s.xs) for s in app.screen.query_one("#loss-chart").series)
        return {"idle_max_lag_ms": max(idle) * 1000, "idle_p50_lag_ms": sorted(idle)[len(idle) // 2] * 1000,
                "cpu_s": cpu, "wall_s": wall, "max_lag_ms": max(lags) * 1000,
                "p50_lag_ms": sorted(lags)[len(lags) // 2] * 1000, "flushes": app.flushes,
                "log_lines_kept": log.line_count, "chart_points_drawn": chart_points}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--metrics", type=int, default=2_000)
    args = parser.parse_args()
    import os

    load = os.getloadavg()[0]
    result = asyncio.run(bench(args.lines, args.metrics))
    print(f"{args.lines} lines + {args.metrics * 11 // 10} metric events (load average {load:.2f}):")
    for key, value in result.items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    return 0 if result["cpu_s"] < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
