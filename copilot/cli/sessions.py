"""`speedcopilot sessions list|show|export|repair`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from copilot.cli._common import (
    Column,
    add_fitted_row,
    add_session_dir_flag,
    add_wide_flag,
    console,
    fitted_table,
    print_table,
    fmt_seconds,
    plain,
    settings_from_args,
    short_session_id,
)

LIST_COLUMNS = [
    Column("id", 14, 1), Column("started", 16, 7), Column("mode", 7, 2), Column("track", 5, 9),
    Column("record", 6, 3, "right"), Column("provider", 16, 8), Column("sugg.", 5, 10, "right"),
    Column("commits", 7, 11, "right"), Column("runs", 4, 5, "right"), Column("best to target", 9, 4, "right"),
    Column("baseline", 12, 12), Column("status", 6, 6),
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sessions", help="list, inspect and export recorded sessions")
    sub = parser.add_subparsers(dest="sessions_command", metavar="ACTION", required=True)
    lst = sub.add_parser("list", help="one line per session")
    add_session_dir_flag(lst)
    lst.add_argument("--json", action="store_true", help="print JSON")
    add_wide_flag(lst)
    lst.set_defaults(func=run_list)
    show = sub.add_parser("show", help="details of one session (id, unique prefix, or 'last')")
    show.add_argument("session_id")
    add_session_dir_flag(show)
    show.add_argument("--events", action="store_true", help="also print every event")
    show.set_defaults(func=run_show)
    export = sub.add_parser("export", help="write a shareable archive of sessions (events + git bundles)")
    export.add_argument("out", type=Path, help="archive to write (.tar.gz)")
    export.add_argument("session_ids", nargs="*", help="sessions to export (default: all)")
    export.add_argument("--anonymize", action="store_true",
                        help="hash participant ids, drop host names, paths and anything secret-looking")
    export.add_argument("--salt", default=None, help="salt for hashing participant ids")
    add_session_dir_flag(export)
    export.set_defaults(func=run_export)
    repair = sub.add_parser("repair", help="record what a session missed: the end of runs its driver left open "
                            "(killed, disk full), a torn last line")
    repair.add_argument("session_id", help="session id, unique prefix, or 'last'")
    repair.add_argument("--wait", action="store_true",
                        help="also follow runs still training to their end (default: record the ended ones only)")
    add_session_dir_flag(repair, access="write")
    repair.set_defaults(func=run_repair)


def _when(t: float | None) -> str:
    if t is None:
        return "–"
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def run_list(args: argparse.Namespace) -> int:
    from copilot.core.session import list_session_dirs, load_state

    settings = settings_from_args(args)
    rows = []
    for session_dir in list_session_dirs(settings.session_dir):
        state, problems = load_state(session_dir)
        best = state.best_time_to_target_ms()
        rows.append({
            "id": session_dir.name,
            "started": _when(state.started_t),
            "mode": state.mode,
            "track": state.track,
            "record": state.record,
            "provider": state.provider_label or state.provider,
            "suggestions": len(state.suggestions),
            "commits": max(len(state.commits) - 1, 0),
            "runs": len(state.runs),
            "best_time_to_target_s": best / 1000 if best is not None else None,
            "baseline": "same machine" if state.baseline_times()[2] else "catalogue",
            "status": "ended" if state.ended else "open",
            "problems": len(problems),
            "first_problem": problems[0] if problems else None,
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    out = console()
    if not rows:
        out.print(plain(f"No sessions in {settings.session_dir}. Start one with `speedcopilot start --record 0`."))
        return 0
    table = fitted_table(LIST_COLUMNS, out.width, args.wide, title=plain(f"sessions in {settings.session_dir}"))
    for r in rows:
        status = r["status"] + (f" ({r['problems']} problems)" if r["problems"] else "")
        add_fitted_row(table, {
            "id": r["id"] if args.wide else short_session_id(r["id"]), "started": r["started"], "mode": r["mode"],
            "track": r["track"], "record": str(r["record"]), "provider": r["provider"],
            "sugg.": str(r["suggestions"]), "commits": str(r["commits"]), "runs": str(r["runs"]),
            "best to target": fmt_seconds(r["best_time_to_target_s"]), "baseline": r["baseline"], "status": status})
    print_table(out, table, args.wide)
    _print_problem_lines(out, rows)
    return 0


def _print_problem_lines(out, rows: list[dict]) -> None:
    """A damaged log is a warning line under the table, not only a count in it."""
    for r in rows:
        if r["problems"]:
            out.print(plain("warning:", style="yellow") + plain(
                f" session {r['id']}: {r['problems']} log problem(s), e.g. {r['first_problem']}; "
                f"`speedcopilot sessions show {r['id']}` lists them"))


def run_show(args: argparse.Namespace) -> int:
    from rich.table import Table

    from copilot.core.session.events import EVENTS_FILE, read_events
    from copilot.core.session.projection import SessionState
    from copilot.core.session import resolve_session_dir

    settings = settings_from_args(args)
    session_dir = resolve_session_dir(settings.session_dir, args.session_id)
    result = read_events(session_dir / EVENTS_FILE)
    state = SessionState.from_events(result.events)
    out = console()
    out.print(plain(f"session {session_dir.name}", style="bold") + f"  ({'ended' if state.ended else 'open'})")
    record_s, next_s, same_machine = state.baseline_times()
    source = "same machine" if same_machine else "catalogue time, other machine"
    out.print(plain(f"mode {state.mode} · track {state.track} · record {state.record} · target ≤ {state.target_val_loss}"
                     f" · record time {fmt_seconds(record_s)} · next record {fmt_seconds(next_s)} ({source})"))
    out.print(plain(f"provider {state.provider_label or state.provider} · hints {state.hint_levels or 'none'}"
                     f" · participant {state.participant or '–'}"))
    for problem in result.problems:
        out.print(plain("log problem:", style="yellow") + f" {problem}")

    sugg = Table(title="suggestions")
    for col in ("id", "status", "hunks", "accepted", "edited", "rejected", "tokens", "cost $", "commit"):
        sugg.add_column(col)
    for s in state.suggestions.values():
        decisions = [d.action for d in s.decisions.values()]
        sugg.add_row(plain(s.id), plain(s.status), str(len(s.hunks)), str(decisions.count("accept")),
                     str(decisions.count("edit")), str(decisions.count("reject")),
                     str(s.prompt_tokens + s.completion_tokens),
                     "–" if s.cost_usd is None else f"{s.cost_usd:.4f}", (s.commit or "")[:10])
    out.print(sugg)

    commits = Table(title="commits")
    for col in ("sha", "branch", "provenance", "message"):
        commits.add_column(col)
    for c in state.commits:
        commits.add_row(c.sha[:10], plain(c.branch), plain(c.provenance), plain(c.message))
    out.print(commits)

    runs = Table(title="runs")
    for col in ("run", "commit", "status", "steps", "best val", "time to target", "train time", "wall"):
        runs.add_column(col)
    for r in state.runs.values():
        res = r.result or {}
        last = r.last_point
        ttt = res.get("time_to_target_ms")
        runs.add_row(plain(r.run_id), r.commit[:10], plain(r.status), str(last.step if last else "–"),
                     "–" if r.best_val is None else f"{r.best_val:.4f}",
                     fmt_seconds(ttt / 1000 if ttt is not None else None),
                     fmt_seconds(res["train_time_ms"] / 1000 if res.get("train_time_ms") is not None else None),
                     fmt_seconds(res.get("wall_time_s")))
    out.print(runs)
    if args.events:
        for e in result.events:
            out.print(f"{e.seq:5d} {e.type:22s} {json.dumps(e.data, ensure_ascii=False)[:160]}", markup=False)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from copilot.core.research.export import export_sessions
    from copilot.core.session import list_session_dirs, resolve_session_dir

    settings = settings_from_args(args)
    if args.session_ids:
        dirs = [resolve_session_dir(settings.session_dir, sid) for sid in args.session_ids]
    else:
        dirs = list_session_dirs(settings.session_dir)
    _require_folder_of(args.out)
    try:
        report = export_sessions(dirs, args.out, anonymize=args.anonymize, salt=args.salt)
    except OSError as exc:
        from copilot.core.session.storage import storage_error

        raise storage_error(exc, f"cannot write the archive {args.out}",
                            "free space, or write it to another folder") from None
    scrubbed = ", ".join(f"{k} {v}" for k, v in sorted(report.scrubbed.items())) or "nothing"
    out = console()
    out.print(plain(f"wrote {args.out}: {len(report.sessions)} session(s); scrubbed: {scrubbed}"))
    for problem in report.problems:
        out.print(plain("warning:", style="yellow") + plain(f" {problem}"))
    for exported in report.sessions:
        for problem in exported.problems:
            out.print(plain("warning:", style="yellow") + plain(f" session {exported.source}: {problem}"))
    return 0


def _require_folder_of(archive: Path) -> None:
    """The archive's folder must exist: a typo in a path is refused, not silently created."""
    from copilot.core.errors import ConfigError

    folder = archive.parent
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"cannot write the archive {archive}: {folder} is a file, not a folder")
    if not folder.exists():
        raise ConfigError(f"cannot write the archive {archive}: the folder {folder} does not exist; create it "
                          f"first (mkdir -p {folder}) or pick another path")


