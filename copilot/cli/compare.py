"""`speedcopilot compare`: one row per session, grouped summaries (mean FSR with bootstrap CI, IQM), exports."""

from __future__ import annotations

import argparse
from pathlib import Path

from copilot.cli._common import add_session_dir_flag, console, fmt_seconds, plain, settings_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="compare sessions: FSR, costs, decisions, grouped statistics")
    parser.add_argument("session_ids", nargs="*", help="sessions to compare (ids or prefixes; default: --all)")
    parser.add_argument("--all", action="store_true", help="every session in the sessions folder")
    parser.add_argument("--where", default=None, help="filter rows, e.g. mode=auto,track=micro")
    parser.add_argument("--by", default="track,task,mode", help="group columns (default track,task,mode)")
    parser.add_argument("--baselines", type=Path, default=None,
                        help="TOML/JSON of record times re-measured on this machine (override the catalogue)")
    parser.add_argument("--fail-value", type=float, default=0.0,
                        help="FSR counted for a session that never reached the target (default 0)")
    parser.add_argument("--csv", metavar="FILE", default=None, help="write rows as CSV ('-' = stdout)")
    parser.add_argument("--json", metavar="FILE", default=None, help="write rows + groups as JSON ('-' = stdout)")
    parser.add_argument("--plot", metavar="PNG", type=Path, default=None, help="FSR by mode per task + best-time curves")
    add_session_dir_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from copilot.core.research import compare
    from copilot.core.errors import SessionNotFoundError
    from copilot.core.session import resolve_session_dir

    settings = settings_from_args(args)
    if args.session_ids:
        dirs = [resolve_session_dir(settings.session_dir, sid) for sid in args.session_ids]
    else:
        dirs = compare.find_session_dirs(settings.session_dir)
    if not dirs:
        raise SessionNotFoundError(f"no sessions in {settings.session_dir}")
    baselines = compare.load_baselines(args.baselines) if args.baselines else None
    rows = compare.summarize_sessions(dirs, baselines=baselines)
    rows = compare.filter_rows(rows, args.where)
    groups = compare.group_summaries(rows, by=[c.strip() for c in args.by.split(",") if c.strip()],
                                     fail_value=args.fail_value)
    to_stdout = "-" in (args.csv, args.json)
    if args.csv:
        compare.write_csv(rows, args.csv)
    if args.json:
        compare.write_json(rows, groups, args.json)
    if args.plot:
        compare.plot(rows, args.plot, fail_value=args.fail_value)
    if not to_stdout:
        _print_tables(rows, groups)
    return 0


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _print_tables(rows, groups) -> None:
    from rich.table import Table

    out = console()
    table = Table(title=f"{len(rows)} session(s)")
    for col in ("session", "mode", "task", "provider/model", "hints", "participant", "best to target", "FSR",
                "sugg./nodes", "hunks a/e/r", "median decide", "tokens", "$", "accel s", "wall"):
        table.add_column(col)
    for r in rows:
        table.add_row(*(plain(cell) for cell in (
            r.session_id, r.mode or "–", r.task or "–", f"{r.provider or '–'}/{r.model or '–'}", r.hints,
            r.participant or "–", fmt_seconds(r.best_time_to_target_s), _fmt(r.fsr),
            f"{r.suggestions}/{r.nodes}", f"{r.hunks_accepted}/{r.hunks_edited}/{r.hunks_rejected}",
            fmt_seconds(r.median_decision_time_s), str(r.prompt_tokens + r.completion_tokens),
            f"{r.cost_usd:.4f}", f"{r.accelerator_seconds:.0f}", fmt_seconds(r.wall_time_s),
        )))
    out.print(table)
    grouped = Table(title="groups: mean FSR [95% bootstrap CI], IQM")
    for col in ("group", "n", "reached", "mean FSR", "95% CI", "IQM", "median best time", "mean $"):
        grouped.add_column(col)
    for g in groups:
        key = " ".join(f"{k}={v}" for k, v in g.key.items())
        grouped.add_row(*(plain(cell) for cell in (
            key, str(g.n), str(g.n_reached), _fmt(g.fsr_mean), f"[{_fmt(g.fsr_ci_low)}, {_fmt(g.fsr_ci_high)}]",
            _fmt(g.fsr_iqm), fmt_seconds(g.best_time_median_s), f"{g.cost_usd_mean:.4f}")))
    out.print(grouped)
    for r in rows:
        for problem in r.problems:
            out.print(plain(f"{r.session_id}:", style="yellow") + f" {problem}")
