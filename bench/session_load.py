"""How long a 100k-event session takes to load: read_events (tolerant reader) + SessionState fold.

Run by hand: `python bench/session_load.py [--events 100000]`. Writes a realistic log (mostly metric events of a
few runs, plus suggestions, decisions and commits) into a temp folder through the real EventLog writer.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from copilot.core.edits.model import Hunk
from copilot.core.session import schema as s
from copilot.core.session.events import EVENTS_FILE, EventLog, read_events
from copilot.core.session.projection import SessionState


def write_session(folder: Path, n_events: int) -> None:
    log = EventLog(folder)
    log.open()
    log.append(s.SessionStarted(session_id="bench", mode="copilot", track="micro", record=0, target_val_loss=1.6,
                                start_commit="0" * 40, branch="main"))
    run, step = 0, 0
    for i in range(n_events - 1):
        if i % 5000 == 0:
            sid, sha = f"s{i}", f"{i:040d}"
            log.append(s.SuggestionRequested(suggestion_id=sid))
            log.append(s.SuggestionReceived(suggestion_id=sid, rationale="r",
                                            hunks=[Hunk(0, "train_gpt.py", "a\n", "b\n")]))
            log.append(s.CommitCreated(sha=sha, parent=None, provenance="ai", message="m", suggestion_id=sid))
            log.append(s.SuggestionDecided(suggestion_id=sid, commit=sha, decisions=[s.HunkDecision(0, "accept")]))
            run += 1
            step = 0
            log.append(s.RunStarted(run_id=f"r{run}", commit=sha, command=["python"]))
        step += 1
        loss = 3.0 - step * 1e-4
        log.append(s.Metric(run_id=f"r{run}", step=step, train_time_ms=step * 250.0,
                            val_loss=loss if step % 10 == 0 else None, train_loss=None if step % 10 == 0 else loss))
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        write_session(folder, args.events)
        write_s = time.perf_counter() - t0
        size = (folder / EVENTS_FILE).stat().st_size
        timings, cpu = [], []
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            result = read_events(folder / EVENTS_FILE)
            state = SessionState.from_events(result.events)
            timings.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(f"{len(result.events)} events, {size / 1e6:.1f} MB; write (fsync each) {write_s:.1f} s; "
              f"load+fold wall best {min(timings):.3f} s, median {statistics.median(timings):.3f} s; "
              f"CPU best {min(cpu):.3f} s, median {statistics.median(cpu):.3f} s; "
              f"{len(state.runs)} runs, {sum(r.point_count for r in state.runs.values())} points")


if __name__ == "__main__":
    main()
