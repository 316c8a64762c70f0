"""The real ladder: modded-nanogpt track 1 (GPT-2 small to 3.28 val loss on FineWeb, 8×H100 records).

Facts come from the shipped catalogue (records/nanogpt/catalog.toml); code, logs and curves from a sync of the
upstream repository (nanogpt_sync). Data is fetched by upstream's own `data/cached_fineweb10B.py`, run as a
subprocess so that this module never imports torch or huggingface_hub.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from copilot.core.errors import TrackError
from copilot.core.runs.metrics import MetricPoint
from copilot.core.tracks import nanogpt_data
from copilot.core.tracks import nanogpt_sync as sync
from copilot.core.tracks.base import RecordInfo
from copilot.core.tracks.nanogpt_data import SHARD_DIR, VAL_TOKENS
from copilot.resources import records_dir

VALID_GPUS = (1, 2, 4, 8)
MACHINE = "8×H100"
FOLDED_OUT = 7  # a pure PyTorch upgrade; the benchmark folds it out
BENCHMARK_LAST = 21


@dataclass(frozen=True)
class BenchmarkTask:
    """One task of the Automated LLM Speedrunning Benchmark: reach record to_record's time from from_record."""

    task_id: int
    from_record: int
    to_record: int
    from_time_s: float | None  # t_i
    to_time_s: float | None  # t_{i+1}

    @property
    def start_record(self) -> int:
        """The record whose code the task starts from. The same as from_record, except for task 7 (#6 → #8):
        it starts from record 7, which is record 6's code on the newer PyTorch (the benchmark's template)."""
        return self.task_id

    @property
    def hint_folder(self) -> str:
        """The benchmark's hint folder for this task: record_<N> holds the hints for #N → #N+1, so task 7 uses
        record_7 (untied head), not record_6 (the PyTorch upgrade the paper folds out)."""
        return f"record_{self.start_record}"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "start_record": self.start_record, "hint_folder": self.hint_folder}


@dataclass(frozen=True)
class GpuInfo:
    name: str
    memory_mib: int | None


def catalogue_path() -> Path:
    return records_dir() / "nanogpt" / "catalog.toml"


