"""The micro track: our own CPU ladder of records on a synthetic corpus (records/micro/)."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from copilot.core.errors import TrackError
from copilot.core.runs.metrics import MetricPoint
from copilot.core.tracks.base import HINT_LEVELS, RecordInfo
from copilot.core.tracks.microlayout import default_data_dir, micro_data_ready, micro_dir
from copilot.resources import records_dir

if TYPE_CHECKING:
    from copilot.core.tracks.microdata import MicroDataInfo

HINT_FILES = {1: "level_1_pseudocode.txt", 2: "level_2_description.txt", 3: "level_3_paper.txt"}
PREPARE_COMMAND = "speedcopilot data prepare --track micro"


def micro_records_dir() -> Path:
    return records_dir() / "micro"


def load_catalog(root: Path | None = None) -> dict[str, Any]:
    path = (root or micro_records_dir()) / "catalog.toml"
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise TrackError(f"micro track catalogue missing at {path}; reinstall speedcopilot") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TrackError(f"micro track catalogue {path} is not valid TOML: {exc}") from exc


def _record_info(entry: dict[str, Any], default_machine: str | None) -> RecordInfo:
    known = {"number", "name", "description", "time_s", "steps", "val_loss", "machine", "curve"}
    extra = {k: v for k, v in entry.items() if k not in known}
    extra.setdefault("folder", f"record_{entry['number']}")
    return RecordInfo(
        number=int(entry["number"]),
        name=str(entry["name"]),
        description=str(entry.get("description", "")),
        time_s=float(entry["time_s"]) if entry.get("time_s") is not None else None,
        steps=int(entry["steps"]) if entry.get("steps") is not None else None,
        val_loss=float(entry["val_loss"]) if entry.get("val_loss") is not None else None,
        machine=entry.get("machine", default_machine),
        folder=f"record_{entry['number']}",
        extra=extra,
    )


class MicroTrack:
    """Track protocol implementation for the built-in CPU ladder."""

    name = "micro"
    seed_env = "MICRO_SEED"  # the variable the record scripts seed themselves from (baselines vary it)
    script_name = "train_gpt.py"

    def __init__(self, data_dir: Path | None = None, root: Path | None = None) -> None:
        self._root = root or micro_records_dir()
        self._catalog = load_catalog(self._root)
        self._data_dir = data_dir
        self.target_val_loss = float(self._catalog["target_val_loss"])
        self.script_name = str(self._catalog.get("script", "train_gpt.py"))
        machine = self._catalog.get("machine")
        self._entries = {int(e["number"]): e for e in self._catalog.get("records", [])}
        self._records = [_record_info(self._entries[n], machine) for n in sorted(self._entries)]

    # -- data ---------------------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """The base data folder (micro shards live in <data_dir>/micro)."""
        return self._data_dir if self._data_dir is not None else default_data_dir()

    @property
    def shards_dir(self) -> Path:
        return micro_dir(self.data_dir)

    def data_ready(self) -> bool:
        return micro_data_ready(self.data_dir)

    def prepare_data(self, progress: Callable[[str, float], None] | None = None, force: bool = False) -> MicroDataInfo:
        from copilot.core.tracks.microdata import prepare_micro_data  # numpy: only when generating

        return prepare_micro_data(self.data_dir, progress=progress, force=force)

    # -- records ------------------------------------------------------------------------------------

    @property
    def rules(self) -> str:
        """The track's rules (RULES.md beside the catalogue, or an inline `rules` text)."""
        if "rules" in self._catalog:
            return str(self._catalog["rules"])
        path = self._root / str(self._catalog.get("rules_file", "RULES.md"))
        try:
            return path.read_text(encoding="utf-8")
        except OSError:
            return ""

    def records(self) -> list[RecordInfo]:
        return list(self._records)

    def record(self, number: int) -> RecordInfo:
        for info in self._records:
            if info.number == number:
                return info
        valid = ", ".join(str(r.number) for r in self._records)
        raise TrackError(f"micro track has no record {number}; valid record numbers: {valid}")

    def record_files(self, number: int) -> dict[str, str]:
        info = self.record(number)
        path = self._root / (info.folder or f"record_{number}") / self.script_name
        try:
            return {self.script_name: path.read_text(encoding="utf-8")}
        except OSError as exc:
            raise TrackError(f"micro record {number} script missing at {path}; reinstall speedcopilot") from exc

    def hint(self, number: int, level: int) -> str | None:
        if level not in HINT_LEVELS:
            raise TrackError(f"hint level must be one of {', '.join(map(str, HINT_LEVELS))}, got {level}")
        self.record(number)
        path = self._root / "hints" / f"record_{number}" / HINT_FILES[level]
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def prepare_workdir(self, workdir: Path) -> None:
        del workdir  # the micro scripts find their data through SPEEDCOPILOT_MICRO_DATA

    def launch_command(self, workdir: Path, gpus: int) -> list[str]:
        del workdir, gpus  # CPU track: one process, run with cwd=workdir
        return [sys.executable, self.script_name]

    def run_env(self) -> dict[str, str]:
        if not self.data_ready():
            raise TrackError(f"micro data is not prepared in {self.shards_dir}; run `{PREPARE_COMMAND}` first")
        # passive OpenMP waiting: spinning threads made steps 3-10x slower on a shared 2-core machine
        return {"SPEEDCOPILOT_MICRO_DATA": str(self.shards_dir), "OMP_NUM_THREADS": "2",
                "OMP_WAIT_POLICY": "PASSIVE"}

    def reference_curve(self, number: int) -> list[MetricPoint]:
        info = self.record(number)
        points = []
        for row in self._entries[info.number].get("curve", []):
            step, time_ms, val_loss = row
            points.append(MetricPoint(step=int(step), total_steps=info.steps, val_loss=float(val_loss),
                                      train_time_ms=float(time_ms), step_avg_ms=float(time_ms) / max(int(step), 1)))
        return points


__all__ = ["MicroTrack", "load_catalog", "micro_records_dir", "HINT_FILES", "PREPARE_COMMAND"]
