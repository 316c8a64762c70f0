"""Shared pieces of the CLI modules: settings from flags, the console, building tracks and providers."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from copilot.config import Settings, load_settings


class _Console(Console):
    def on_broken_pipe(self) -> None:
        raise BrokenPipeError  # let cli.main stop quietly, with the status of a closed pipe (rich exits 1)


def console(stderr: bool = False) -> Console:
    return _Console(stderr=stderr, highlight=False)


def plain(value: object, style: str = "") -> Text:
    """Text printed as it is: catalogue, session and user text never goes through rich markup (a `[b]` or a
    trailing backslash in a description is shown literally)."""
    return Text(str(value), style=style)


def add_session_dir_flag(parser: argparse.ArgumentParser, access: str = "read") -> None:
    """--session-dir, and what the command needs of that folder ("read" or "write"): `cli.main` checks it before
    the command starts, so a file, a read-only disk or a full one is one line, not a traceback halfway."""
    parser.add_argument("--session-dir", type=Path, default=None,
                        help="folder of sessions (default ./sessions; env SPEEDCOPILOT_SESSION_DIR)")
    parser.set_defaults(sessions_access=access)


def check_sessions_folder(args: argparse.Namespace) -> None:
    """The up-front check of the command's sessions folder (see add_session_dir_flag)."""
    access = getattr(args, "sessions_access", None)
    if access is None:
        return
    from copilot.core.session.storage import check_sessions_dir

    settings = settings_from_args(args)
    check_sessions_dir(settings.session_dir, write=access == "write", min_free_mb=settings.min_free_mb)


# -- argparse types: a wrong number is refused where it is typed, in argparse's own words --------------------


def _number(text: str, kind: type, what: str) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if kind is float and value != value:  # NaN compares unequal to itself
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def positive_float(text: str) -> float:
    """Seconds, minutes, dollars: more than zero (a timeout of -5 would stop a run at once)."""
    value = _number(text, float, "a number")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return float(value)


