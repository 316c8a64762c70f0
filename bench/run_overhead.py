"""What running through LocalRunner + watch_run costs a training run, versus running the script directly.

Usage: python bench/run_overhead.py [--script records/micro/record_0/train_gpt.py] [--pairs 5] [--steps 60]
                                    [--data DIR] [--fixture] [--poll 0.1]

Each pair runs the script once directly (`python script`, output to a file) and once through the runner
(detached process group, wrapper shell, log tailing, parsing every line), in alternating order so that drift
of the machine cancels out. Reported: the median per-pair overhead of the wall time, and of the script's own
train_time (its last printed value) — the second shows whether the watcher steals CPU from training.
MICRO_MAX_STEPS=--steps shortens a micro record. With --fixture (or when the script is missing) a CPU-bound
pure-Python stand-in that prints upstream-format lines is used instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copilot.core.runs.logparse import LogParser  # noqa: E402
from copilot.core.runs import LocalRunner, RunSpec, new_run_id, watch_run  # noqa: E402

FIXTURE = """\
import os, time
steps = int(os.environ.get("MICRO_MAX_STEPS", "60"))
t0 = time.perf_counter()
x = 0
for step in range(1, steps + 1):
    for i in range(200_000):  # ~20-40 ms of pure-Python work per step
        x = (x * 31 + i) % 1_000_003
    t = (time.perf_counter() - t0) * 1000
    print(f"step:{step}/{steps} train_loss:{4.0 - step / steps:.4f} train_time:{t:.0f}ms step_avg:{t / step:.2f}ms", flush=True)
    if step % 25 == 0 or step == steps:
        print(f"step:{step}/{steps} val_loss:{4.0 - step / steps:.4f} train_time:{t:.0f}ms step_avg:{t / step:.2f}ms", flush=True)
