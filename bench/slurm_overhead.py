"""What SLURM adds before a run's first output line: submit -> first line, through SlurmRunner + watch_run.

Usage: python bench/slurm_overhead.py [--runs 10] [--steps 4] [--train-pairs 3] [--train-steps 30] [--data DIR]
                                      [--use-env] [--json FILE]

By default a throw-away cluster is started on this machine (the tests' fixture: munged, slurmctld, slurmd;
needs root and slurm-wlm + munge); --use-env submits to whatever cluster SLURM_CONF / slurm.conf names.
Two kinds of runs, interleaved so that drift of the machine cancels out:
  trivial  `sh -c 'echo first'`: submit -> first line is the scheduler's whole overhead
  micro    the micro track's record 0 with MICRO_MAX_STEPS=--steps, once through SLURM and once through
           LocalRunner: the difference of their first-line latencies is what SLURM adds to a real run
Reported per kind: median and range of submit -> first line (what watch_run's on_line saw; the watcher polls
every 0.05 s), of queue time (submit -> the job script's `started` file) and of start -> first line.
Then raw sbatch without the runner: submit -> a one-line job's first command, with --export=NONE (what the
runner uses; SLURM then loads the user's login environment on the node) and with --export=ALL.
Last, --train-pairs pairs of longer micro runs (--train-steps), through SLURM and locally in alternating
order: the script's own train_time, to see whether training itself runs slower inside a job.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copilot.core.runs import LocalRunner, RunSpec, new_run_id, watch_run  # noqa: E402
from copilot.core.runs.slurm import SlurmRunner  # noqa: E402
from copilot.core.tracks.microdata import micro_dir, prepare_micro_data  # noqa: E402
from copilot.resources import records_dir  # noqa: E402

POLL = dict(poll_s=0.05, kill_grace_s=1.0)


async def first_line_latency(runner: Any, spec: RunSpec) -> dict[str, float | None]:
    first: list[float] = []

    def on_line(_: str) -> None:
        if not first:
            first.append(time.time())

    submitted = time.time()
    handle = runner.start(spec)
    result = await watch_run(handle, spec, on_line=on_line, **POLL)
    if result.exit_code != 0:
        raise SystemExit(f"run {spec.run_id} failed ({result.outcome.value}): {result.error_tail[-3:]}")
    started = handle.started_at
    return {
        "first_line_s": first[0] - submitted if first else None,
        "queue_s": handle.queue_time_s if handle.queue_time_s is not None else started - submitted,
        "start_to_first_s": first[0] - started if first else None,
        "wall_s": result.wall_time_s,
    }


def trivial_spec(base: Path) -> RunSpec:
    run_id = new_run_id()
    work = base / "work"
    work.mkdir(exist_ok=True)
    return RunSpec(run_id=run_id, command=["/bin/sh", "-c", "echo first"], cwd=work, run_dir=base / "runs" / run_id,
                   env={"PATH": "/usr/bin:/bin"}, target_val_loss=3.0, timeout_s=300.0, hang_timeout_s=300.0)


def micro_spec(base: Path, data: Path, steps: int) -> RunSpec:
    run_id = new_run_id()
    work = base / "micro-ws"
    if not work.exists():
        work.mkdir()
        shutil.copy(records_dir() / "micro" / "record_0" / "train_gpt.py", work / "train_gpt.py")
    env = {"SPEEDCOPILOT_MICRO_DATA": str(data), "MICRO_MAX_STEPS": str(steps), "MICRO_VAL_EVERY": str(steps),
           "MICRO_VAL_WINDOWS": "4", "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": "PASSIVE"}
    return RunSpec(run_id=run_id, command=[sys.executable, "train_gpt.py"], cwd=work, run_dir=base / "runs" / run_id,
                   env=env, target_val_loss=1.6, timeout_s=600.0, hang_timeout_s=300.0)


def summary(values: list[float | None]) -> str:
    got = [v for v in values if v is not None]
    if not got:
        return "–"
    return f"median {statistics.median(got):.3f} s (range {min(got):.3f}–{max(got):.3f}, n={len(got)})"


def machine(tool_env: dict[str, str] | None) -> dict[str, Any]:
    version = subprocess.run(["sbatch", "--version"], capture_output=True, text=True, check=False,
                             env=tool_env).stdout.strip()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()
    return {"date": time.strftime("%Y-%m-%d"), "commit": commit, "slurm": version, "python": platform.python_version(),
            "cpus": os.cpu_count(), "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform()}


def raw_sbatch_start(tool_env: dict[str, str] | None, base: Path, export: str) -> float:
    """Seconds from sbatch to the job's first command (it creates a file; its mtime is the moment)."""
    marker = base / f"raw-{export}-{time.monotonic_ns()}"
    script = base / "raw.sh"
    script.write_text('#!/bin/sh\n: > "$1"\n')
    submitted = time.time()
    out = subprocess.run(["sbatch", "--parsable", f"--export={export}", "--output=/dev/null", str(script),
                          str(marker)], env=tool_env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"sbatch failed: {out.stderr.strip()}")
    deadline = time.monotonic() + 300
    while not marker.exists():
        if time.monotonic() > deadline:
            raise SystemExit("a raw sbatch job did not start within 300 s")
        time.sleep(0.01)
    return marker.stat().st_mtime - submitted


