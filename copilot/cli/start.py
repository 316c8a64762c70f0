"""`speedcopilot start`: open the co-pilot app on a git-versioned copy of a record."""

from __future__ import annotations

import argparse
from pathlib import Path

from copilot.cli._common import (
    add_provider_flags,
    add_session_dir_flag,
    add_track_flag,
    build_provider,
    build_runner,
    build_track,
    console,
    non_negative_int,
    positive_int,
    settings_from_args,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("start", help="open the co-pilot app on record N (or resume a session)")
    parser.add_argument("--record", type=non_negative_int, default=None, help="record to start from (default 0)")
    add_track_flag(parser)
    add_provider_flags(parser)
    parser.add_argument("--gpus", type=positive_int, default=None, help="GPUs per run (nanogpt track: 1, 2, 4 or 8)")
    parser.add_argument("--runner", default=None, help="local (default), ssh://[user@]host[:port]/path, or "
                        "slurm://[partition][?gpus=8&time=00:30:00&account=…&cpus=…&mem=…&qos=…]")
    parser.add_argument("--resume", metavar="ID", default=None, help="resume a session (id, prefix, or 'last')")
    parser.add_argument("--participant", default=None, help="participant id for studies")
    parser.add_argument("--mode", choices=["copilot", "auto"], default="copilot",
                        help="copilot (default) or auto (the agent drives, you watch and may take over)")
    parser.add_argument("--study", type=Path, default=None,
                        help="study file (TOML): picks this participant's next task and mode, recorded in the session")
    parser.add_argument("--theme", default=None, help="colour theme (saved when changed in the app)")
    add_session_dir_flag(parser, access="write")
    parser.set_defaults(func=run)


def open_session(args: argparse.Namespace, mode: str = "copilot", driver: str = "app"):
    """Build track, provider and runner from settings, then create or resume the session (`driver` names who
    opens it: the end of a run it re-attaches is recorded "resume by <driver>")."""
    from copilot.core.session import Session, ensure_not_open, load_state, resolve_session_dir

    settings = settings_from_args(args)
    if args.resume:
        session_dir = resolve_session_dir(settings.session_dir, args.resume)
        ensure_not_open(session_dir)
        state, _ = load_state(session_dir)
        recorded_runner = _recorded_runner(session_dir)
        if getattr(args, "runner", None) is None and recorded_runner != "local":
            settings = settings_from_args(args, runner=recorded_runner)  # re-attach through the same runner
        track = build_track(settings, state.track)
        _ensure_data(track)
        provider = build_provider(settings, track, state.record,
                                  name=getattr(args, "provider", None) or state.provider or settings.provider)
        return settings, Session.open(settings.session_dir, session_dir.name, track, provider,
                                      runner=build_runner(settings),
                                      options=_options(settings, mode, args, provider), driver=driver)
    study = _study_assignment(args, settings)
    if study is not None:
        mode = study.mode
        hints = study.task.hint_levels if study.task.hint_levels is not None else settings.hint_levels
        settings = settings_from_args(args, track=study.task.track, hint_levels=list(hints))
    track = build_track(settings)
    record = study.task.record if study is not None else (0 if args.record is None else args.record)
    track.record(record)  # fail early with the list of valid records
    _ensure_data(track)
    provider = build_provider(settings, track, record)
    options = _options(settings, mode, args, provider)
    if study is not None:
        from dataclasses import replace

        options = replace(options, study=study.to_event(), budget=study.budgets.to_dict() or None)
    session = Session.create(settings.session_dir, track, record, provider, runner=build_runner(settings),
                             options=options, baseline=baseline_for(settings, track, record))
    return settings, session


def baseline_for(settings, track, record: int) -> dict:
    """The baseline a new session records: the same-machine one when `speedcopilot baseline` measured this
    task here under these settings, else the catalogue's times with the reason (core/research/baselines.py)."""
    from copilot.core.errors import SpeedcopilotError
    from copilot.core.research import baselines as b

    next_record = b.next_record_of(track, record)
    record_s = track.record(record).time_s
    next_s = track.record(next_record).time_s if next_record is not None else None
    fp = b.fingerprint(track, settings.runner, settings.gpus or 1)
    try:
        choice = b.select_baseline(b.BaselineStore(), fp, b.conditions(track), record, next_record, record_s, next_s)
    except SpeedcopilotError as exc:  # a damaged store must not keep anyone from working: say so in the log
        choice = b.BaselineChoice(source=b.CATALOGUE, record=record, next_record=next_record, record_time_s=record_s,
                                  next_record_time_s=next_s, reason=str(exc), fingerprint_key=fp.key())
    return choice.to_fields()


def _recorded_runner(session_dir: Path) -> str:
    from copilot.core.session.events import EVENTS_FILE, read_events

    started = next((e for e in read_events(session_dir / EVENTS_FILE).events if e.type == "session_started"), None)
    return str(started.get("runner_url") or "local") if started is not None else "local"


def _study_assignment(args: argparse.Namespace, settings):
    """The participant's next (task, mode) from a counterbalanced study file, or None without --study."""
    if getattr(args, "study", None) is None:
        return None
    from copilot.core.errors import ConfigError
    from copilot.core.session import list_session_dirs
    from copilot.core.research.study import load_study, next_assignment

    if not settings.participant:
        raise ConfigError("--study needs --participant (the id this study file assigns tasks to)")
    study = load_study(args.study)
    assignment = next_assignment(study, settings.participant, list_session_dirs(settings.session_dir))
    if assignment is None:
        raise ConfigError(f"participant {settings.participant} has finished every session of study {study.name}")
    return assignment


def _options(settings, mode: str, args: argparse.Namespace | None = None, provider=None):
    from copilot.core.edits import EditLimits
    from copilot.core.session import SessionOptions

    model = getattr(provider, "model", None) or settings.model
    edit_format = "search_replace" if getattr(provider, "offline", False) else settings.edit_format_for(model)
    return SessionOptions(
        edit_format=edit_format,
        edit_limits=EditLimits(max_line_chars=settings.edit_max_line_chars),
        mode=mode,
        hint_levels=settings.hint_levels,
        participant=settings.participant,
        gpus=settings.gpus or 1,
        edit_retries=settings.edit_retries,
        hang_timeout_s=settings.hang_timeout_s,
        run_timeout_s=settings.run_timeout_s,
        budget=getattr(args, "agent_budget", None),
        runner_url=settings.runner,
        run_env_pass=settings.run_env_pass,
        secrets=tuple(v for v in (settings.api_key,) if v),  # scrubbed from run output even if not in the env
        agent_guard_override=settings.agent_guard_override,
    )


def _ensure_data(track) -> None:
    """The micro corpus is generated on first use (seconds), with a progress bar before the app opens."""
    if track.name != "micro":
        return
    from copilot.core.tracks.microlayout import micro_data_ready

    if micro_data_ready(track.data_dir):
        return
    from rich.progress import Progress

    from copilot.core.tracks.microdata import prepare_micro_data

    with Progress(console=console()) as progress:
        task = progress.add_task("generating the micro corpus (first run only)", total=1.0)
        prepare_micro_data(track.data_dir, progress=lambda msg, f: progress.update(task, description=msg, completed=f))


def run(args: argparse.Namespace) -> int:
    from copilot.config import save_user_setting
    from copilot.ui.app import run_app

    settings = settings_from_args(args)
    theme = args.theme or settings.theme
    if not args.resume and not args.study:
        _ensure_data(build_track(settings))  # first run only: a progress bar in the terminal, before the app
    # The app draws its first frame, then builds the session in a worker (git, provider): startup stays < 1 s.
    # Errors raised while building it are re-raised after the terminal is restored.
    return run_app(lambda: open_session(args, mode=args.mode)[1], theme=theme,
                   on_theme_saved=lambda name: save_user_setting("theme", name),
                   stop_at_target=settings.stop_at_target) or 0
