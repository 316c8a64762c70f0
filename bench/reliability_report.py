"""The fault cases of docs/reliability.md, counted: cases, events checked, events lost.

Run by hand, as root (the storage cases mount a tmpfs and an ext4 image; without root they are skipped and the
report says so): `python bench/reliability_report.py`. It runs the fault tests (tests/test_storage_faults.py,
tests/test_kill_drivers.py, the damaged-log readers of tests/test_reliability_cli.py) with
SPEEDCOPILOT_RELIABILITY_REPORT set, so each case appends one JSON line (see tests/support/reliability.py), then
prints the table for the docs. Events checked per case: the session log's events after the repair plus the metric
lines of the run's output.log (each compared with the log); for a damaged log, the events four readers showed.
Events lost: a metric line with no event, an event written before the fault and gone after it, an event a
reader dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_storage_faults.py", "tests/test_kill_drivers.py",
         "tests/test_reliability_cli.py::test_every_reader_keeps_every_valid_event_of_a_damaged_log_and_warns"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the cases as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speedcopilot-reliability-") as tmp:
        report = Path(tmp) / "cases.jsonl"
        env = {**os.environ, "SPEEDCOPILOT_RELIABILITY_REPORT": str(report)}
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *TESTS], cwd=ROOT,
                              env=env, capture_output=True, text=True)
        cases = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-400:]
    if args.json:
        print(json.dumps({"pytest": summary, "cases": cases}, indent=2))
        return done.returncode
    print(f"pytest: {summary}\n")
    for line in done.stdout.splitlines():
        if line.startswith(("FAILED", "ERROR")):
            print(line)
    print("| case | events checked | events lost |")
    print("|---|---:|---:|")
    for case in cases:
        print(f"| {case['case']} | {case['events_checked']:,} | {case['events_lost']} |")
    checked = sum(c["events_checked"] for c in cases)
    lost = sum(c["events_lost"] for c in cases)
    print(f"| **{len(cases)} cases** | **{checked:,}** | **{lost}** |")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
