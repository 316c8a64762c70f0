"""Shared pieces of the CLI modules: settings from flags, the console, building tracks and providers."""

from __future__ import annotations

import argparse
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


def add_session_dir_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--session-dir", type=Path, default=None,
                        help="folder of sessions (default ./sessions; env SPEEDCOPILOT_SESSION_DIR)")


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

    return _build(name or settings.track, data_dir=settings.data_dir, cache_dir=settings.cache_dir,
                  hints_dir=settings.hints_dir)


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
