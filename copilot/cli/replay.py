"""`speedcopilot replay ID`: play a recorded session back (read-only), in the app or as a text timeline."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from copilot.cli._common import add_session_dir_flag, build_track, console, positive_float, settings_from_args

EVENT_STYLES = {
    "session_started": "bold", "session_ended": "bold", "suggestion_requested": "cyan",
    "suggestion_received": "bold cyan", "suggestion_failed": "red", "hunk_decided": "yellow",
    "feedback_given": "yellow", "commit_created": "bold green", "run_started": "magenta", "metric": "dim",
    "run_finished": "bold magenta", "error": "red", "guard_report": "red", "node_created": "blue",
    "node_scored": "blue",
}
DECISION_STYLES = {"accept": "green", "reject": "red", "edit": "yellow"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="play a recorded session back (read-only): the app, or --headless for a text timeline"
    )
    parser.add_argument("session_id", metavar="ID",
                        help="session id, unique prefix, 'last', or the path of a session folder")
    parser.add_argument("--speed", type=positive_float, default=10.0,
                        help="recorded seconds per second of replay (default 10; long pauses are capped at 2 s)")
    parser.add_argument("--from", dest="start_at", default="0", metavar="T",
                        help="start at this point of the session: seconds, m:ss or e.g. 2m (default 0)")
    parser.add_argument("--follow", action="store_true",
                        help="keep reading new events of a session that is still running")
    parser.add_argument("--headless", action="store_true",
                        help="print the events as a text timeline instead of opening the app")
    parser.add_argument("--paced", action="store_true",
                        help="with --headless: print at replay speed instead of all at once")
    parser.add_argument("--all-metrics", action="store_true",
                        help="with --headless: print every training-loss line too (default: validation only)")
    parser.add_argument("--theme", default=None, help="colour theme of the app")
    add_session_dir_flag(parser)
    parser.set_defaults(func=run)


def find_session(session_id: str, sessions_root: Path) -> Path:
    """A folder path holding events.jsonl, else an id/prefix/'last' in the sessions folder or its examples/."""
    from copilot.core.errors import SessionNotFoundError
    from copilot.core.session.events import EVENTS_FILE
    from copilot.core.session import resolve_session_dir

    direct = Path(session_id).expanduser()
    if (direct / EVENTS_FILE).is_file():
        return direct
    try:
        return resolve_session_dir(sessions_root, session_id)
    except SessionNotFoundError as first:
        examples = sessions_root / "examples"
        if examples.is_dir():
            try:
                return resolve_session_dir(examples, session_id)
            except SessionNotFoundError:
                pass
        raise first


def run(args: argparse.Namespace) -> int:
    from copilot.core.errors import ConfigError
    from copilot.core.session.replay import ReplayPlayer, parse_time

    settings = settings_from_args(args)
    session_dir = find_session(args.session_id, settings.session_dir)
    try:
        start_at = parse_time(args.start_at)
    except ValueError as exc:
        raise ConfigError(f"--from: {exc}") from None
    if args.speed <= 0:
        raise ConfigError("--speed must be a positive number, e.g. 10 (recorded seconds per second)")
    player = ReplayPlayer.from_session(session_dir, speed=args.speed, start_at=start_at, follow=args.follow,
                                       cache_dir=settings.cache_dir)
    if args.headless:
        return print_timeline(player, paced=args.paced, all_metrics=args.all_metrics)
    from copilot.ui.replay import run_replay_app

    return run_replay_app(player, theme=args.theme or settings.theme, reference=_reference(player, settings))


def _reference(player: Any, settings: Any) -> list[Any]:
    """The record's own curve, when the session's track is at hand on this machine (it may not be)."""
    started = next((e.body for e in player.events if e.type == "session_started"), None)
    if started is None:
        return []
    try:
        return list(build_track(settings, started.track).reference_curve(started.record))
    except Exception:  # an unsynced or unknown track: the replay shows the runs without the record's curve
        return []


def print_timeline(player: Any, paced: bool = False, all_metrics: bool = False) -> int:
    from rich.text import Text

    from copilot.core.session.replay import AsyncioClock, VirtualClock, fmt_clock

    out = console()
    name = player.session_dir.name if player.session_dir is not None else "session"
    out.print(Text(f"replay of {name} · {len(player.events)} events over {fmt_clock(player.duration)}"
                   + (" · following" if player.follow else ""), style="bold"))
    for problem in player.problems:
        out.print(Text(f"log problem: {problem}", style="yellow"))
    if player.cursor:
        state = player.state
        out.print(Text(f"… {player.cursor} events before {fmt_clock(player.position)} applied silently "
                       f"(head {(state.head or '?')[:7]}, {len(state.runs)} run(s))", style="dim"))

    def on_event(event: Any) -> None:
        if event.type == "metric" and not all_metrics and event.get("val_loss") is None:
            return
        out.print(timeline_line(event, player.positions[player.cursor - 1], player.state), soft_wrap=True)

    clock = AsyncioClock() if paced else VirtualClock()
    asyncio.run(player.play(on_event, clock=clock))
    out.print(summary_text(player.state), soft_wrap=True)
    return 0


def timeline_line(event: Any, position: float, state: Any) -> Any:
    from rich.text import Text

    from copilot.core.session.replay import describe_event, fmt_clock

    line = Text(no_wrap=False)
    line.append(f"{fmt_clock(position):>9}  ", style="dim")
    line.append(f"{event.type:<21}", style=EVENT_STYLES.get(event.type, ""))
    description = describe_event(event, state)
    style = DECISION_STYLES.get(str(event.get("decision")), "") if event.type == "hunk_decided" else ""
    line.append(description, style=style)
    return line


def summary_text(state: Any) -> Any:
    from rich.text import Text

    text = Text("\n")
    text.append("final state", style="bold")
    text.append(f": head {(state.head or '?')[:7]} on {state.branch or '?'} · "
                f"{max(len(state.commits) - 1, 0)} commit(s) after the start · {len(state.suggestions)} suggestion(s)")
    decisions = [d.action for s in state.suggestions.values() for d in s.decisions.values()]
    if decisions:
        text.append(f" · hunks: {decisions.count('accept')} accepted, {decisions.count('edit')} edited, "
                    f"{decisions.count('reject')} rejected")
    for run in state.runs.values():
        best = run.best_val
        text.append(f"\n  run {run.run_id} on {run.commit[:7]}: {run.status}"
                    + (f", best val {best:.4f}" if best is not None else ""))
    best_ms = state.best_time_to_target_ms()
    if best_ms is not None:
        text.append(f"\n  best time to target: {best_ms / 1000:.1f}s")
    if state.ended:
        text.append("\n  session ended")
    return text
