"""Sync the real modded-nanogpt records: clone/update upstream, parse its README table, extract each record's code.

Layout under the cache root (default: platformdirs user cache dir of "speedcopilot"):

    upstream/modded-nanogpt/          the git clone (GitPython; shallow when cloned from a URL)
    nanogpt/index.json                one entry per README row (records without code are listed, never dropped)
    nanogpt/records/<key>/train_gpt.py   the record's main script (+ companion sources, e.g. triton_kernels.py)
    nanogpt/records/<key>/record.log     the log with the code cut off (step lines, for the reference curve)
    nanogpt/benchmark/hints/record_<n>/  hint files copied from a clone of the benchmark (records sync --benchmark)

A record's code is the text of its log before the first line of 100 '=' (or between the first two such lines
when the log starts with one); logs of recent records append companion sources under dashed header lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

import platformdirs

from copilot.core.errors import TrackError

UPSTREAM_URL = "https://github.com/KellerJordan/modded-nanogpt.git"
SEPARATOR = "=" * 100
INDEX_VERSION = 1
MAIN_SCRIPT = "train_gpt.py"

Progress = Callable[[str, float], None] | None  # (message, fraction done 0..1)

_LINK = re.compile(r"\[([^\]]*)\]\(((?:[^()\s]|\([^()\s]*\))*)\)")  # one level of (...) in URLs
_COMPANION_HEADER = re.compile(r"^-{20,}\n# ([\w./-]+\.py)\n-{20,}\n", re.MULTILINE)
_TIME = re.compile(r"([\d.]+)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h)\b", re.IGNORECASE)
_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})$")
_VAL_LINE = re.compile(r"step:(\d+)/(\d+) val_loss:([0-9.]+|nan|inf)")
_LLMC_VAL = re.compile(r"^s:(\d+) tel:([0-9.]+)", re.MULTILINE)
_LOG_SUFFIXES = (".txt", ".log")
_TORCH_LINE = re.compile(r"^Running pytorch (\S+)(?: compiled for CUDA (\S+))?", re.IGNORECASE | re.MULTILINE)
_TRITON_LINE = re.compile(r"^Running Triton version (\S+)", re.IGNORECASE | re.MULTILINE)
_PYTHON_LINE = re.compile(r"^Running Python (\d+\.\d+\.\d+)", re.MULTILINE)

CODE_FROM_LOG = "upstream log"
CODE_FROM_SCRIPT = "upstream script"
CODE_FROM_TEMPLATE = "llm-speedrunner template"
BENCHMARK_TEMPLATES = Path("workspace_templates") / "nanogpt_speedrun"
BENCHMARK_HINTS = Path("data") / "nanogpt_speedrun_knowledge_in_levels"
BENCHMARK_SCRIPT = "train_gpt2.py"
BENCHMARK_RECORDS = range(1, 22)  # the benchmark's ladder: records 1-21


# -- data -----------------------------------------------------------------------------------------------------


@dataclass
class ReadmeRow:
    """One row of the README's "World record history" table, links stripped."""

    number: int
    key: str
    retiming: bool
    time_s: float | None
    description: str
    date: str | None
    contributors: str | None
    log_link: str | None  # path relative to the clone root as linked (file or folder), None when "none"/"-"


@dataclass
class ExtractedCode:
    main: str
    companions: dict[str, str] = field(default_factory=dict)
    rest: str = ""  # the log after the code (versions, nvidia-smi, step lines)


@dataclass
class SyncedRecord:
    number: int
    key: str
    time_s: float | None
    description: str
    date: str | None = None
    contributors: str | None = None
    retiming: bool = False
    log_link: str | None = None
    log_file: str | None = None  # the file the code came from, relative to the clone root
    has_code: bool = False
    code_paths: list[str] = field(default_factory=list)  # relative to the nanogpt cache dir; main script first
    log_copy: str | None = None  # relative to the nanogpt cache dir
    steps: int | None = None
    val_loss: float | None = None
    note: str | None = None  # why there is no code, or what was picked
    code_source: str | None = None  # CODE_FROM_LOG | CODE_FROM_SCRIPT | CODE_FROM_TEMPLATE
    environment: dict[str, str] = field(default_factory=dict)  # what the record's log says it ran with
    requirements: dict[str, str] = field(default_factory=dict)  # torch/triton the record needs, and the source

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "SyncedRecord":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})  # type: ignore[arg-type]


