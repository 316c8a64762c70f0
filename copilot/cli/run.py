"""`speedcopilot run --session ID`: train the session's current commit headless, with a live display."""

from __future__ import annotations

import argparse
import asyncio

from copilot.cli._common import add_session_dir_flag, build_runner, build_track, console, fmt_seconds, settings_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="train a session's current commit (headless)")
    parser.add_argument("--session", required=True, metavar="ID", help="session id, unique prefix, or 'last'")
    parser.add_argument("--runner", default=None, help="local (default), ssh://[user@]host[:port]/path, or "
                        "slurm://[partition][?gpus=8&time=00:30:00&account=…&cpus=…&mem=…&qos=…]")
    parser.add_argument("--gpus", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=None, help="stop the run after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="no live display, only the result")
    parser.add_argument("--run-anyway", action="store_true",
                        help="train even if the integrity guard blocks the commit (your override is logged)")
    add_session_dir_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from copilot.core.llm.providers import OracleProvider
    from copilot.core.session import Session, SessionOptions, ensure_not_open, load_state, resolve_session_dir

    settings = settings_from_args(args, run_timeout_s=args.timeout)
    session_dir = resolve_session_dir(settings.session_dir, args.session)
    ensure_not_open(session_dir)
    state, _ = load_state(session_dir)
    from copilot.cli.start import _recorded_runner

    if args.runner is None and _recorded_runner(session_dir) != "local":
        settings = settings_from_args(args, run_timeout_s=args.timeout, runner=_recorded_runner(session_dir))
    track = build_track(settings, state.track)
    from copilot.cli.start import _ensure_data

    _ensure_data(track)
    provider = OracleProvider(track, state.record)  # no suggestions are asked for in a headless run
    options = SessionOptions(gpus=settings.gpus or 1, hang_timeout_s=settings.hang_timeout_s,
                             run_timeout_s=settings.run_timeout_s,
                             run_env_pass=settings.run_env_pass,
                             secrets=tuple(v for v in (settings.api_key,) if v))
    session = Session.open(settings.session_dir, session_dir.name, track, provider,
                           runner=build_runner(settings), options=options)
    try:
        return asyncio.run(_train(session, quiet=args.quiet, override_guard=args.run_anyway))
    finally:
        session.close_now(reason="headless run finished")


async def _train(session, quiet: bool, override_guard: bool = False) -> int:
    from rich.live import Live
    from rich.text import Text

    from copilot.core.errors import RunError
    from copilot.core.session.engine import GuardBlocked

    out = console()
    try:
        view = await session.start_run(started_by="run", override_guard=override_guard)
    except GuardBlocked as exc:
        raise RunError(f"{exc}. Pass --run-anyway to train it regardless (logged as your override).") from None
    out.print(f"run {view.run_id} on commit {view.commit[:10]}: {' '.join(view.command)}")
    target = session.state.target_val_loss

    def status_line() -> Text:
        run = session.state.runs[view.run_id]
        last = run.last_point
        best = run.best_val
        text = f"step {last.step if last else 0}/{(last.total_steps if last else None) or '?'}"
        if last and last.train_time_ms is not None:
            text += f" · train time {last.train_time_ms / 1000:.1f}s"
        if best is not None:
            text += f" · best val {best:.4f} (target ≤ {target})"
        return Text(text)

    if quiet:
        result = await session.wait_run(view.run_id)
    elif out.is_terminal:
        with Live(status_line(), console=out, refresh_per_second=4) as live:
            session.subscribe_lines(lambda _run, _line: live.update(status_line()))
            result = await session.wait_run(view.run_id)
    else:  # piped or logged: one plain line per validation, nothing redrawn in place
        printed = 0

        def on_event(event) -> None:
            nonlocal printed
            if event.type == "metric" and event.get("run_id") == view.run_id and event.get("val_loss") is not None:
                printed += 1
                out.print(status_line(), markup=False, highlight=False)

        session.subscribe(on_event)
        result = await session.wait_run(view.run_id)
        session.unsubscribe(on_event)
    ttt = result.time_to_target_ms
    out.print(
        f"[bold]{result.outcome.value}[/bold] · time to target {fmt_seconds(ttt / 1000 if ttt is not None else None)}"
        f" · final val {result.final_val_loss if result.final_val_loss is not None else '–'}"
        f" · wall {fmt_seconds(result.wall_time_s)} · exit {result.exit_code}"
    )
    if result.error_summary:
        out.print(f"  {result.error_summary}", markup=False)
    for line in result.error_tail[-10:] if result.outcome.value in ("crashed", "diverged", "hung") else []:
        out.print(f"  {line}", markup=False)
    return 0 if result.outcome.value in ("reached_target", "above_target") else 1