def load_catalogue(path: Path | None = None) -> dict[str, object]:
    try:
        with open(path or catalogue_path(), "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TrackError(f"the shipped nanogpt catalogue is unreadable ({exc}); reinstall speedcopilot") from exc


def _short_name(folder: str | None, description: str) -> str:
    if folder:
        tail = folder.split("_", 1)[1] if "_" in folder else folder
        if tail and not tail[0].isdigit():
            return tail
    return description if len(description) <= 40 else description[:39] + "…"


class NanoGPTTrack:
    name = "nanogpt"
    script_name = sync.MAIN_SCRIPT
    min_hang_timeout_s = 1200.0  # a first run compiles silently for ~7 minutes before any line

    def __init__(self, cache_dir: Path | None = None, hints_dir: Path | None = None,
                 data_dir: Path | None = None, catalogue_file: Path | None = None) -> None:
        self.cache_dir = cache_dir  # the speedcopilot cache root (None: platform default)
        self.hints_dir = hints_dir
        root = cache_dir or sync.default_cache_root()
        self.data_root = (data_dir or root / "data") / "nanogpt"  # DATA_PATH; shards in <data_root>/data/fineweb10B
        self._catalogue = load_catalogue(catalogue_file)
        self.target_val_loss = float(self._catalogue.get("target_val_loss", 3.28))  # type: ignore[arg-type]
        self._index: sync.SyncIndex | None = None
        self._index_mtime: float | None = None

    # -- index ------------------------------------------------------------------------------------------
    def index(self) -> sync.SyncIndex | None:
        path = sync.index_path(self.cache_dir)
        if not path.exists():
            return None
        mtime = path.stat().st_mtime
        if self._index is None or mtime != self._index_mtime:
            self._index, self._index_mtime = sync.SyncIndex.load(path), mtime
        return self._index

    def is_synced(self) -> bool:
        return sync.index_path(self.cache_dir).exists()

    def _require_index(self) -> sync.SyncIndex:
        index = self.index()
        if index is None:
            raise TrackError(
                "the nanogpt records are not synced yet; run `speedcopilot records sync` "
                "(needs internet, or --path to a local clone of modded-nanogpt)"
            )
        return index

    # -- records ----------------------------------------------------------------------------------------
    def _catalogue_rows(self) -> list[dict[str, object]]:
        return list(self._catalogue.get("records", []))  # type: ignore[arg-type]

    def records(self) -> list[RecordInfo]:
        """Record rows in ladder order; re-timings are folded into their record's extra["retimings"]."""
        cat = {str(r["key"]): r for r in self._catalogue_rows()}
        index = self.index()
        rows: list[dict[str, object]]
        if index is not None:
            rows = []
            for rec in index.records:
                merged = {**cat.get(rec.key, {}), **{k: v for k, v in asdict(rec).items() if v is not None}}
                if rec.steps is None and rec.key in cat:  # the catalogue's numbers when the log had none
                    merged["steps"], merged["val_loss"] = cat[rec.key].get("steps"), cat[rec.key].get("val_loss")
                rows.append(merged)
            synced_keys = {rec.key for rec in index.records}
            rows += [{**r, "has_code": False, "note": "not in the synced clone's README"}
                     for key, r in cat.items() if key not in synced_keys]
            rows.sort(key=lambda r: (int(r["number"]), bool(r.get("retiming")), str(r.get("date") or "")))  # type: ignore[arg-type]
        else:
            rows = [{**r, "has_code": False} for r in self._catalogue_rows()]
        out: dict[int, RecordInfo] = {}
        for row in rows:
            number = int(row["number"])  # type: ignore[arg-type]
            if row.get("retiming"):
                if number in out:
                    retimes = out[number].extra.setdefault("retimings", [])
                    retimes.append({"key": row["key"], "time_s": row.get("time_s"), "date": row.get("date")})  # type: ignore[union-attr]
                continue
            log_path = row.get("log_file") or row.get("log_path") or row.get("log_link")
            folder = row.get("folder") or _folder_of(log_path)
            description = str(row.get("description", ""))
            out[number] = RecordInfo(
                number=number,
                name=_short_name(str(folder) if folder else None, description),
                description=description,
                time_s=_float(row.get("time_s")),
                steps=_int(row.get("steps")),
                val_loss=_float(row.get("val_loss")),
                date=_str(row.get("date")),
                contributors=_str(row.get("contributors")),
                machine=MACHINE,
                has_code=bool(row.get("has_code")),
                folder=_str(folder),
                extra={"key": row.get("key", str(number)), "note": row.get("note")},
            )
        return sorted(out.values(), key=lambda r: r.number)

    def record(self, number: int) -> RecordInfo:
        records = self.records()
        for rec in records:
            if rec.number == number:
                return rec
        valid = f"{records[0].number}–{records[-1].number}" if records else "none"
        raise TrackError(f"nanogpt has no record {number}; valid numbers: {valid}")

    def record_files(self, number: int) -> dict[str, str]:
        index = self._require_index()
        rec = index.primary(number)
        if rec is None:
            raise TrackError(f"nanogpt has no record {number} in the synced index; run `speedcopilot records list`")
        if not rec.has_code:
            reason = rec.note or "no code"
            raise TrackError(f"nanogpt record {number} has no training code upstream ({reason}); start from another record")
        base = sync.nanogpt_cache_dir(self.cache_dir)
        files: dict[str, str] = {}
        for rel in rec.code_paths:
            path = base / rel
            try:
                files[path.name] = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise TrackError(f"{path} is missing ({exc}); run `speedcopilot records sync` again") from exc
        return files

    def hints_root(self) -> Path | None:
        """Where hint files are read (benchmark layout record_<n>/level_<level>_*.txt): --hints-dir if given,
        else the hints `records sync --benchmark` copied into the cache; None when neither exists. We ship none."""
        if self.hints_dir is not None:
            return Path(self.hints_dir)
        index = self.index()
        return Path(index.hints_dir) if index is not None and index.hints_dir else None

    def hint(self, number: int, level: int) -> str | None:
        """The hint for number → number+1 at level 1..3 (record_<number>/level_<level>_*.txt), or None."""
        root = self.hints_root()
        if root is None or level not in (1, 2, 3):
            return None
        matches = sorted((root / f"record_{number}").glob(f"level_{level}_*.txt"))
        for path in matches:
            try:
                return path.read_text(encoding="utf-8")
            except OSError:
                continue
        return None

    def code_source(self, number: int) -> str | None:
        """Where the record's code came from (upstream log/script, or the benchmark's template)."""
        index = self.index()
        rec = index.primary(number) if index else None
        return rec.code_source if rec is not None else None

    # -- runs -------------------------------------------------------------------------------------------
    def prepare_workdir(self, workdir: Path) -> None:
        """Lay out the data every era of script expects in a workspace (links only, excluded from git)."""
        nanogpt_data.prepare_workdir(Path(workdir), self.data_root)

    def launch_command(self, workdir: Path, gpus: int) -> list[str]:
        if gpus not in VALID_GPUS:
            raise TrackError(f"nanogpt runs on 1, 2, 4 or 8 GPUs (the scripts need 8 % world_size == 0), not {gpus}")
        return ["torchrun", "--standalone", f"--nproc_per_node={gpus}", self.script_name]

    def run_env(self) -> dict[str, str]:
        shards = self.data_root / SHARD_DIR
        return {
            "DATA_PATH": str(self.data_root),
            "NANOGPT_TRAIN_FILES": str(shards / "fineweb_train_*.bin"),
            "NANOGPT_VAL_FILES": str(shards / "fineweb_val_*.bin"),
            "NANOGPT_VAL_TOKENS": str(VAL_TOKENS),
        }

    def reference_curve(self, number: int) -> list[MetricPoint]:
        index = self.index()
        rec = index.primary(number) if index else None
        if rec is None or rec.log_copy is None:
            return []
        path = sync.nanogpt_cache_dir(self.cache_dir) / rec.log_copy
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return val_points(text)

    # -- data -------------------------------------------------------------------------------------------
    def data_ready(self) -> bool:
        shards = self.data_root / SHARD_DIR
        return any(shards.glob(nanogpt_data.VAL_GLOB)) and any(shards.glob(nanogpt_data.TRAIN_GLOB))

    def prepare_synthetic_data(self, train_tokens: int = 40_000_000, train_shards: int = 2) -> nanogpt_data.SyntheticInfo:
        """Small shards in the upstream format, offline: for smoke tests, never for records."""
        return nanogpt_data.write_synthetic_shards(self.data_root, train_tokens=train_tokens, train_shards=train_shards)

    def prepare_data(self, shards: int, progress: sync.Progress = None) -> Path:
        index = self._require_index()
        return prepare_nanogpt_data(shards, Path(index.clone_dir), self.data_root, progress=progress)


def val_points(text: str) -> list[MetricPoint]:
    from copilot.core.runs.logparse import parse_line

    points = []
    for line in text.splitlines():
        point = parse_line(line)
        if point is not None and point.val_loss is not None:
            points.append(point)
    return points


def _folder_of(log_path: object) -> str | None:
    """The dated record folder of a log path such as records/track_1_short/<folder>/run/x.txt."""
    if not log_path:
        return None
    parts = [p for p in str(log_path).split("/") if p]
    if parts and parts[0] == "records":
        parts = parts[1:]
    if parts and parts[0].startswith("track_"):
        parts = parts[1:]
    return parts[0] if len(parts) > 1 or (parts and "." not in parts[0]) else None


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _str(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


# -- benchmark tasks --------------------------------------------------------------------------------------


def benchmark_tasks(track: NanoGPTTrack | None = None) -> list[BenchmarkTask]:
    """The 19 tasks of the Automated LLM Speedrunning Benchmark: records 1–21, record 7 folded out."""
    times: dict[int, float | None] = {}
    rows = track.records() if track else None
    if rows is not None:
        times = {r.number: r.time_s for r in rows}
    else:
        for row in load_catalogue().get("records", []):  # type: ignore[union-attr]
            if not row.get("retiming"):
                times[int(row["number"])] = _float(row.get("time_s"))
    ladder = [n for n in range(1, BENCHMARK_LAST + 1) if n != FOLDED_OUT]
    tasks = []
    for a, b in zip(ladder, ladder[1:]):
        tasks.append(BenchmarkTask(task_id=b - 1, from_record=a, to_record=b, from_time_s=times.get(a), to_time_s=times.get(b)))
    return tasks


# -- hardware ---------------------------------------------------------------------------------------------


def detect_gpus(nvidia_smi: str = "nvidia-smi", timeout_s: float = 10.0) -> list[GpuInfo]:
    """GPUs seen by nvidia-smi; [] when it is absent, fails or hangs."""
    exe = shutil.which(nvidia_smi)
    if exe is None:
        return []
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=timeout_s, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return parse_gpu_csv(out.stdout)


def parse_gpu_csv(text: str) -> list[GpuInfo]:
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, memory = line.rpartition(",") if "," in line else (line, "", "")
        digits = "".join(ch for ch in memory if ch.isdigit())
        gpus.append(GpuInfo(name=name.strip() or memory.strip(), memory_mib=int(digits) if digits else None))
    return gpus


# -- data -------------------------------------------------------------------------------------------------


def prepare_nanogpt_data(shards: int, clone_dir: Path, data_root: Path | None = None,
                         progress: sync.Progress = None, timeout_s: float | None = None) -> Path:
    """Run upstream's data/cached_fineweb10B.py <shards>; the shards land in <data_root>/data/fineweb10B.

    The script writes next to itself, so it is copied into <data_root>/data first (the clone stays untouched
    and DATA_PATH=<data_root> matches how upstream's training scripts join paths).
    """
    if shards < 1:
        raise TrackError("--shards must be at least 1 (each train shard holds 100M tokens)")
    script = Path(clone_dir) / "data" / "cached_fineweb10B.py"
    if not script.is_file():
        raise TrackError(f"{script} is missing; run `speedcopilot records sync` to get upstream's data script")
    root = data_root or Path(clone_dir)
    target = root / "data"
    target.mkdir(parents=True, exist_ok=True)
    copy = target / script.name
    if copy.resolve() != script.resolve():
        shutil.copyfile(script, copy)
    if progress is not None:
        progress(f"downloading {shards} shard(s) with upstream's {script.name}", 0.0)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.run(
            [sys.executable, str(copy), str(shards)], cwd=root, env=env, capture_output=True, text=True,
            timeout=timeout_s, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TrackError(f"the data download did not finish within {timeout_s:.0f}s; run it again to resume") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        hint = "needs internet (Hugging Face Hub)"
        if "No module named" in tail:
            hint = "needs the huggingface-hub package (pip install huggingface-hub) and internet"
        raise TrackError(f"upstream's data script failed (exit {proc.returncode}); it {hint}:\n{tail}")
    if progress is not None:
        progress("data ready", 1.0)
    return root / SHARD_DIR


__all__ = [
    "NanoGPTTrack", "BenchmarkTask", "GpuInfo", "benchmark_tasks", "detect_gpus", "parse_gpu_csv",
    "prepare_nanogpt_data", "val_points",
]
