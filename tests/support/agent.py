"""Helpers for the autonomous-agent tests: model answers for the fixture track, event queries, tiny micro runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from copilot.core.session.events import EVENTS_FILE, Event, read_events

SCRIPT = "train_gpt.py"

# Env for micro-track runs that take seconds: one step, tiny validation.
MICRO_TINY_ENV = {"MICRO_MAX_STEPS": "1", "MICRO_VAL_EVERY": "1", "MICRO_VAL_WINDOWS": "2"}


def block(search: str, replace: str, rationale: str = "Change it.", path: str = SCRIPT) -> str:
    """A model answer with one SEARCH/REPLACE block."""
    return (f"{rationale}\n\n{path}\n```python\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n"
            f">>>>>>> REPLACE\n```\n")


# Answers for the fixture track (tests/support/fixture_track.py: RECORD_0 has DECAY = 0.97, LR = 0.001).
def good_decay(value: str = "0.94", frm: str = "0.97") -> str:
    """Faster loss decay: a good node (reaches the target sooner)."""
    return block(f"DECAY = {frm}  # loss multiplier per step", f"DECAY = {value}  # loss multiplier per step",
                 f"Decay faster: {value}.")


def crash_edit() -> str:
    """The script exits with status 1 before training: a crashed node."""
    return block("def main() -> None:\n    loss = 4.0",
                 "def main() -> None:\n    raise SystemExit(1)\n    loss = 4.0", "Exit early (broken).")


def nan_edit(frm: str = "0.97") -> str:
    """The loss becomes NaN: a diverged node."""
    return block(f"DECAY = {frm}  # loss multiplier per step", "DECAY = float('nan')  # loss multiplier per step",
                 "NaN decay (broken).")


def fix_crash() -> str:
    """Undo crash_edit (a debug node's answer)."""
    return block("    raise SystemExit(1)\n    loss = 4.0", "    loss = 4.0", "Remove the early exit.")


def malformed() -> str:
    """No edit blocks at all."""
    return "I would change the learning rate, but here is no edit block."


def wrong_search() -> str:
    """A block whose SEARCH text is nowhere in the script."""
    return block("this line is not in the script", "neither is this", "Edit a line that is not there.")


def slow_edit(sleep_s: float = 0.3) -> str:
    """Steps sleep longer: a slow run (for kill/resume tests)."""
    return block("SLEEP_S = 0.01", f"SLEEP_S = {sleep_s}", "Slow down (for the test).")


def held_edit(hold: Path) -> str:
    """The run waits before it trains while `hold` exists: live for as long as the test needs, whatever the load."""
    wait = f"SLEEP_S = 0.01\nimport os\nwhile os.path.exists({str(hold)!r}):\n    time.sleep(0.02)"
    return block("SLEEP_S = 0.01", wait, "Wait for the test (a held run).")


def broken_fixture_track() -> Any:
    """The fixture track whose starting record crashes (a broken setup: the baseline itself fails)."""
    from tests.support.fixture_track import RECORD_0, FixtureTrack

    track = FixtureTrack()
    broken = RECORD_0.replace("def main() -> None:", "def main() -> None:\n    raise RuntimeError('no data')")
    track._scripts = {**track._scripts, 0: broken}
    return track


# -- event queries ------------------------------------------------------------------------------------------


def events(session_dir: Path) -> list[Event]:
    return read_events(session_dir / EVENTS_FILE).events


def of_type(session_dir: Path, kind: str) -> list[Event]:
    return [e for e in events(session_dir) if e.type == kind]


def nodes_created(session_dir: Path) -> dict[int, Event]:
    return {int(e.get("node_id")): e for e in of_type(session_dir, "node_created")}


def nodes_scored(session_dir: Path) -> dict[int, list[Event]]:
    out: dict[int, list[Event]] = {}
    for e in of_type(session_dir, "node_scored"):
        out.setdefault(int(e.get("node_id")), []).append(e)
    return out


def micro_env(data_dir: Path) -> dict[str, str]:
    """Environment for a micro session using a small prepared corpus and tiny runs."""
    return {**MICRO_TINY_ENV, "SPEEDCOPILOT_DATA_DIR": str(data_dir)}


def clean_env(extra: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MICRO_", "OPENAI_"))}
    env.update({k: str(v) for k, v in extra.items()})
    return env