@dataclass
class SyncIndex:
    upstream: str
    commit: str | None
    synced_at: float
    clone_dir: str
    records: list[SyncedRecord]
    stale: bool = False  # the update failed and an older clone was used
    version: int = INDEX_VERSION
    benchmark: str | None = None  # the local clone of llm-speedrunner the last sync read, if any
    benchmark_commit: str | None = None
    hints_dir: str | None = None  # the benchmark's hint files, copied into the cache

    def by_key(self, key: str) -> SyncedRecord | None:
        return next((r for r in self.records if r.key == key), None)

    def primary(self, number: int) -> SyncedRecord | None:
        """The record row itself (not a re-timing) for a record number."""
        return next((r for r in self.records if r.number == number and not r.retiming), None)

    def summary(self) -> str:
        with_code = sum(r.has_code for r in self.records)
        commit = f" at {self.commit[:8]}" if self.commit else ""
        stale = " (update failed: older clone)" if self.stale else ""
        text = f"{len(self.records)} records, {with_code} with code, from {self.upstream}{commit}{stale}"
        if self.benchmark:
            templates = sum(r.code_source == CODE_FROM_TEMPLATE for r in self.records)
            text += f"; benchmark {self.benchmark}: {templates} template script(s), hints in {self.hints_dir}"
        return text

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "SyncIndex":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            records = [SyncedRecord.from_dict(r) for r in data.pop("records")]
            names = set(cls.__dataclass_fields__)
            return cls(records=records, **{k: v for k, v in data.items() if k in names})
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise TrackError(f"The record index {path} is unreadable ({exc}); run `speedcopilot records sync` again") from exc


# -- paths ----------------------------------------------------------------------------------------------------


def default_cache_root() -> Path:
    return Path(platformdirs.user_cache_dir("speedcopilot"))


def nanogpt_cache_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_root()) / "nanogpt"


def index_path(cache_dir: Path | None = None) -> Path:
    return nanogpt_cache_dir(cache_dir) / "index.json"


def default_clone_dir(cache_dir: Path | None = None) -> Path:
    return (cache_dir or default_cache_root()) / "upstream" / "modded-nanogpt"


def benchmark_cache_dir(cache_dir: Path | None = None) -> Path:
    return nanogpt_cache_dir(cache_dir) / "benchmark"


def load_index(cache_dir: Path | None = None) -> SyncIndex | None:
    path = index_path(cache_dir)
    return SyncIndex.load(path) if path.exists() else None


# -- README parsing -------------------------------------------------------------------------------------------


def strip_links(text: str) -> str:
    return re.sub(r"\s+", " ", _LINK.sub(lambda m: m.group(1), text)).strip()


def parse_time_s(text: str) -> float | None:
    m = _TIME.search(text)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2).lower()
    scale = 3600.0 if unit.startswith("h") else 1.0 if unit.startswith("s") else 60.0
    return round(value * scale, 3)


def parse_date(text: str) -> str | None:
    m = _DATE.match(text.strip())
    if not m:
        return None
    month, day, year = int(m.group(1)), int(m.group(2)), m.group(3)
    full_year = int(year) if len(year) == 4 else 2000 + int(year)
    return f"{full_year:04d}-{month:02d}-{day:02d}"


