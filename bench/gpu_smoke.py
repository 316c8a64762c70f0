"""Train a few nanogpt records for ~30 steps each through speedcopilot's own session, runner and log parser.

Called by bench/gpu_smoke.sh after the sync, the synthetic shards and the doctor (run that script, not this).
For each record: a session on the record (workspace + data links), one run with `torchrun --nproc_per_node=1`,
watched by speedcopilot's watcher; the run is cancelled once the parser has seen `--steps` training steps.
Prints step time, peak GPU memory (nvidia-smi, sampled each second) and the parsed metrics; exits non-zero on
any mismatch (no metrics parsed, too few steps, a crash that is not an expected offline failure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from copilot.core.llm.providers import OracleProvider  # noqa: E402
from copilot.core.runs.logparse import parse_line  # noqa: E402
from copilot.core.session import Session, SessionOptions  # noqa: E402
from copilot.core.tracks.doctor import script_needs  # noqa: E402
from copilot.core.tracks.nanogpt import NanoGPTTrack  # noqa: E402


class MemorySampler:
    """The largest `memory.used` nvidia-smi reports while a run goes (MiB)."""

    def __init__(self) -> None:
        self.peak_mib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                                     capture_output=True, text=True, timeout=10).stdout
                self.peak_mib = max([self.peak_mib, *(int(x) for x in out.split() if x.isdigit())])
            except (OSError, subprocess.SubprocessError, ValueError):
                pass


async def smoke_one(track: NanoGPTTrack, number: int, steps: int, timeout_s: float, sessions: Path) -> dict:
    session = Session.create(sessions, track, number, OracleProvider(track, number),
                             options=SessionOptions(gpus=1, run_timeout_s=timeout_s, hang_timeout_s=timeout_s))
    script = track.record_files(number)[track.script_name]
    needs = script_needs(script)
    train_steps: list[int] = []
    started = time.monotonic()
    try:
        view = session.start_run()

        def on_line(line: str) -> None:
            point = parse_line(line)
            if point is not None and point.val_loss is None and point.step is not None:
                train_steps.append(point.step)
                if point.step >= steps and session.live_runs():
                    session.cancel_run(view.run_id)

        with MemorySampler() as memory:
            result = await session.watch_run(view.run_id, on_line=on_line)
        points = session.state.runs[view.run_id].points
    finally:
        session.close(stop_runs=True)
    trains = [p for p in points if p.val_loss is None and p.step_avg_ms is not None and math.isfinite(p.step_avg_ms)]
    vals = [p for p in points if p.val_loss is not None]
    row = {
        "record": number, "code_source": track.code_source(number), "outcome": result.outcome.value,
        "steps_seen": max(train_steps, default=0), "step_avg_ms": trains[-1].step_avg_ms if trains else None,
        "peak_memory_mib": result.peak_memory_mib or memory.peak_mib or None,
        "val_losses": [(p.step, p.val_loss) for p in vals], "train_points": len(trains),
        "error_summary": result.error_summary, "wall_s": round(time.monotonic() - started, 1), "needs": needs,
    }
    offline = any("network" in n for n in needs)
    if result.outcome.value in ("crashed", "hung", "timed_out") and offline:
        row["verdict"] = "skipped: needs network at run time (" + "; ".join(n for n in needs if "network" in n) + ")"
    elif row["steps_seen"] >= steps and trains:
        row["verdict"] = "ok"
    else:
        row["verdict"] = f"MISMATCH: {row['steps_seen']} of {steps} steps parsed, outcome {row['outcome']}"
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="5,12,21", help="record numbers; 'newest' = the newest with code")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=150.0, help="seconds per record (compile included)")
    parser.add_argument("--sessions", type=Path, required=True)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    track = NanoGPTTrack()
    with_code = [r.number for r in track.records() if r.has_code]
    numbers = [max(with_code) if n.strip() == "newest" else int(n) for n in args.records.split(",") if n.strip()]
    rows = []
    for number in numbers:
        row = asyncio.run(smoke_one(track, number, args.steps, args.timeout, args.sessions))
        rows.append(row)
        val = ", ".join(f"{s}:{v:.4f}" for s, v in row["val_losses"]) or "–"
        step = f"{row['step_avg_ms']:.1f} ms" if row["step_avg_ms"] is not None else "–"
        print(f"record {number:3d} ({row['code_source']}): {row['verdict']} · {row['steps_seen']} steps · "
              f"step {step} · peak {row['peak_memory_mib'] or '–'} MiB · val {val} · wall {row['wall_s']} s"
              + (f" · {row['error_summary']}" if row["error_summary"] else ""), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    bad = [r for r in rows if r["verdict"].startswith("MISMATCH")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
