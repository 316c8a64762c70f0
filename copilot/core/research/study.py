"""Study files: who does which task in which mode, in which order, under which budgets.

A study file is TOML:

    name = "pilot-2026"
    design = "within"              # "within" (default): every task once, modes rotated; "crossed": every task × mode
    participants = ["P01", "P02", "P03", "P04"]     # or [[participants]] tables with an `id`
    modes = ["copilot", "auto"]

    [[tasks]]
    track = "micro"
    record = 3
    hint_levels = [1]              # optional

    [[tasks]]
    track = "micro"
    record = 4

    [budgets]                      # for every session ...
    wall_time_s = 3600
    runs = 10
    [budgets.auto]                 # ... overridden per mode
    nodes = 20

Counterbalancing (participant index p = position in `participants`):
- task order is row p of a balanced Latin square (Williams design: every task immediately follows every other
  task equally often; n rows for an even number of tasks, 2n for an odd number);
- "within": the mode at position i is modes[(i + q) mod m] with q = p div (rows of the square), so over
  rows·m participants every task meets every mode equally often and every mode sits at every position equally
  often; "crossed": the conditions (task, mode) are themselves ordered by a Williams square.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable

from copilot.core.errors import ConfigError
from copilot.core.session.events import EVENTS_FILE, read_events

KNOWN_MODES = ("copilot", "auto")
DESIGNS = ("within", "crossed")


@dataclass(frozen=True)
class Budgets:
    """Limits of one session; None = no limit."""

    wall_time_s: float | None = None
    runs: int | None = None
    suggestions: int | None = None
    nodes: int | None = None
    cost_usd: float | None = None
    accelerator_seconds: float | None = None

    def merged(self, override: "Budgets") -> "Budgets":
        return replace(self, **{k: v for k, v in asdict(override).items() if v is not None})

    def to_dict(self) -> dict[str, float | int]:
        return {k: v for k, v in asdict(self).items() if v is not None}


_BUDGET_KEYS = tuple(f.name for f in fields(Budgets))
_INT_BUDGETS = frozenset({"runs", "suggestions", "nodes"})


@dataclass(frozen=True)
class StudyTask:
    track: str
    record: int
    hint_levels: tuple[int, ...] | None = None  # None: the session's default

    @property
    def label(self) -> str:
        return f"{self.track} {self.record}→{self.record + 1}"


@dataclass(frozen=True)
class Study:
    name: str
    participants: tuple[str, ...]
    modes: tuple[str, ...]
    tasks: tuple[StudyTask, ...]
    design: str = "within"
    budgets: Budgets = field(default_factory=Budgets)
    mode_budgets: dict[str, Budgets] = field(default_factory=dict)
    digest: str = ""  # sha256 of the file's bytes (first 16 hex), so a session names the exact study text
    source: str | None = None

    def budgets_for(self, mode: str) -> Budgets:
        return self.budgets.merged(self.mode_budgets.get(mode, Budgets()))


@dataclass(frozen=True)
class StudyAssignment:
    """One session a participant should run: the `position`-th of `total`."""

    study: str
    digest: str
    design: str
    participant: str
    participant_index: int
    position: int  # 0-based order within the participant's sessions
    total: int
    mode: str
    task: StudyTask
    budgets: Budgets

    def to_event(self) -> dict[str, Any]:
        """The dict recorded as session_started["study"]."""
        return {
            "name": self.study,
            "digest": self.digest,
            "design": self.design,
            "participant": self.participant,
            "participant_index": self.participant_index,
            "position": self.position,
            "of": self.total,
            "mode": self.mode,
            "track": self.task.track,
            "record": self.task.record,
            "hint_levels": list(self.task.hint_levels) if self.task.hint_levels is not None else None,
            "budgets": self.budgets.to_dict(),
        }


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------
def load_study(path: Path) -> Study:
    """Read and validate a study file; every mistake is a ConfigError that names the key to fix."""
    path = Path(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read study file {path}: {exc.strerror}; check the path") from None
    try:
        raw = tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"study file {path} is not valid TOML: {exc}") from None
    return parse_study(raw, source=str(path), digest=hashlib.sha256(raw_bytes).hexdigest()[:16])


def parse_study(raw: dict[str, Any], source: str | None = None, digest: str = "") -> Study:
    where = f"study file {source}" if source else "study"
    known = {"name", "design", "participants", "modes", "tasks", "budgets", "description"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f'{where}: set a study name, e.g. name = "pilot-2026"')
    design = raw.get("design", "within")
    if design not in DESIGNS:
        raise ConfigError(f"{where}: design must be one of {', '.join(DESIGNS)}, not {design!r}")
    participants = _parse_participants(where, raw.get("participants"))
    modes = _parse_modes(where, raw.get("modes", list(KNOWN_MODES)))
    tasks = _parse_tasks(where, raw.get("tasks"))
    budgets, mode_budgets = _parse_budgets(where, raw.get("budgets", {}), modes)
    return Study(
        name=name.strip(),
        participants=participants,
        modes=modes,
        tasks=tasks,
        design=design,
        budgets=budgets,
        mode_budgets=mode_budgets,
        digest=digest,
        source=source,
    )


def _parse_participants(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f'{where}: list the participants, e.g. participants = ["P01", "P02"]')
    ids: list[str] = []
    for item in value:
        pid = item.get("id") if isinstance(item, dict) else item
        if not isinstance(pid, str) or not pid.strip():
            raise ConfigError(f"{where}: every participant needs a non-empty string id, got {item!r}")
        ids.append(pid.strip())
    duplicates = sorted({p for p in ids if ids.count(p) > 1})
    if duplicates:
        raise ConfigError(f"{where}: participant ids must be unique; repeated: {', '.join(duplicates)}")
    return tuple(ids)


def _parse_modes(where: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f'{where}: modes must be a non-empty list, e.g. modes = ["copilot", "auto"]')
    for mode in value:
        if mode not in KNOWN_MODES:
            raise ConfigError(f"{where}: unknown mode {mode!r}; modes are {', '.join(KNOWN_MODES)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: each mode may appear once in modes")
    return tuple(value)


def _parse_tasks(where: str, value: Any) -> tuple[StudyTask, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f'{where}: add at least one [[tasks]] table with track = "micro" and record = 3')
    tasks: list[StudyTask] = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: task {number} must be a [[tasks]] table")
        track, record, hints = item.get("track"), item.get("record"), item.get("hint_levels")
        if not isinstance(track, str) or not track:
            raise ConfigError(f'{where}: task {number} needs track = "micro" or "nanogpt"')
        if isinstance(record, bool) or not isinstance(record, int) or record < 1:
            raise ConfigError(f"{where}: task {number} needs record = <starting record number, 1 or more>")
        if hints is not None and (
            not isinstance(hints, list) or not all(isinstance(h, int) and 0 <= h <= 3 for h in hints)
        ):
            raise ConfigError(f"{where}: task {number}: hint_levels must be a list of levels 0–3, e.g. [1, 2]")
        extra = sorted(set(item) - {"track", "record", "hint_levels"})
        if extra:
            raise ConfigError(f"{where}: task {number}: unknown key(s) {', '.join(extra)}")
        tasks.append(StudyTask(track, record, tuple(sorted(set(h for h in hints if h > 0))) if hints else None))
    if len(set(tasks)) != len(tasks):
        raise ConfigError(f"{where}: the same task is listed twice")
    return tuple(tasks)


def _parse_budgets(where: str, value: Any, modes: tuple[str, ...]) -> tuple[Budgets, dict[str, Budgets]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [budgets] must be a table")
    scalars = {k: v for k, v in value.items() if not isinstance(v, dict)}
    per_mode: dict[str, Budgets] = {}
    for key, inner in value.items():
        if isinstance(inner, dict):
            if key not in modes:
                raise ConfigError(f"{where}: [budgets.{key}] names no mode of this study ({', '.join(modes)})")
            per_mode[key] = _budgets_from(where, f"budgets.{key}", inner)
    return _budgets_from(where, "budgets", scalars), per_mode


def _budgets_from(where: str, table: str, values: dict[str, Any]) -> Budgets:
    parsed: dict[str, Any] = {}
    for key, value in values.items():
        if key not in _BUDGET_KEYS:
            raise ConfigError(f"{where}: [{table}] has unknown budget {key!r}; budgets: {', '.join(_BUDGET_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{where}: [{table}] {key} must be a positive number")
        if key in _INT_BUDGETS and value != int(value):
            raise ConfigError(f"{where}: [{table}] {key} must be a whole number")
        parsed[key] = int(value) if key in _INT_BUDGETS else float(value)
    return Budgets(**parsed)


# --------------------------------------------------------------------------------------------------
# Counterbalancing
# --------------------------------------------------------------------------------------------------
def williams_square(n: int) -> list[list[int]]:
    """Rows of a balanced Latin square of order n (Williams 1949): each row a permutation of 0..n−1, each
    symbol once per column, and each ordered pair of neighbours equally often (n rows if n is even; for odd n
    the mirrored rows are appended, giving 2n rows)."""
    if n < 1:
        raise ValueError("a Latin square needs at least one symbol")
    first: list[int] = []
    low, high = 0, n - 1
    for i in range(n):
        # 0, 1, n−1, 2, n−2, ... : alternately the next from the bottom and from the top
        if i % 2 == 0:
            first.append(low)
            low += 1
        else:
            first.append(high)
            high -= 1
    # shift the pattern so the first row starts 0, 1, n−1, ...: the zig-zag above gives 0, n−1, 1, n−2, ...
    first = [(n - x) % n for x in first]
    rows = [[(x + r) % n for x in first] for r in range(n)]
    if n % 2 == 1 and n > 1:
        rows += [list(reversed(row)) for row in rows]
    return rows


def assignment(study: Study, participant: str) -> list[StudyAssignment]:
    """The participant's sessions in the order they should run them."""
    try:
        p = study.participants.index(participant)
    except ValueError:
        raise ConfigError(
            f"participant {participant!r} is not in study {study.name!r}; "
            f"participants: {', '.join(study.participants)} (add them to the study file)"
        ) from None
    conditions = _conditions_for(study, p)
    total = len(conditions)
    return [
        StudyAssignment(
            study=study.name,
            digest=study.digest,
            design=study.design,
            participant=participant,
            participant_index=p,
            position=i,
            total=total,
            mode=mode,
            task=task,
            budgets=study.budgets_for(mode),
        )
        for i, (task, mode) in enumerate(conditions)
    ]