def _split_cells(line: str) -> list[str]:
    """Split a Markdown (GFM) table row into cells.

    Follows the table rules: the leading and trailing pipes are optional, `\\|` is a pipe inside a cell, and
    pipes inside inline code spans (`` `a|b` ``) and inside link syntax (`[a|b](url)`) do not split. Cells are
    stripped; escaped pipes come back as plain `|`.
    """
    body = line.strip()
    cells: list[str] = []
    current: list[str] = []
    i, n = 0, len(body)
    leading = body.startswith("|")
    if leading:
        i = 1
    while i < n:
        ch = body[i]
        if ch == "\\" and i + 1 < n:
            current.append("|" if body[i + 1] == "|" else body[i : i + 2])
            i += 2
            continue
        if ch == "`":
            end = _code_span_end(body, i)
            if end is not None:
                current.append(body[i:end].replace("\\|", "|"))
                i = end
                continue
        if ch == "[":
            link = _LINK.match(body, i)
            if link is not None:
                current.append(link.group(0).replace("\\|", "|"))
                i = link.end()
                continue
        if ch == "|":
            cells.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    tail = "".join(current).strip()
    if tail or not body.endswith("|"):
        cells.append(tail)
    return cells


def _code_span_end(text: str, start: int) -> int | None:
    """The index after the code span opened by the backtick run at `start`, or None if it is never closed."""
    run = len(text[start:]) - len(text[start:].lstrip("`"))
    fence = "`" * run
    pos = start + run
    while True:
        found = text.find(fence, pos)
        if found < 0:
            return None
        after = found + run
        if after < len(text) and text[after] == "`":  # a longer run is not the closing one
            pos = after + len(text[after:]) - len(text[after:].lstrip("`"))
            continue
        if found > 0 and text[found - 1] == "`":
            pos = after
            continue
        return after


def _log_link(cell: str) -> str | None:
    links = _LINK.findall(cell)
    preferred = [target for text, target in links if text.strip().lower() == "log"]
    candidates = preferred or [t for _, t in links if not t.startswith(("http://", "https://", "#"))]
    if not candidates:
        return None
    target = unquote(candidates[0].split("#")[0].strip())
    return target.removeprefix("./") or None


def _column_index(header: list[str]) -> dict[str, int]:
    names = [h.strip().lower() for h in header]
    wanted = {
        "number": ("#", "record", "no", "nr"),
        "time": ("record time", "time"),
        "description": ("description",),
        "date": ("date",),
        "log": ("log", "logs"),
        "contributors": ("contributors", "contributor"),
    }
    found: dict[str, int] = {}
    for key, aliases in wanted.items():
        for i, name in enumerate(names):
            if name in aliases:
                found[key] = i
                break
    # The historical order, for anything the header did not name.
    for key, i in zip(("number", "time", "description", "date", "log", "contributors"), range(6)):
        found.setdefault(key, i)
    return found


def parse_record_table(readme: str, heading: str = "World record history") -> list[ReadmeRow]:
    """Rows of the first markdown table after the heading; re-timed duplicates get keys like '21-retime-1'."""
    lines = readme.splitlines()
    start = next((i for i, l in enumerate(lines) if l.lstrip().startswith("#") and heading.lower() in l.lower()), None)
    if start is None:
        raise TrackError(f"The upstream README has no '{heading}' section; is this a clone of modded-nanogpt?")
    rows: list[ReadmeRow] = []
    columns: dict[str, int] | None = None
    seen: dict[int, int] = {}
    in_table = False
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if "|" not in stripped:
            if in_table:
                break
            if stripped.startswith("#"):
                break
            continue
        in_table = True
        cells = _split_cells(stripped)
        if columns is None:
            columns = _column_index(cells)
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        number_cell = cells[columns["number"]] if columns["number"] < len(cells) else ""
        if not re.fullmatch(r"\d+", number_cell):
            continue

        def cell(name: str) -> str:
            i = columns[name]
            return cells[i] if i < len(cells) else ""

        number = int(number_cell)
        seen[number] = seen.get(number, 0) + 1
        retiming = seen[number] > 1
        contributors = strip_links(cell("contributors"))
        rows.append(
            ReadmeRow(
                number=number,
                key=str(number) if not retiming else f"{number}-retime-{seen[number] - 1}",
                retiming=retiming,
                time_s=parse_time_s(cell("time")),
                description=strip_links(cell("description")),
                date=parse_date(cell("date")),
                contributors=contributors if contributors not in ("", "-") else None,
                log_link=_log_link(cell("log")),
            )
        )
    if not rows:
        raise TrackError(f"Found the '{heading}' section in the upstream README but no record rows in its table")
    return rows


