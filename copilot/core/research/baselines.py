"""Same-machine baselines: record N and the next record timed where the sessions run, and the choice of the
times a session's numbers ("vs record", FSR, the projected time to target) are computed against.

Why: a record's catalogue time was measured on someone else's machine. A session that reproduces record N+1
exactly on a slower (or busier) machine would show a negative FSR against those times. FSR is only meaningful
when t_i, t_{i+1} and the session's t' come from the same machine under the same settings.

- A **fingerprint** says what the time depends on in the machine: CPU model and the cores a run may use, GPU
  model and count, the torch version, the thread settings the runs see, the runner (local, ssh://, slurm://)
  and the GPUs per run. Its `key()` is a short hash of those fields.
- **Conditions** say what it depends on in the task: track, target loss, the track's run knobs (MICRO_MAX_STEPS
  and friends, seeds excluded) and the data set.
- A **measurement** is one record timed for K seeds (stop at target on), stored per fingerprint in a JSON file
  (`default_store_path()`; env SPEEDCOPILOT_BASELINES overrides it).
- A session records the **choice** it uses (event `baseline_chosen`): the same-machine times when both records
  of its task were measured under its fingerprint and conditions, else the catalogue's with the reason
  ("catalogue time, other machine"). Never a mix of the two.

Noise: the seed-to-seed standard deviation of each record's times, pooled over the two records of a task. A
session's best time is "within noise" of the starting record when |t_i − t'| ≤ 2σ.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from copilot.core.errors import ConfigError, RunError, SpeedcopilotError
from copilot.core.research.speedup import speedup_text  # noqa: F401  (re-exported: compare and the CLI use it here)

STORE_ENV = "SPEEDCOPILOT_BASELINES"
STORE_FILE = "baselines.json"
STORE_VERSION = 1
APP_DIR_NAME = "speedcopilot"
DEFAULT_SEEDS = 3
NOISE_SIGMAS = 2.0  # a difference within this many pooled standard deviations is "within noise"

SAME_MACHINE = "same_machine"
CATALOGUE = "catalogue"
FILE = "file"
LABELS = {SAME_MACHINE: "same machine", CATALOGUE: "catalogue time, other machine", FILE: "baselines file"}

# The run settings that decide how long a run takes (threads), as the runs see them.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TORCH_NUM_THREADS",
               "OMP_WAIT_POLICY", "CUDA_VISIBLE_DEVICES")
# Prefixes of the tracks' own knobs (steps, validation cadence...) that change what a run does.
KNOB_PREFIXES = ("MICRO_", "NANOGPT_")
SEED_VARS = frozenset({"MICRO_SEED", "NANOGPT_SEED"})


# --------------------------------------------------------------------------------------------------
# Speed-up in words
# --------------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------------
# Fingerprints and conditions
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fingerprint:
    cpu: str | None
    cpu_count: int | None  # cores a run may use (the process's CPU affinity)
    gpu: str | None
    gpu_count: int
    torch: str | None
    threads: dict[str, str] = field(default_factory=dict)
    runner_url: str = "local"
    gpus_per_run: int = 1

    def key(self) -> str:
        """A short stable hash of every field: equal keys, same machine as far as timing goes."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def describe(self) -> str:
        parts = [f"{self.cpu or 'unknown CPU'} ×{self.cpu_count or '?'}"]
        if self.gpu_count:
            parts.append(f"{self.gpu_count}× {self.gpu or 'GPU'}")
        parts.append(f"torch {self.torch or '?'}")
        threads = self.threads.get("OMP_NUM_THREADS")
        if threads:
            parts.append(f"{threads} threads")
        parts.append("local" if self.runner_url == "local" else self.runner_url.split("://", 1)[0])
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Fingerprint":
        return cls(cpu=data.get("cpu"), cpu_count=data.get("cpu_count"), gpu=data.get("gpu"),
                   gpu_count=int(data.get("gpu_count") or 0), torch=data.get("torch"),
                   threads={str(k): str(v) for k, v in dict(data.get("threads") or {}).items()},
                   runner_url=str(data.get("runner_url") or "local"), gpus_per_run=int(data.get("gpus_per_run") or 1))


