"""A two-record track whose "training scripts" are tiny Python programs printing upstream-format lines.

Session tests use it so they exercise the real runner, parser, git and provider paths in about a second per run,
independent of how long the micro track's real records train.
"""

from __future__ import annotations

import sys
from pathlib import Path

from copilot.core.errors import TrackError
from copilot.core.runs.metrics import MetricPoint
from copilot.core.tracks.base import RecordInfo

_TEMPLATE = '''import sys, time

STEPS = {steps}
VAL_EVERY = 5
SLEEP_S = 0.01
STEP_MS = 10.0

LR = {lr}
WARMUP = 0
NOTE = "fixture"
VERBOSE = True

DECAY = {decay}  # loss multiplier per step


def main() -> None:
    loss = 4.0
    train_time_ms = 0.0
    for step in range(STEPS + 1):
        if step % VAL_EVERY == 0 or step == STEPS:
            print(f"step:{{step}}/{{STEPS}} val_loss:{{loss:.4f}} train_time:{{train_time_ms:.0f}}ms "
                  f"step_avg:{{train_time_ms / max(step, 1):.2f}}ms", flush=True)
        if step == STEPS:
            break
        time.sleep(SLEEP_S)
        train_time_ms += STEP_MS
        loss *= DECAY
        print(f"step:{{step + 1}}/{{STEPS}} train_loss:{{loss:.4f}} train_time:{{train_time_ms:.0f}}ms "
              f"step_avg:{{train_time_ms / (step + 1):.2f}}ms", flush=True)


if __name__ == "__main__":
    main()
'''

RECORD_0 = _TEMPLATE.format(steps=30, lr=0.001, decay=0.97)
RECORD_1 = _TEMPLATE.format(steps=25, lr=0.003, decay=0.94)


class FixtureTrack:
    name = "fixture"
    target_val_loss = 2.0
    script_name = "train_gpt.py"

    def __init__(self) -> None:
        self._records = [
            RecordInfo(0, "baseline", "slow decay", time_s=0.23),
            RecordInfo(1, "higher lr", "faster decay", time_s=0.12),
        ]
        self._scripts = {0: RECORD_0, 1: RECORD_1}

    def records(self) -> list[RecordInfo]:
        return list(self._records)

    def record(self, number: int) -> RecordInfo:
        for r in self._records:
            if r.number == number:
                return r
        raise TrackError(f"no fixture record {number}; records: 0, 1")

    def record_files(self, number: int) -> dict[str, str]:
        self.record(number)
        return {self.script_name: self._scripts[number]}

    def hint(self, number: int, level: int) -> str | None:
        return "Raise the learning rate so the loss decays faster." if number == 0 else None

    def prepare_workdir(self, workdir: Path) -> None:
        del workdir  # the fixture scripts need nothing beside them

    def launch_command(self, workdir: Path, gpus: int) -> list[str]:
        return [sys.executable, self.script_name]

    def run_env(self) -> dict[str, str]:
        return {"PYTHONUNBUFFERED": "1"}

    def reference_curve(self, number: int) -> list[MetricPoint]:
        return [MetricPoint(step=0, val_loss=4.0, train_time_ms=0.0)]
