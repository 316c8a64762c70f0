"""Counting for the reliability tests: the metric lines a run's output.log holds (read with the tests' own regexes,
not the product's parser), and one JSON line per fault case for docs/reliability.md.

Set SPEEDCOPILOT_RELIABILITY_REPORT=<file> to collect the cases (bench/reliability_report.py does, then sums).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.support.micro import parse_lines

REPORT_ENV = "SPEEDCOPILOT_RELIABILITY_REPORT"


def metric_lines(run_dir: Path) -> list[tuple[int, float | None, float | None]]:
    """(step, val_loss, train_loss) of every metric line in the run's output.log."""
    try:
        text = (run_dir / "output.log").read_text(errors="replace")
    except FileNotFoundError:
        return []
    parsed, _ = parse_lines(text)
    return [(line.step, line.loss if line.kind == "val" else None, line.loss if line.kind == "train" else None)
            for line in parsed]


# read once, at import: the tests' isolation fixture clears every SPEEDCOPILOT_* variable before each test
_REPORT_PATH = os.environ.get(REPORT_ENV)


def record_case(case: str, *, events_checked: int, events_lost: int, **extra: object) -> None:
    path = _REPORT_PATH
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"case": case, "events_checked": events_checked, "events_lost": events_lost, **extra})
                 + "\n")