"""


def last_train_time(log: Path) -> float | None:
    parser = LogParser()
    parser.feed(log.read_text(errors="replace"))
    parser.flush()
    times = [p.train_time_ms for p in parser.points if p.train_time_ms is not None]
    return times[-1] if times else None


WATCHER_CPU: list[tuple[float, float, float]] = []  # (watcher CPU s, run CPU s, wall s) per watched run


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


DIRECT_CPU: list[float] = []  # CPU seconds of each direct run


def run_direct(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    cpu = children_cpu()
    start = time.perf_counter()
    with open(log, "wb") as out:
        # Its own session like a watched run: with Linux scheduler autogroups a new session is its own
        # scheduling group, so a direct run in our session would not be a like-for-like comparison.
        subprocess.run(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=True, start_new_session=True
        )
    elapsed = time.perf_counter() - start
    DIRECT_CPU.append(children_cpu() - cpu)
    return elapsed


def run_watched(
    command: list[str], cwd: Path, env: dict[str, str], runs: Path, poll_s: float
) -> tuple[float, float, Path]:
    """(seconds until watch_run returned, the runner's own wall_time_s of the process, log path); also adds
    the watcher's CPU seconds and the run's CPU seconds to WATCHER_CPU."""
    run_id = new_run_id()
    spec = RunSpec(run_id, command, cwd, runs / run_id, env, target_val_loss=0.0, hang_timeout_s=None)
    cpu = time.process_time()
    children = children_cpu()
    start = time.perf_counter()
    handle = LocalRunner().start(spec)
    result = asyncio.run(watch_run(handle, spec, poll_s=poll_s))
    elapsed = time.perf_counter() - start
    run_cpu = children_cpu() - children
    WATCHER_CPU.append((time.process_time() - cpu, run_cpu, elapsed))
    if result.exit_code != 0:
        tail = "\n".join(result.error_tail)
        raise SystemExit(f"watched run failed ({result.outcome.value}, exit {result.exit_code}):\n{tail}")
    return elapsed, result.wall_time_s, spec.run_dir / "output.log"


def micro_data_dir(given: str | None, scratch: Path) -> str:
    if given:
        return given
    if os.environ.get("SPEEDCOPILOT_MICRO_DATA"):
        return os.environ["SPEEDCOPILOT_MICRO_DATA"]
    from copilot.core.tracks.microdata import micro_data_ready, micro_dir, prepare_micro_data

    if micro_data_ready():
        return str(micro_dir())
    print("micro data not prepared; generating the small set in a temporary folder", flush=True)
    prepare_micro_data(scratch, size="small")
    return str(micro_dir(scratch))


def pct(a: float, b: float) -> float:
    return (a - b) / b * 100.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--script", default=str(ROOT / "records/micro/record_0/train_gpt.py"))
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=60, help="sets MICRO_MAX_STEPS")
    ap.add_argument("--data", help="micro data folder (default: prepared data, else a small temporary set)")
    ap.add_argument("--fixture", action="store_true", help="use the CPU-bound stand-in script")
    ap.add_argument("--poll", type=float, default=0.1, help="watch_run poll interval (s)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="run-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        env = {**os.environ, "MICRO_MAX_STEPS": str(args.steps), "PYTHONUNBUFFERED": "1"}
        script = Path(args.script)
        if args.fixture or not script.exists():
            if not args.fixture:
                print(f"{script} not found: using the CPU-bound fixture", flush=True)
            script = tmp / "fixture.py"
            script.write_text(FIXTURE)
            label = "CPU-bound fixture (pure Python)"
        else:
            env["SPEEDCOPILOT_MICRO_DATA"] = micro_data_dir(args.data, tmp)
            label = str(script.relative_to(ROOT) if script.is_relative_to(ROOT) else script)
        command = [sys.executable, str(script.resolve())]
        cwd = script.parent.resolve()
        (tmp / "runs").mkdir()

        walls: list[tuple[float, float]] = []
        lifetimes: list[tuple[float, float]] = []
        trains: list[tuple[float, float]] = []
        for pair in range(args.pairs):
            order = ("direct", "watched") if pair % 2 == 0 else ("watched", "direct")
            got: dict[str, tuple[float, float | None]] = {}
            lifetime = 0.0
            for mode in order:
                if mode == "direct":
                    log = tmp / f"direct-{pair}.log"
                    wall = run_direct(command, cwd, env, log)
                else:
                    wall, lifetime, log = run_watched(command, cwd, env, tmp / "runs", args.poll)
                got[mode] = (wall, last_train_time(log))
            (dw, dt), (ww, wt) = got["direct"], got["watched"]
            walls.append((dw, ww))
            lifetimes.append((dw, lifetime))
            if dt and wt:
                trains.append((dt, wt))
            train_note = f"  train_time {dt:.0f} -> {wt:.0f} ms ({pct(wt, dt):+.2f}%)" if dt and wt else ""
            print(
                f"pair {pair + 1}/{args.pairs}: wall {dw:.2f} -> {ww:.2f} s ({pct(ww, dw):+.2f}%), "
                f"process lifetime {lifetime:.2f} s ({pct(lifetime, dw):+.2f}%){train_note}",
                flush=True,
            )

        print()
        print(f"script: {label}; MICRO_MAX_STEPS={args.steps}; pairs: {args.pairs}; poll {args.poll} s")
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
        print(
            f"wall: direct median {statistics.median(w[0] for w in walls):.2f} s, watched median "
            f"{statistics.median(w[1] for w in walls):.2f} s; median per-pair overhead "
            f"{statistics.median(pct(w, d) for d, w in walls):+.2f}% (until the result is known, incl. <= poll)"
        )
        print(
            "process lifetime measured by the runner (wrapper start to exit_code): median per-pair overhead "
            f"{statistics.median(pct(w, d) for d, w in lifetimes):+.2f}%"
        )
        watcher = sum(w for w, _, _ in WATCHER_CPU)
        run_cpu = sum(r for _, r, _ in WATCHER_CPU)
        wall = sum(e for _, _, e in WATCHER_CPU)
        print(
            f"watcher CPU (start + tail + parse + classify, in this process): {watcher:.3f} s over {wall:.1f} s of "
            f"watched runs = {watcher / wall * 100:.3f}% of one core, {watcher / run_cpu * 100:.3f}% of the runs' "
            f"own CPU time ({run_cpu:.1f} s)"
        )
        cpu_pairs = list(zip(DIRECT_CPU, (r for _, r, _ in WATCHER_CPU)))
        print(
            f"the script's own CPU time (direct -> watched, robust to other load): median per-pair overhead "
            f"{statistics.median(pct(w, d) for d, w in cpu_pairs):+.2f}% "
            f"({', '.join(f'{d:.1f}->{w:.1f} s' for d, w in cpu_pairs)})"
        )
        if trains:
            print(
                f"script train_time: median per-pair overhead {statistics.median(pct(w, d) for d, w in trains):+.2f}%"
            )


if __name__ == "__main__":
    main()