# -- log → code -----------------------------------------------------------------------------------------------


def extract_code(log_text: str) -> ExtractedCode | None:
    """The training code embedded in a run log, or None (llm.c logs, logs without the '=' separator)."""
    text = log_text.replace("\r\n", "\n")
    lines = text.split("\n")
    seps = [i for i, line in enumerate(lines) if line.rstrip() == SEPARATOR]
    if not seps:
        return None
    if seps[0] == 0:
        if len(seps) < 2:
            return None
        code_lines, rest_lines = lines[1 : seps[1]], lines[seps[1] + 1 :]
    else:
        code_lines, rest_lines = lines[: seps[0]], lines[seps[0] + 1 :]
    code = "\n".join(code_lines)
    if not re.search(r"^\s*(import|from)\s+\w", code, re.MULTILINE):
        return None
    main, companions = split_companions(code)
    return ExtractedCode(main=main, companions=companions, rest="\n".join(rest_lines))


def split_companions(code: str) -> tuple[str, dict[str, str]]:
    """Split 'main script + dashed-header companion files' (record 61+) into its parts."""
    headers = list(_COMPANION_HEADER.finditer(code))
    if not headers:
        return code.rstrip() + "\n", {}
    main = code[: headers[0].start()].rstrip() + "\n"
    companions: dict[str, str] = {}
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(code)
        name = Path(header.group(1)).name
        companions[name] = code[header.end() : end].strip("\n") + "\n"
    return main, companions


def last_val(log_text: str) -> tuple[int | None, float | None]:
    """Steps and val loss of the last validation line (upstream or llm.c format)."""
    matches = list(_VAL_LINE.finditer(log_text))
    if matches:
        m = matches[-1]
        return int(m.group(1)), _to_float(m.group(3))
    llmc = list(_LLMC_VAL.finditer(log_text))
    if llmc:
        m = llmc[-1]
        return int(m.group(1)), _to_float(m.group(2))
    return None, None


def log_environment(log_text: str) -> dict[str, str]:
    """The versions a log says its run used: torch (and the CUDA it was built for), triton, python."""
    env: dict[str, str] = {}
    torch_line = _TORCH_LINE.search(log_text)
    if torch_line:
        env["torch"] = torch_line.group(1)
        if torch_line.group(2):
            env["cuda"] = torch_line.group(2)
    triton_line = _TRITON_LINE.search(log_text)
    if triton_line:
        env["triton"] = triton_line.group(1)
    python_line = _PYTHON_LINE.search(log_text)
    if python_line:
        env["python"] = python_line.group(1)
    return env


# What the benchmark's environments used (LS conda_envs, README: torch 2.7.1 for records 1-18 with triton 3.1
# for 1-11 and 3.3 for 12-18; records 19-21 needed a torch nightly of early 2025).
_BENCHMARK_ERAS = (
    (range(1, 12), {"torch": "2.7.1", "triton": "3.1.0", "source": "the benchmark's environment for records 1-11"}),
    (range(12, 19), {"torch": "2.7.1", "triton": "3.3.0", "source": "the benchmark's environment for records 12-18"}),
    (range(19, 22), {"torch": "2.7.0.dev20250125", "nightly": "yes",
                     "source": "the benchmark's environment for records 19-21 (a torch nightly)"}),
)


def era_requirements(number: int, environment: dict[str, str]) -> dict[str, str]:
    """The torch/triton a record needs: the benchmark's environments for records 1-21, else what its log
    says it ran with (later records pin their own); {} when nothing states it."""
    for numbers, needs in _BENCHMARK_ERAS:
        if number in numbers:
            return dict(needs)
    needs = {k: environment[k] for k in ("torch", "triton") if k in environment}
    if needs:
        needs["source"] = "the record's log"
        if ".dev" in needs.get("torch", ""):
            needs["nightly"] = "yes"
    return needs