def run_repair(args: argparse.Namespace) -> int:
    """Open the session the way every driver does (the same re-attach code), record the end of its runs that
    ended meanwhile (and with --wait of the others too), cut a torn last line, then close it again."""
    import asyncio

    from copilot.cli._common import build_track
    from copilot.cli.start import _recorded_runner
    from copilot.core.llm.providers import OracleProvider
    from copilot.core.session import Session, ensure_not_open, load_state, resolve_session_dir
    from copilot.core.session.events import EVENTS_FILE, read_events
    from copilot.core.session.repair import open_runs

    settings = settings_from_args(args)
    session_dir = resolve_session_dir(settings.session_dir, args.session_id)
    ensure_not_open(session_dir)
    before = read_events(session_dir / EVENTS_FILE)
    state, _ = load_state(session_dir)
    out = console()
    for problem in before.problems:
        out.print(plain("log problem:", style="yellow") + plain(f" {problem}"))
    recorded_runner = _recorded_runner(session_dir)
    if recorded_runner != "local":
        settings = settings_from_args(args, runner=recorded_runner)
    from copilot.cli._common import build_runner

    track = build_track(settings, state.track)
    session = Session.open(settings.session_dir, session_dir.name, track, OracleProvider(track, state.record),
                           runner=build_runner(settings), driver="repair")
    try:
        endings = asyncio.run(_settle(session, open_runs(state), out, wait=args.wait))
    finally:
        session.close_now(reason="repaired")
    if before.torn_tail:
        out.print(plain("cut the torn last line of the log (its bytes are kept in torn-tail-*.bak)"))
    if not open_runs(state):
        out.print(plain(f"session {session_dir.name}: no run was left open"))
    left = [e for e in endings if e.outcome is None]
    return 1 if any(e.problem for e in left) else 0


async def _settle(session, run_ids: list[str], out, wait: bool) -> list:
    from copilot.cli._settle import settle_and_report

    return await settle_and_report(session, run_ids, out, follow=wait)