@dataclass(frozen=True)
class Conditions:
    """What the task's times depend on besides the machine."""

    track: str
    target_val_loss: float
    knobs: dict[str, str] = field(default_factory=dict)
    data: str | None = None

    def same_as(self, other: "Conditions") -> bool:
        return (self.track == other.track and math.isclose(self.target_val_loss, other.target_val_loss,
                                                           rel_tol=0, abs_tol=1e-9)
                and self.knobs == other.knobs and self.data == other.data)

    def describe(self) -> str:
        knobs = ", ".join(f"{k}={v}" for k, v in sorted(self.knobs.items()))
        text = f"{self.track}, target {self.target_val_loss:g}"
        if self.data:
            text += f", {self.data} data"
        return text + (f", {knobs}" if knobs else "")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Conditions":
        return cls(track=str(data.get("track") or ""), target_val_loss=float(data.get("target_val_loss") or 0.0),
                   knobs={str(k): str(v) for k, v in dict(data.get("knobs") or {}).items()}, data=data.get("data"))


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _cpu_count() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _torch_version() -> str | None:
    """The torch the runs import (the micro track runs this interpreter; nanogpt's torchrun is its sibling),
    read from the package metadata: torch is never imported in this process."""
    import importlib.metadata  # here, not at the top: the app imports this module before its first frame

    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpus() -> list[Any]:
    from copilot.core.tracks.nanogpt import detect_gpus

    return detect_gpus()