async def bench(runs: int, steps: int, data: Path | None, tool_env: dict[str, str] | None, base: Path,
                train_pairs: int, train_steps: int) -> dict:
    before = machine(tool_env)
    if data is None:
        prepare_micro_data(base / "microdata", size="small")
        data = micro_dir(base / "microdata")
    slurm = SlurmRunner("slurm://", tool_env=tool_env, state_poll_s=0.2)
    local = LocalRunner()
    rows: dict[str, list[dict[str, float | None]]] = {"trivial": [], "micro_slurm": [], "micro_local": []}
    await first_line_latency(slurm, trivial_spec(base))  # warm-up: first job, cold caches
    for i in range(runs):
        rows["trivial"].append(await first_line_latency(slurm, trivial_spec(base)))
        pair = [("micro_slurm", slurm), ("micro_local", local)]
        for name, runner in pair if i % 2 == 0 else reversed(pair):
            rows[name].append(await first_line_latency(runner, micro_spec(base, data, steps)))
        print(f"run {i + 1}/{runs}: trivial {rows['trivial'][-1]['first_line_s']:.3f} s, "
              f"micro slurm {rows['micro_slurm'][-1]['first_line_s']:.3f} s, "
              f"local {rows['micro_local'][-1]['first_line_s']:.3f} s", flush=True)
    added = [s["first_line_s"] - loc["first_line_s"] for s, loc in zip(rows["micro_slurm"], rows["micro_local"])
             if s["first_line_s"] is not None and loc["first_line_s"] is not None]
    raw: dict[str, list[float]] = {"NONE": [], "ALL": []}
    for i in range(runs):
        for export in ("NONE", "ALL") if i % 2 == 0 else ("ALL", "NONE"):
            raw[export].append(raw_sbatch_start(tool_env, base, export))
    train: dict[str, list[float]] = {"slurm": [], "local": []}
    for i in range(train_pairs):
        pair = [("slurm", slurm), ("local", local)]
        for name, runner in pair if i % 2 == 0 else reversed(pair):
            spec = micro_spec(base, data, train_steps)
            result = await watch_run(runner.start(spec), spec, **POLL)
            if result.train_time_ms is not None:
                train[name].append(result.train_time_ms / 1000.0)
    return {"machine": before, "rows": rows, "added_by_slurm_micro": added, "raw_sbatch_start": raw,
            "train_time_s": train,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--train-pairs", type=int, default=3)
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--data", type=Path, default=None, help="prepared micro data (default: a small set in a temp dir)")
    ap.add_argument("--use-env", action="store_true", help="use the cluster SLURM_CONF names; start none")
    ap.add_argument("--json", type=Path, default=None, help="also write all measurements here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="slurm-bench-") as tmp:
        base = Path(tmp)
        cluster = None
        if not args.use_env:
            from tests.support.slurm import SlurmCluster

            try:
                cluster = SlurmCluster.start(base / "cluster")
            except BaseException as exc:  # pytest.skip outside pytest
                raise SystemExit(f"cannot start a local SLURM cluster: {exc}") from None
        try:
            out = asyncio.run(bench(args.runs, args.steps, args.data, cluster.env if cluster else None, base,
                                    args.train_pairs, args.train_steps))
        finally:
            if cluster is not None:
                cluster.stop()
    rows = out["rows"]
    print(json.dumps(out["machine"]))
    for name in rows:
        print(f"{name:12s} submit->first line {summary([r['first_line_s'] for r in rows[name]])}")
        print(f"{'':12s} queue (submit->started) {summary([r['queue_s'] for r in rows[name]])}")
        print(f"{'':12s} started->first line {summary([r['start_to_first_s'] for r in rows[name]])}")
        print(f"{'':12s} run (started->ended) {summary([r['wall_s'] for r in rows[name]])}")
    print(f"SLURM adds to a micro run's first line: {summary(out['added_by_slurm_micro'])}")
    for export, values in out["raw_sbatch_start"].items():
        print(f"raw sbatch --export={export:4s} submit->job's first command {summary(values)}")
    for name, values in out["train_time_s"].items():
        print(f"micro train_time through {name:5s} {summary(values)}")
    print(f"load average after: {out['loadavg_after']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