def _conditions_for(study: Study, p: int) -> list[tuple[StudyTask, str]]:
    if study.design == "crossed":
        conditions = [(task, mode) for task in study.tasks for mode in study.modes]
        rows = williams_square(len(conditions))
        return [conditions[i] for i in rows[p % len(rows)]]
    rows = williams_square(len(study.tasks))
    order = rows[p % len(rows)]
    shift = p // len(rows)
    m = len(study.modes)
    return [(study.tasks[t], study.modes[(i + shift) % m]) for i, t in enumerate(order)]


def assignment_table(study: Study) -> dict[str, list[StudyAssignment]]:
    """Every participant's plan (for printing a study overview)."""
    return {pid: assignment(study, pid) for pid in study.participants}


def completed_positions(study: Study, participant: str, session_dirs: Iterable[Path]) -> set[int]:
    """Positions of this participant's plan that already have a session (a session_started whose study dict
    names this study and participant). A started session counts as taken, finished or not: resume it rather
    than starting the position again."""
    done: set[int] = set()
    for session_dir in session_dirs:
        result = read_events(Path(session_dir) / EVENTS_FILE)
        started = next((e.body for e in result.events if e.type == "session_started"), None)
        info = started.get("study") if started is not None else None
        if (
            isinstance(info, dict)
            and info.get("name") == study.name
            and info.get("participant") == participant
            and isinstance(info.get("position"), int)
        ):
            done.add(info["position"])
    return done


def next_assignment(study: Study, participant: str, session_dirs: Iterable[Path]) -> StudyAssignment | None:
    """The first assignment of the participant's plan without a session yet; None when all are done."""
    done = completed_positions(study, participant, session_dirs)
    return next((a for a in assignment(study, participant) if a.position not in done), None)