def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def pick_log(folder: Path) -> Path | None:
    """The log a folder link stands for: first log directly inside (sorted), else the first in a sub-folder."""
    direct = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _LOG_SUFFIXES)
    if direct:
        return direct[0]
    nested = sorted(
        (p for p in folder.rglob("*") if p.is_file() and p.suffix in _LOG_SUFFIXES),
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    return nested[0] if nested else None


def pick_script(folder: Path) -> Path | None:
    scripts = sorted(p for p in folder.rglob("*.py") if p.is_file())
    preferred = [p for p in scripts if p.name.startswith("train_gpt")]
    return (preferred or scripts or [None])[0]


# -- sync -----------------------------------------------------------------------------------------------------


def _say(progress: Progress, message: str, fraction: float = 0.0) -> None:
    if progress is not None:
        progress(message, fraction)


def _git_env() -> dict[str, str]:
    return {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}


def _clone_or_update(url: str, clone_dir: Path, progress: Progress) -> tuple[Path, bool]:
    import git  # GitPython; imported here so that reading the index never needs it

    stale = False
    if (clone_dir / ".git").exists():
        _say(progress, f"updating {clone_dir} from {url}")
        try:
            repo = git.Repo(clone_dir)
            with repo.git.custom_environment(**_git_env()):
                repo.git.remote("set-url", "origin", url)
                repo.git.fetch("--depth=1", "origin", "HEAD")
                repo.git.reset("--hard", "FETCH_HEAD")
        except git.GitCommandError as exc:
            stale = True
            _say(progress, f"update failed ({_git_reason(exc)}); using the clone from the last sync")
        return clone_dir, stale
    _say(progress, f"cloning {url} into {clone_dir}", 0.05)
    clone_dir.parent.mkdir(parents=True, exist_ok=True)
    partial = clone_dir.with_name(clone_dir.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        git.Repo.clone_from(url, partial, depth=1, env=_git_env())
    except git.GitCommandError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise TrackError(
            f"Could not clone {url}: {_git_reason(exc).rstrip('.')}. Syncing the nanogpt records needs internet; "
            "or pass --path to a local clone of modded-nanogpt."
        ) from exc
    os.replace(partial, clone_dir)
    _say(progress, "cloned", 0.2)
    return clone_dir, stale


def _git_reason(exc: Exception) -> str:
    """The most telling line of git's stderr (the last 'fatal:' line, else the last non-empty one)."""
    stderr = str(getattr(exc, "stderr", "") or exc)
    lines = [l.strip().strip("'").strip() for l in stderr.splitlines()]
    lines = [l.removeprefix("stderr:").strip().strip("'").strip() for l in lines]
    lines = [l for l in lines if l]
    fatal = [l for l in lines if l.startswith(("fatal:", "error:"))]
    if fatal:
        return fatal[-1].split(":", 1)[1].strip() if fatal[-1].startswith("fatal:") else fatal[-1]
    return lines[-1] if lines else "git failed"


def _head_commit(clone_dir: Path) -> str | None:
    try:
        import git

        return git.Repo(clone_dir).head.commit.hexsha
    except Exception:  # not a git repo (a plain copy passed with --path) or an empty one
        return None


def sync_records(
    url: str | None = None,
    path: Path | None = None,
    cache_dir: Path | None = None,
    progress: Progress = None,
    benchmark: Path | None = None,
) -> SyncIndex:
    """Clone or update modded-nanogpt (or use the local clone at `path`), extract every record, write the index.

    `benchmark` is a local clone of llm-speedrunner (see apply_benchmark); without it, the benchmark clone of
    the previous sync is read again if it is still there."""
    previous = _previous_benchmark(cache_dir)
    if path is not None:
        clone_dir, stale = Path(path).expanduser().resolve(), False
        if not (clone_dir / "README.md").is_file():
            raise TrackError(f"{clone_dir} has no README.md; pass --path to a clone of modded-nanogpt")
        _say(progress, f"using the local clone {clone_dir}", 0.2)
        upstream = str(clone_dir)
    else:
        upstream = url or UPSTREAM_URL
        clone_dir, stale = _clone_or_update(upstream, default_clone_dir(cache_dir), progress)

    readme = (clone_dir / "README.md").read_text(encoding="utf-8", errors="replace")
    rows = parse_record_table(readme)
    out_dir = nanogpt_cache_dir(cache_dir)
    records_dir = out_dir / "records"
    fresh = out_dir / "records.partial"
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    records = []
    for i, row in enumerate(rows):
        records.append(_sync_one(row, clone_dir, fresh, progress))
        _say(progress, f"extracting record {row.key}", 0.2 + 0.8 * (i + 1) / len(rows))
    shutil.rmtree(records_dir, ignore_errors=True)
    os.replace(fresh, records_dir)
    index = SyncIndex(
        upstream=upstream,
        commit=_head_commit(clone_dir),
        synced_at=time.time(),
        clone_dir=str(clone_dir),
        records=records,
        stale=stale,
    )
    benchmark = benchmark if benchmark is not None else previous
    if benchmark is not None:
        return apply_benchmark(index, benchmark, cache_dir, progress)
    index.save(index_path(cache_dir))
    _say(progress, f"{index.summary()}, index at {index_path(cache_dir)}", 1.0)
    return index


def _previous_benchmark(cache_dir: Path | None) -> Path | None:
    try:
        old = load_index(cache_dir)
    except TrackError:
        return None
    if old is None or not old.benchmark or not Path(old.benchmark).is_dir():
        return None
    return Path(old.benchmark)


# -- the benchmark (facebookresearch/llm-speedrunner) --------------------------------------------------------


def check_benchmark_clone(path: Path) -> Path:
    """The resolved clone, or TrackError naming what is missing."""
    root = Path(path).expanduser().resolve()
    templates, hints = root / BENCHMARK_TEMPLATES, root / BENCHMARK_HINTS
    missing = [str(p.relative_to(root)) for p in (templates, hints) if not p.is_dir()]
    if missing:
        raise TrackError(
            f"{root} does not look like a clone of facebookresearch/llm-speedrunner (no {', '.join(missing)}); "
            "pass --benchmark the folder of such a clone"
        )
    return root


def apply_benchmark(index: SyncIndex, benchmark: Path, cache_dir: Path | None = None,
                    progress: Progress = None) -> SyncIndex:
    """Read a local clone of the benchmark: its template script for each record 1-21 that has no code upstream
    (marked CODE_FROM_TEMPLATE) and its hint files, copied into the cache; save and return the index.

    The benchmark's `record_N` folders mean: template record_N = record N's code; hints record_N = the change
    from record N to N+1 (record_6's hints are the PyTorch 2.5 upgrade the paper folds out)."""
    root = check_benchmark_clone(benchmark)
    _say(progress, f"reading the benchmark clone {root}", 0.9)
    base = nanogpt_cache_dir(cache_dir)
    for number in BENCHMARK_RECORDS:
        rec = index.primary(number)
        template = root / BENCHMARK_TEMPLATES / f"record_{number}" / BENCHMARK_SCRIPT
        if rec is None or rec.has_code or not template.is_file():
            continue
        text = template.read_text(encoding="utf-8", errors="replace")
        dest_rel = Path("records") / rec.key
        (base / dest_rel).mkdir(parents=True, exist_ok=True)
        (base / dest_rel / MAIN_SCRIPT).write_text(text, encoding="utf-8")
        rec.code_paths = [(dest_rel / MAIN_SCRIPT).as_posix()]
        rec.has_code = True
        rec.code_source = CODE_FROM_TEMPLATE
        rec.requirements = era_requirements(number, {})
        upstream_note = f"; upstream: {rec.note}" if rec.note else ""
        rec.note = f"script from the {CODE_FROM_TEMPLATE} record_{number}/{BENCHMARK_SCRIPT}{upstream_note}"
    hints_dir = _copy_hints(root / BENCHMARK_HINTS, benchmark_cache_dir(cache_dir) / "hints")
    index.benchmark = str(root)
    index.benchmark_commit = _head_commit(root)
    index.hints_dir = str(hints_dir)
    index.save(index_path(cache_dir))
    _say(progress, f"{index.summary()}, index at {index_path(cache_dir)}", 1.0)
    return index


def _copy_hints(source: Path, dest: Path) -> Path:
    """Copy record_N/level_*.txt (N = 1..20) into dest, replacing what an earlier sync copied."""
    fresh = dest.with_name(dest.name + ".partial")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    for folder in sorted(source.glob("record_*")):
        if not folder.is_dir() or not folder.name.removeprefix("record_").isdigit():
            continue
        for hint in sorted(folder.glob("level_*_*.txt")):
            (fresh / folder.name).mkdir(exist_ok=True)
            shutil.copyfile(hint, fresh / folder.name / hint.name)
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(fresh, dest)
    return dest


def _sync_one(row: ReadmeRow, clone_dir: Path, out_dir: Path, progress: Progress) -> SyncedRecord:
    rec = SyncedRecord(
        number=row.number,
        key=row.key,
        time_s=row.time_s,
        description=row.description,
        date=row.date,
        contributors=row.contributors,
        retiming=row.retiming,
        log_link=row.log_link,
    )
    if row.log_link is None:
        rec.note = "no log linked upstream"
        return rec
    target = (clone_dir / row.log_link).resolve()
    if clone_dir.resolve() not in target.parents and target != clone_dir.resolve():
        rec.note = "log link points outside the repository"
        return rec
    if not target.exists():
        rec.note = "linked log is missing upstream"
        return rec
    source = target
    if target.is_dir():
        source = pick_log(target) or pick_script(target)
        if source is None:
            rec.note = "linked folder holds no log or script"
            return rec
    rec.log_file = source.relative_to(clone_dir.resolve()).as_posix()
    text = source.read_text(encoding="utf-8", errors="replace")
    dest = out_dir / row.key
    final_rel = Path("records") / row.key
    if source.suffix == ".py":
        dest.mkdir(parents=True, exist_ok=True)
        main, companions = split_companions(text)
        _write_code(rec, dest, final_rel, ExtractedCode(main=main, companions=companions))
        rec.code_source = CODE_FROM_SCRIPT
        rec.requirements = era_requirements(rec.number, {})
        rec.note = f"script {source.name} (no log)"
        return rec
    rec.steps, rec.val_loss = last_val(text)
    dest.mkdir(parents=True, exist_ok=True)
    code = extract_code(text)
    log_rest = code.rest if code else text
    (dest / "record.log").write_text(log_rest, encoding="utf-8")
    rec.log_copy = (final_rel / "record.log").as_posix()
    rec.environment = log_environment(log_rest)
    rec.requirements = era_requirements(rec.number, rec.environment)
    if code is None:
        rec.note = "log holds no training code (llm.c format)" if _LLMC_VAL.search(text) else "log holds no code"
        return rec
    _write_code(rec, dest, final_rel, code)
    rec.code_source = CODE_FROM_LOG
    return rec


def _write_code(rec: SyncedRecord, dest: Path, final_rel: Path, code: ExtractedCode) -> None:
    (dest / MAIN_SCRIPT).write_text(code.main, encoding="utf-8")
    rec.code_paths = [(final_rel / MAIN_SCRIPT).as_posix()]
    for name, body in code.companions.items():
        if name == MAIN_SCRIPT:
            continue
        (dest / name).write_text(body, encoding="utf-8")
        rec.code_paths.append((final_rel / name).as_posix())
    rec.has_code = True