def run_env_of(track: Any, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a run of `track` gets (the allow-listed part of ours plus the track's own)."""
    from copilot.core.runs.env import run_environment

    try:
        track_env = dict(track.run_env())
    except SpeedcopilotError:  # data not prepared yet: the knobs still come from our environment
        track_env = {}
    return run_environment(track_env, source=os.environ if environ is None else environ)


def fingerprint(track: Any, runner_url: str = "local", gpus_per_run: int = 1,
                environ: Mapping[str, str] | None = None,
                gpu_probe: Callable[[], list[Any]] | None = None) -> Fingerprint:
    """This machine as a run of `track` through `runner_url` sees it. A remote runner's machine is not probed
    from here: its fingerprint holds the runner and the run settings, and the local hardware fields stay
    empty (so a local baseline never stands in for a remote one)."""
    env = run_env_of(track, environ)
    threads = {k: env[k] for k in THREAD_VARS if env.get(k)}
    runner_url = runner_url or "local"
    if runner_url != "local":
        return Fingerprint(cpu=None, cpu_count=None, gpu=None, gpu_count=0, torch=None, threads=threads,
                           runner_url=runner_url, gpus_per_run=gpus_per_run)
    gpus = (gpu_probe or _gpus)()
    names = sorted({getattr(g, "name", str(g)) for g in gpus})
    return Fingerprint(cpu=_cpu_model(), cpu_count=_cpu_count(), gpu=", ".join(names) or None,
                       gpu_count=len(gpus), torch=_torch_version(), threads=threads, runner_url=runner_url,
                       gpus_per_run=gpus_per_run)


def conditions(track: Any, environ: Mapping[str, str] | None = None) -> Conditions:
    env = run_env_of(track, environ)
    knobs = {k: v for k, v in env.items() if k.startswith(KNOB_PREFIXES) and k not in SEED_VARS}
    return Conditions(track=str(track.name), target_val_loss=float(track.target_val_loss), knobs=knobs,
                      data=_data_kind(track))


def _data_kind(track: Any) -> str | None:
    """The micro corpus comes in sizes (full, small): a different corpus is a different task."""
    if getattr(track, "name", "") != "micro":
        return None
    from copilot.core.tracks.microdata import _read_meta

    meta = _read_meta(track.shards_dir) or {}
    size = meta.get("size")
    return str(size) if size else None


# --------------------------------------------------------------------------------------------------
# Measurements and the store
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaselineRun:
    seed: int
    time_s: float | None  # time to target (the script's train time at the crossing); None: not reached
    outcome: str
    wall_time_s: float | None = None
    run_id: str | None = None


@dataclass
class Measurement:
    """One record timed for several seeds on one machine under one set of conditions."""

    id: str
    record: int
    conditions: Conditions
    fingerprint: Fingerprint
    runs: list[BaselineRun]
    measured_at: float
    tool_version: str | None = None

    @property
    def fingerprint_key(self) -> str:
        return self.fingerprint.key()

    @property
    def times(self) -> list[float]:
        return [r.time_s for r in self.runs if r.time_s is not None]

    @property
    def mean_s(self) -> float | None:
        times = self.times
        return statistics.fmean(times) if times else None

    @property
    def std_s(self) -> float | None:
        times = self.times
        return statistics.stdev(times) if len(times) > 1 else None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "record": self.record, "conditions": self.conditions.to_dict(),
                "fingerprint": self.fingerprint.to_dict(), "fingerprint_key": self.fingerprint_key,
                "runs": [asdict(r) for r in self.runs], "mean_s": self.mean_s, "std_s": self.std_s,
                "measured_at": self.measured_at, "tool_version": self.tool_version}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Measurement":
        return cls(id=str(data["id"]), record=int(data["record"]),
                   conditions=Conditions.from_dict(data["conditions"]),
                   fingerprint=Fingerprint.from_dict(data["fingerprint"]),
                   runs=[BaselineRun(seed=int(r["seed"]), time_s=_float(r.get("time_s")),
                                     outcome=str(r.get("outcome") or ""), wall_time_s=_float(r.get("wall_time_s")),
                                     run_id=r.get("run_id")) for r in data.get("runs") or []],
                   measured_at=float(data.get("measured_at") or 0.0), tool_version=data.get("tool_version"))


def default_store_path(environ: Mapping[str, str] | None = None) -> Path:
    """$SPEEDCOPILOT_BASELINES, else baselines.json in the user's data folder (XDG_DATA_HOME on Linux)."""
    env = os.environ if environ is None else environ
    if env.get(STORE_ENV):
        return Path(env[STORE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_DIR_NAME)) / STORE_FILE


class BaselineStore:
    """The measurements of this user, in one JSON file (written whole, atomically: a crash leaves the old one)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_store_path()

    def load(self) -> list[Measurement]:
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [Measurement.from_dict(m) for m in raw.get("measurements", [])]
        except OSError as exc:
            raise ConfigError(f"cannot read the baselines in {self.path}: {exc.strerror}; check its permissions") \
                from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"the baselines file {self.path} is damaged ({type(exc).__name__}: {exc}); move it "
                              f"aside and measure again with `speedcopilot baseline`") from None

    def add(self, measurements: Iterable[Measurement]) -> None:
        existing = self.load()  # raises on a damaged file: never overwrite what we cannot read
        document = {"version": STORE_VERSION,
                    "measurements": [m.to_dict() for m in [*existing, *measurements]]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".baselines-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(document, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def find(self, fp: Fingerprint, cond: Conditions, record: int) -> Measurement | None:
        """The latest measurement of `record` under this fingerprint and these conditions."""
        key = fp.key()
        hits = [m for m in self.load() if m.record == record and m.fingerprint_key == key
                and m.conditions.same_as(cond)]
        return max(hits, key=lambda m: m.measured_at) if hits else None


# --------------------------------------------------------------------------------------------------
# The choice a session records
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BaselineChoice:
    source: str  # same_machine | catalogue | file
    record: int
    next_record: int | None
    record_time_s: float | None
    next_record_time_s: float | None
    reason: str | None = None  # why the catalogue stands in (fallbacks only)
    record_std_s: float | None = None
    next_record_std_s: float | None = None
    seeds: int = 0  # the fewer seeds that reached the target of the two records
    noise_s: float | None = None  # pooled seed-to-seed standard deviation of the two records' times
    fingerprint_key: str | None = None
    fingerprint: dict[str, Any] | None = None
    conditions: dict[str, Any] | None = None
    measured_at: float | None = None
    measurement_ids: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS.get(self.source, self.source)

    @property
    def same_machine(self) -> bool:
        return self.source == SAME_MACHINE

    def to_fields(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and v != []}

    @classmethod
    def from_fields(cls, data: Mapping[str, Any]) -> "BaselineChoice":
        names = set(cls.__dataclass_fields__)
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs.setdefault("source", CATALOGUE)
        kwargs.setdefault("record", 0)
        kwargs.setdefault("next_record", None)
        kwargs.setdefault("record_time_s", None)
        kwargs.setdefault("next_record_time_s", None)
        kwargs["measurement_ids"] = list(kwargs.get("measurement_ids") or [])
        return cls(**kwargs)


def pooled_std(groups: Sequence[Sequence[float]]) -> float | None:
    """sqrt(Σ (n_g − 1) s_g² / Σ (n_g − 1)) over groups with at least 2 values; None without any."""
    num, dof = 0.0, 0
    for values in groups:
        if len(values) > 1:
            num += (len(values) - 1) * statistics.variance(values)
            dof += len(values) - 1
    return math.sqrt(num / dof) if dof else None


def from_measurements(first: Measurement, second: Measurement, next_record: int) -> BaselineChoice:
    return BaselineChoice(
        source=SAME_MACHINE, record=first.record, next_record=next_record,
        record_time_s=first.mean_s, next_record_time_s=second.mean_s,
        record_std_s=first.std_s, next_record_std_s=second.std_s,
        seeds=min(len(first.times), len(second.times)), noise_s=pooled_std([first.times, second.times]),
        fingerprint_key=first.fingerprint_key, fingerprint=first.fingerprint.to_dict(),
        conditions=first.conditions.to_dict(), measured_at=max(first.measured_at, second.measured_at),
        measurement_ids=[first.id, second.id],
    )


def select_baseline(store: BaselineStore, fp: Fingerprint, cond: Conditions, record: int,
                    next_record: int | None, catalogue_record_s: float | None,
                    catalogue_next_s: float | None) -> BaselineChoice:
    """The same-machine times of record and next_record when both were measured here under these conditions
    and both reached the target; otherwise the catalogue's times, with the reason."""
    fallback = BaselineChoice(source=CATALOGUE, record=record, next_record=next_record,
                              record_time_s=catalogue_record_s, next_record_time_s=catalogue_next_s,
                              fingerprint_key=fp.key(), fingerprint=fp.to_dict(), conditions=cond.to_dict())
    if next_record is None:
        return _with_reason(fallback, f"record {record} is the last of its track: no speed-up to recover")
    first, second = store.find(fp, cond, record), store.find(fp, cond, next_record)
    if first is None or second is None:
        missing = [str(n) for n, m in ((record, first), (next_record, second)) if m is None]
        return _with_reason(fallback, _why_missing(store, fp, cond, missing, record))
    unreached = [str(m.record) for m in (first, second) if not m.times]
    if unreached:
        return _with_reason(fallback, f"record {' and '.join(unreached)} never reached the target in its "
                                      f"baseline runs on this machine")
    return from_measurements(first, second, next_record)


def _why_missing(store: BaselineStore, fp: Fingerprint, cond: Conditions, missing: list[str], record: int) -> str:
    others = [m for m in store.load() if str(m.record) in missing and m.conditions.track == cond.track]
    here = [m for m in others if m.fingerprint_key == fp.key()]
    what = f"record {' and '.join(missing)}"
    fix = f"`speedcopilot baseline --record {record}` measures it"
    if here:
        return f"{what} measured on this machine only under other settings ({here[-1].conditions.describe()}); {fix}"
    if others:
        return f"{what} measured on another machine only ({others[-1].fingerprint.describe()}); {fix}"
    return f"no baseline of {what} measured on this machine; {fix}"


def _with_reason(choice: BaselineChoice, reason: str) -> BaselineChoice:
    from dataclasses import replace

    return replace(choice, reason=reason)


# --------------------------------------------------------------------------------------------------
# A session's result against its baseline
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoiseVerdict:
    noise_s: float | None
    within_noise: bool | None  # None: no noise estimate (fewer than 2 seeds) or no time
    fsr_half_width: float | None  # the 2σ band of FSR that the noise alone gives

    def text(self) -> str:
        if self.within_noise is None:
            return "noise unknown (fewer than 2 seeds reached the target)" if self.noise_s is None else "–"
        return "within noise" if self.within_noise else "beyond noise"


def noise_verdict(record_time_s: float | None, next_record_time_s: float | None, achieved_s: float | None,
                  noise_s: float | None, sigmas: float = NOISE_SIGMAS) -> NoiseVerdict:
    """Is the session's time told apart from the starting record's? |t_i − t'| ≤ sigmas·σ is "within noise"."""
    if noise_s is None or record_time_s is None or achieved_s is None:
        return NoiseVerdict(noise_s, None, None)
    gain = (record_time_s - next_record_time_s) if next_record_time_s is not None else None
    half = sigmas * noise_s / gain if gain and gain > 0 else None
    return NoiseVerdict(noise_s, abs(record_time_s - achieved_s) <= sigmas * noise_s, half)


# --------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------
ProgressFn = Callable[[int, int, BaselineRun], None]  # (record, seed index, the run just finished)


def next_record_of(track: Any, record: int) -> int | None:
    """The next rung of the ladder (nanogpt's task 6 → 8 skips the re-timing record 7)."""
    next_of = getattr(track, "next_record", None)
    if callable(next_of):
        return next_of(record)
    later = [r.number for r in track.records() if r.number > record]
    return min(later) if later else None


def new_measurement_id() -> str:
    import secrets

    return time.strftime("b-%Y%m%d-%H%M%S-", time.gmtime()) + secrets.token_hex(2)


async def measure(track: Any, record: int, *, seeds: int = DEFAULT_SEEDS, runner: Any = None,
                  runner_url: str = "local", work_dir: Path, gpus: int = 1, hang_timeout_s: float | None = 300.0,
                  run_timeout_s: float | None = None, progress: ProgressFn | None = None,
                  tool_version: str | None = None) -> list[Measurement]:
    """Time `record` and the next record for `seeds` seeds, interleaved (N, N+1, N, N+1, …) so that a change
    in the machine's load hits both alike; every run stops at the target. One Measurement per record."""
    from copilot.core import runs
    from copilot.core.runs.env import run_environment
    from copilot.core.tracks.doctor import preflight

    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}")
    numbers = [record] + [n for n in [next_record_of(track, record)] if n is not None]
    for number in numbers:
        track.record(number)  # an unknown record fails here with the list of valid ones
    runner = runner or runs.LocalRunner()
    fp = fingerprint(track, runner_url, gpus)
    cond = conditions(track)
    seed_env = getattr(track, "seed_env", None)
    dirs = {n: _write_record(track, n, work_dir / f"record_{n}") for n in numbers}
    for number in numbers:
        preflight(track, gpus, runner_url, number)
    done: dict[int, list[BaselineRun]] = {n: [] for n in numbers}
    for seed in range(seeds):
        for number in numbers:
            env = dict(track.run_env())
            if seed_env:
                env[seed_env] = str(seed)
            spec = runs.RunSpec(run_id=runs.new_run_id(), command=track.launch_command(dirs[number], gpus),
                                cwd=dirs[number], run_dir=work_dir / "runs" / f"record_{number}-seed_{seed}",
                                env=run_environment(env), target_val_loss=track.target_val_loss,
                                timeout_s=run_timeout_s, hang_timeout_s=hang_timeout_s, stop_at_target=True)
            result = await _run_once(runner, spec)
            reached = result.reached_target and result.time_to_target_ms is not None
            run = BaselineRun(seed=seed, time_s=result.time_to_target_ms / 1000 if reached else None,
                              outcome=result.outcome.value, wall_time_s=result.wall_time_s, run_id=spec.run_id)
            done[number].append(run)
            if progress is not None:
                progress(number, seed, run)
    now = time.time()
    return [Measurement(id=new_measurement_id(), record=n, conditions=cond, fingerprint=fp, runs=done[n],
                        measured_at=now, tool_version=tool_version) for n in numbers]


def _write_record(track: Any, number: int, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in track.record_files(number).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    prepare = getattr(track, "prepare_workdir", None)
    if callable(prepare):
        prepare(folder)
    return folder


async def _run_once(runner: Any, spec: Any) -> Any:
    from copilot.core import runs

    spec.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        handle = await asyncio.to_thread(runner.start, spec)
    except OSError as exc:
        raise RunError(f"could not start {' '.join(spec.command)}: {exc}") from None
    try:
        return await runs.watch_run(handle, spec)
    except asyncio.CancelledError:  # interrupted (ctrl+c): a baseline run must not train on unwatched
        await handle.stop(5.0)
        raise


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
