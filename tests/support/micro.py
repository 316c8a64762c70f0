"""Helpers for the micro-track tests: a tiny data set, running a record script, parsing its lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

VAL_RE = re.compile(r"^step:(\d+)/(\d+) val_loss:(\d+\.\d{4}) train_time:(\d+)ms step_avg:(\d+\.\d{2})ms$")
TRAIN_RE = re.compile(r"^step:(\d+)/(\d+) train_loss:(\d+\.\d{4}) train_time:(\d+)ms step_avg:(\d+\.\d{2})ms$")


@dataclass(frozen=True)
class Line:
    kind: str  # "val" | "train"
    step: int
    total: int
    loss: float
    time_ms: int


def parse_lines(text: str) -> tuple[list[Line], list[str]]:
    """Parsed step lines and the lines that matched neither format."""
    parsed, other = [], []
    for raw in text.splitlines():
        for kind, regex in (("val", VAL_RE), ("train", TRAIN_RE)):
            m = regex.match(raw)
            if m:
                parsed.append(Line(kind, int(m[1]), int(m[2]), float(m[3]), int(m[4])))
                break
        else:
            other.append(raw)
    return parsed, other


def run_record(script: Path, data: Path, *, steps: int, val_every: int, windows: int, seed: int = 0,
               timeout: float = 120, extra_env: dict[str, str] | None = None,
               argv: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update({"SPEEDCOPILOT_MICRO_DATA": str(data), "MICRO_MAX_STEPS": str(steps), "MICRO_VAL_EVERY": str(val_every),
                "MICRO_VAL_WINDOWS": str(windows), "MICRO_SEED": str(seed), "OMP_NUM_THREADS": "2"})
    env.update(extra_env or {})
    cmd = argv if argv is not None else [sys.executable, script.name]
    return subprocess.run(cmd, cwd=script.parent, env=env, capture_output=True, text=True, timeout=timeout)
