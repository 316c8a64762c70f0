"""What every track offers the session engine: records, their files, hints, launch and target."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from copilot.core.runs.metrics import MetricPoint

HINT_LEVELS = (1, 2, 3)  # 1 pseudocode, 2 text description, 3 mini-paper (benchmark levels)


@dataclass(frozen=True)
class RecordInfo:
    """Catalogue facts of one record of a track."""

    number: int
    name: str
    description: str
    time_s: float | None  # the record's time to target in seconds (None if unknown)
    steps: int | None = None
    val_loss: float | None = None
    date: str | None = None
    contributors: str | None = None
    machine: str | None = None
    has_code: bool = True
    folder: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class Track(Protocol):
    """A ladder of records. Implementations: micro (built in, CPU) and nanogpt (upstream)."""

    name: str
    target_val_loss: float
    script_name: str  # the file the model edits, e.g. "train_gpt.py"

    def records(self) -> list[RecordInfo]:
        """Every record of the track, in ladder order."""
        ...

    def record(self, number: int) -> RecordInfo:
        """One record; raises TrackError naming the valid numbers if unknown."""
        ...

    def record_files(self, number: int) -> dict[str, str]:
        """Files that seed a workspace for this record: relative path -> text."""
        ...

    def hint(self, number: int, level: int) -> str | None:
        """Hint for the transition number -> number+1 at level 1..3, or None if none exists."""
        ...

    def prepare_workdir(self, workdir: Path) -> None:
        """Make a workspace ready to run: what the scripts expect beside them (data links), kept out of git.
        Called when the workspace is created and before each run; must be idempotent."""
        ...

    def launch_command(self, workdir: Path, gpus: int) -> list[str]:
        """The command that trains the workspace's script (run with cwd=workdir)."""
        ...

    def run_env(self) -> dict[str, str]:
        """Environment variables a run needs (data path, threads, ...)."""
        ...

    def reference_curve(self, number: int) -> list[MetricPoint]:
        """The record's own validation curve (for the live chart); empty if unknown."""
        ...
