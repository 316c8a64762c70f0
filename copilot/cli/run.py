"""`speedcopilot run --session ID`: train the session's current commit headless, with a live display."""

from __future__ import annotations

import argparse
import asyncio

from copilot.cli._common import (
    add_session_dir_flag,
    build_runner,
    build_track,
    console,
    fmt_seconds,
    positive_float,
    positive_int,
    settings_from_args,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="train a session's current commit (headless)")
    parser.add_argument("--session", required=True, metavar="ID", help="session id, unique prefix, or 'last'")
    parser.add_argument("--runner", default=None, help="local (default), ssh://[user@]host[:port]/path, or "
                        "slurm://[partition][?gpus=8&time=00:30:00&account=…&cpus=…&mem=…&qos=…]")
    parser.add_argument("--gpus", type=positive_int, default=None, help="GPUs for the run (nanogpt track)")
    parser.add_argument("--timeout", type=positive_float, default=None, help="stop the run after this many seconds")
    parser.add_argument("--quiet", action="store_true", help="no live display, only the result")
    parser.add_argument("--run-anyway", action="store_true",
                        help="train even if the integrity guard blocks the commit (your override is logged)")
    add_session_dir_flag(parser, access="write")
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
                           runner=build_runner(settings), options=options, driver="run")
    try:
        return asyncio.run(_train(session, quiet=args.quiet, override_guard=args.run_anyway))
    finally:
        session.close_now(reason="headless run finished")


async def _train(session, quiet: bool, override_guard: bool = False) -> int:
    from copilot.cli._settle import settle_and_report
    from copilot.core.errors import RunError
    from copilot.core.session.engine import GuardBlocked
    from copilot.core.session.repair import open_runs

    out = console()
    # runs this session left open are settled first: their end recorded, a live one followed (two trainings at
    # once would make both times unfair); one on the commit we would train is this run, re-attached
    head = session.state.head
    endings = await settle_and_report(session, open_runs(session.state), out, follow=True,
                                      following_why=" before anything else trains")
    same = [e for e in endings if e.commit == head and e.recorded_by == "resume by run" and e.outcome]
    if same:
        return _report(out, session.state.runs[same[-1].run_id].result or {})
    try:
        view = await session.start_run(started_by="run", override_guard=override_guard)
    except GuardBlocked as exc:
        raise RunError(f"{exc}. Pass --run-anyway to train it regardless (logged as your override).") from None
    out.print(f"run {view.run_id} on commit {view.commit[:10]}: {' '.join(view.command)}")
    result = await _follow(session, view.run_id, quiet, out)
    return _report(out, result.to_event_fields())


async def _follow(session, run_id: str, quiet: bool, out) -> object:
    from rich.live import Live
    from rich.text import Text

    target = session.state.target_val_loss

    def status_line() -> Text:
        run = session.state.runs[run_id]
        last = run.last_point
        best = run.best_val
        text = f"step {last.step if last else 0}/{(last.total_steps if last else None) or '?'}"
        if last and last.train_time_ms is not None:
            text += f" · train time {last.train_time_ms / 1000:.1f}s"
        if best is not None:
            text += f" · best val {best:.4f} (target ≤ {target})"
        return Text(text)

    if quiet:
        return await session.wait_run(run_id)
    if out.is_terminal:
        with Live(status_line(), console=out, refresh_per_second=4) as live:
            session.subscribe_lines(lambda _run, _line: live.update(status_line()))
            return await session.wait_run(run_id)

    def on_event(event) -> None:  # piped or logged: one plain line per validation, nothing redrawn in place
        if event.type == "metric" and event.get("run_id") == run_id and event.get("val_loss") is not None:
            out.print(status_line(), markup=False, highlight=False)

    session.subscribe(on_event)
    try:
        return await session.wait_run(run_id)
    finally:
        session.unsubscribe(on_event)


def _report(out, result: dict) -> int:
    """The outcome line (and what went wrong); exit 0 only for a run that trained and printed its metrics."""
    from rich.text import Text

    ttt = result.get("time_to_target_ms")
    final = result.get("final_val_loss")
    outcome = str(result.get("outcome"))
    line = Text(outcome, style="bold")
    line.append(f" · time to target {fmt_seconds(ttt / 1000 if ttt is not None else None)}"
                f" · final val {final if final is not None else '–'}"
                f" · wall {fmt_seconds(result.get('wall_time_s'))} · exit {result.get('exit_code')}")
    out.print(line)
    if outcome == "no_metric":
        out.print("  the script exited without printing a single metric line: check that it prints the "
                  "`step:N/T val_loss:…` lines", markup=False)
    if result.get("error_summary"):
        out.print(f"  {result['error_summary']}", markup=False)
    if outcome in ("crashed", "diverged", "hung", "timed_out", "no_metric"):
        for line_text in (result.get("error_tail") or [])[-10:]:
            out.print(f"  {line_text}", markup=False)
    return 0 if outcome in ("reached_target", "above_target") else 1