def positive_int(text: str) -> int:
    """Counts (nodes, tokens, GPUs): 1 or more."""
    value = _number(text, int, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return int(value)


def non_negative_int(text: str) -> int:
    """Record numbers and seeds: 0 or more."""
    value = _number(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return int(value)


def add_track_flag(parser: argparse.ArgumentParser, default: str | None = None) -> None:
    parser.add_argument("--track", choices=["auto", "micro", "nanogpt"], default=default,
                        help="micro (CPU, built in) or nanogpt (modded-nanogpt records); default: auto")


def add_provider_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", choices=["auto", "openai", "oracle"], default=None,
                        help="LLM provider: openai (any OpenAI-compatible endpoint) or oracle (offline); "
                             "default auto = openai when an API key is set, else oracle")
    parser.add_argument("--model", default=None, help="model name for the openai provider")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (env OPENAI_BASE_URL)")
    parser.add_argument("--hints", default=None,
                        help="hint levels shown to the model, e.g. 1 or 1,2,3 (0 = none)")


def settings_from_args(args: argparse.Namespace, **extra: Any) -> Settings:
    flags = {
        "session_dir": getattr(args, "session_dir", None),
        "track": getattr(args, "track", None),
        "provider": getattr(args, "provider", None),
        "model": getattr(args, "model", None),
        "base_url": getattr(args, "base_url", None),
        "hint_levels": getattr(args, "hints", None),
        "gpus": getattr(args, "gpus", None),
        "runner": getattr(args, "runner", None),
        "parallel": getattr(args, "parallel", None),
        "participant": getattr(args, "participant", None),
        "hints_dir": getattr(args, "hints_dir", None),
    }
    flags.update(extra)
    return load_settings(flags)


def build_track(settings: Settings, name: str | None = None) -> Any:
    from copilot.core.tracks import build_track as _build

    track = _build(name or settings.track, data_dir=settings.data_dir, cache_dir=settings.cache_dir,
                   hints_dir=settings.hints_dir)
    if settings.target_val_loss is not None:  # a target of the user's own (tiny runs): recorded in sessions
        track.target_val_loss = float(settings.target_val_loss)
    return track


def build_provider(settings: Settings, track: Any, record: int, name: str | None = None) -> Any:
    from copilot.core.llm.providers import build_provider as _build

    return _build(
        name or settings.provider,
        model=settings.model,
        api_key=settings.api_key,
        base_url=settings.base_url,
        timeout_s=settings.request_timeout_s,
        deadline_s=settings.request_deadline_s,
        max_retries=settings.max_retries,
        max_tokens=settings.max_tokens,
        prices=settings.prices,
        track=track,
        record=record,
    )


RUNNER_HELP = ("local (default), ssh://[user@]host[:port]/path, or "
               "slurm://[partition][?gpus=8&time=00:30:00&account=…&cpus=…&mem=…&qos=…]")


def build_runner(settings: Settings) -> Any:
    if settings.runner.startswith("ssh://"):
        from copilot.core.runs.ssh import SshRunner

        return SshRunner.from_url(settings.runner)
    if settings.runner == "slurm" or settings.runner.startswith("slurm://"):
        from copilot.core.runs.slurm import SlurmRunner

        return SlurmRunner.from_url(settings.runner)
    if settings.runner != "local":
        from copilot.core.errors import ConfigError

        raise ConfigError(f"runner must be {RUNNER_HELP}; got {settings.runner!r}")
    from copilot.core.runs import LocalRunner

    return LocalRunner()


def fmt_seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 3600:
        return f"{value / 3600:.2f} h"
    if value >= 120:
        return f"{value / 60:.2f} min"
    return f"{value:.1f} s"


# -- tables that fit the terminal ---------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A table column: its header, the width its cells need, and how much it matters (1 = most)."""

    name: str
    width: int
    priority: int
    justify: str = "left"


_SESSION_ID = re.compile(r"^\d{8}-\d{6}-([0-9a-f]{4,})$")


def short_session_id(name: str) -> str:
    """`20261201-103348-2e52cc` → `2e52cc` (commands take it: a unique suffix); other folder names stay."""
    match = _SESSION_ID.match(name)
    return match.group(1) if match else name


def fit_columns(columns: list[Column], width: int, wide: bool = False) -> list[Column]:
    """The columns that fit `width` characters of a rich table (one border column plus padding and a separator
    per column), taken by priority and shown in their declared order. `wide`: every column."""
    if wide:
        return list(columns)
    chosen: set[str] = set()
    used = 1
    for column in sorted(columns, key=lambda c: c.priority):
        need = max(column.width, len(column.name)) + 3
        if used + need <= width or not chosen:
            chosen.add(column.name)
            used += need
    return [c for c in columns if c.name in chosen]


def fitted_table(columns: list[Column], width: int, wide: bool = False, **table_kwargs: Any) -> Any:
    """A rich Table of the columns that fit; cells keep to one line (ellipsis) unless `wide`."""
    from rich.table import Table

    table = Table(**table_kwargs)
    chosen = fit_columns(columns, width, wide)
    # what the chosen columns leave of the width: any one cell may grow into it before it is cut
    spare = max(0, width - 1 - sum(max(c.width, len(c.name)) + 3 for c in chosen))
    for column in chosen:
        if wide:
            table.add_column(column.name, justify=column.justify)  # type: ignore[arg-type]
        else:
            table.add_column(column.name, justify=column.justify, no_wrap=True,  # type: ignore[arg-type]
                             overflow="ellipsis", min_width=min(column.width, len(column.name)) or None,
                             max_width=max(column.width, len(column.name)) + spare)
    return table


def add_fitted_row(table: Any, cells: dict[str, Any]) -> None:
    """Add the cells of the columns the table shows (by header), printed as plain text."""
    table.add_row(*(cells[c.header] if isinstance(cells[c.header], Text) else plain(cells[c.header])
                    for c in table.columns))


def add_wide_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--wide", action="store_true",
                        help="show every column (the default picks the columns that fit the terminal)")


def print_table(out: Any, table: Any, wide: bool = False) -> None:
    """Print a table; `wide` tables take the width they need (a pager or a file takes them whole)."""
    if wide:
        needed = out.measure(table, options=out.options.update_width(100_000)).maximum
        out.width = max(out.width, needed)
    out.print(table)
