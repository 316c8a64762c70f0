"""`speedcopilot compare`: one row per session, grouped summaries (mean FSR with bootstrap CI, IQM), exports.

FSR = (t_i − t′)/(t_i − t_{i+1}) (arXiv 2506.22419, Eq. 1) with t_i and t_{i+1} from the session's same-machine
baseline when it recorded one (`speedcopilot baseline`), else from the catalogue, marked `*`. `--explain`
shows the formula and every input; `--repeat` the upstream significance rule on repeated runs of a commit.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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

FALLBACK_MARK = "*"
FALLBACK_NOTE = f"{FALLBACK_MARK} catalogue time, other machine; `speedcopilot baseline --record N` measures it"

SESSION_COLUMNS = [
    Column("session", 14, 1), Column("mode", 7, 2), Column("task", 10, 3), Column("FSR", 6, 4, "right"),
    Column("best", 8, 5, "right"), Column("vs record", 13, 6), Column("noise", 6, 8), Column("baseline", 12, 7),
    Column("provider/model", 18, 9), Column("hints", 5, 12), Column("participant", 11, 13),
    Column("sugg./nodes", 5, 10), Column("hunks a/e/r", 7, 11), Column("median decide", 8, 14),
    Column("tokens", 7, 15, "right"), Column("$", 7, 16, "right"), Column("accel s", 7, 17, "right"),
    Column("wall", 9, 18, "right"), Column("guard", 10, 8),
]
GROUP_COLUMNS = [
    Column("group", 18, 1), Column("n", 3, 2, "right"), Column("reached", 3, 6, "right"),
    Column("mean FSR", 6, 3, "right"), Column("95% CI", 14, 4), Column("IQM", 6, 5, "right"),
    Column("IQM 95% CI", 14, 7), Column("median best time", 9, 8), Column("mean $", 7, 9, "right"),
]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("compare", help="compare sessions: FSR, costs, decisions, grouped statistics")
    parser.add_argument("session_ids", nargs="*", help="sessions to compare (ids or prefixes; default: --all)")
    parser.add_argument("--all", action="store_true", help="every session in the sessions folder")
    parser.add_argument("--where", default=None, help="filter rows, e.g. mode=auto,track=micro")
    parser.add_argument("--by", default="track,task,mode", help="group columns (default track,task,mode)")
    parser.add_argument("--baselines", type=Path, default=None,
                        help="TOML/JSON of record times re-measured on this machine (override the sessions' own)")
    parser.add_argument("--fail-value", type=float, default=0.0,
                        help="FSR counted for a session that never reached the target (default 0)")
    parser.add_argument("--explain", action="store_true",
                        help="show how each FSR is computed: the formula, the baseline and every input")
    parser.add_argument("--repeat", action="store_true",
                        help="the significance of repeated runs per commit (one-sided t-test, p < 0.01, as "
                             "upstream decides records)")
    add_wide_flag(parser)
    parser.add_argument("--csv", metavar="FILE", default=None, help="write rows as CSV ('-' = stdout)")
    parser.add_argument("--json", metavar="FILE", default=None, help="write rows + groups as JSON ('-' = stdout)")
    parser.add_argument("--plot", metavar="PNG", type=Path, default=None,
                        help="FSR by mode per task + best-time curves (prints where it wrote the file)")
    add_session_dir_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from copilot.core.errors import SessionNotFoundError
    from copilot.core.research import compare
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
    if not to_stdout:
        _print_tables(rows, groups, wide=args.wide)
        if args.explain:
            _print_explain(rows, groups, args.fail_value)
        if args.repeat:
            _print_repeat(dirs, rows, wide=args.wide)
    if args.plot:
        written = compare.plot(rows, args.plot, fail_value=args.fail_value)
        out = console(stderr=to_stdout)
        out.print(plain(f"wrote the plot to {written.resolve()}"))
    return 0


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _marked(text: str, row: Any) -> str:
    return text + FALLBACK_MARK if text not in ("–", "—") and row.baseline_source == "catalogue" else text


def _noise(row: Any) -> str:
    if row.within_noise is None:
        return "–"
    return "within" if row.within_noise else "beyond"


def session_cells(r: Any) -> dict[str, str]:
    from copilot.core.research.baselines import LABELS

    return {
        "session": short_session_id(r.folder or r.session_id), "mode": r.mode or "–", "task": r.task or "–",
        "FSR": _marked(_fmt(r.fsr), r), "best": fmt_seconds(r.best_time_to_target_s),
        "vs record": _marked(r.speedup, r), "noise": _noise(r),
        "baseline": LABELS.get(r.baseline_source, r.baseline_source).split(",")[0].replace(" time", ""),
        "provider/model": f"{r.provider or '–'}/{r.model or '–'}", "hints": r.hints,
        "participant": r.participant or "–", "sugg./nodes": f"{r.suggestions}/{r.nodes}",
        "hunks a/e/r": f"{r.hunks_accepted}/{r.hunks_edited}/{r.hunks_rejected}",
        "median decide": fmt_seconds(r.median_decision_time_s), "tokens": str(r.prompt_tokens + r.completion_tokens),
        "$": f"{r.cost_usd:.4f}", "accel s": f"{r.accelerator_seconds:.0f}", "wall": fmt_seconds(r.wall_time_s),
        "guard": guard_cell(r),
    }


def guard_cell(r: Any) -> str:
    """What the integrity guard said about the session's commits, and whether its best time is one of them."""
    if not (r.guard_blocked or r.guard_noted):
        return "clean"
    parts = []
    if r.guard_blocked:
        parts.append(f"{r.guard_blocked} blocked" + (f", {r.guard_overrides} run" if r.guard_overrides else ""))
    if r.guard_noted:
        parts.append(f"{r.guard_noted} noted")
    return ("best overridden! " if r.best_overridden else "") + "; ".join(parts)


def group_cells(g: Any) -> dict[str, str]:
    from copilot.core.research import compare

    return {
        "group": compare.group_label(g.key), "n": str(g.n), "reached": str(g.n_reached),
        "mean FSR": _fmt(g.fsr_mean), "95% CI": f"[{_fmt(g.fsr_ci_low)}, {_fmt(g.fsr_ci_high)}]",
        "IQM": _fmt(g.fsr_iqm), "IQM 95% CI": f"[{_fmt(g.fsr_iqm_ci_low)}, {_fmt(g.fsr_iqm_ci_high)}]",
        "median best time": fmt_seconds(g.best_time_median_s), "mean $": f"{g.cost_usd_mean:.4f}",
    }


def baseline_summary(rows: list[Any]) -> str:
    """One line: which record times the FSR and "vs record" columns use, e.g. "baselines: 2 same machine"."""
    from collections import Counter

    from copilot.core.research.baselines import LABELS

    counts = Counter(r.baseline_source for r in rows)
    parts = [f"{n} {LABELS.get(source, source)}" + (f" ({FALLBACK_MARK})" if source == "catalogue" else "")
             for source, n in counts.items()]
    return "baselines: " + ", ".join(parts)


def _print_tables(rows: list[Any], groups: list[Any], wide: bool = False) -> None:
    out = console()
    table = fitted_table(SESSION_COLUMNS, out.width, wide, title=f"{len(rows)} session(s)")
    for r in rows:
        add_fitted_row(table, session_cells(r))
    print_table(out, table, wide)
    out.print(plain(baseline_summary(rows)))
    if any(r.baseline_source == "catalogue" and r.fsr is not None for r in rows):
        out.print(plain(FALLBACK_NOTE, style="yellow"))
    columns = ", ".join(str(k) for k in (groups[0].key if groups else {}))
    grouped = fitted_table(GROUP_COLUMNS, out.width, wide,
                           title=f"groups ({columns}): mean FSR [95% bootstrap CI], IQM")
    for g in groups:
        add_fitted_row(grouped, group_cells(g))
    print_table(out, grouped, wide)
    for r in rows:
        for problem in r.problems:
            out.print(plain(f"{short_session_id(r.folder or r.session_id)}:", style="yellow") + f" {problem}")


def _print_explain(rows: list[Any], groups: list[Any], fail_value: float | None) -> None:
    from copilot.core.research.compare import explain_group, explain_session

    out = console()
    out.print(plain("How FSR is computed", style="bold"))
    for r in rows:
        out.print(plain(""))
        for line in explain_session(r):
            out.print(plain(line))
    out.print(plain(""))
    for line in explain_group(groups, fail_value):
        out.print(plain(line))


def _print_repeat(dirs: list[Path], rows: list[Any], wide: bool = False) -> None:
    from copilot.core.research.compare import SIGNIFICANCE_ALPHA, runs_by_commit
    from copilot.core.session.events import EVENTS_FILE, read_events

    out = console()
    columns = [Column("session", 14, 1), Column("commit", 7, 2), Column("runs", 4, 3, "right"),
               Column("mean val", 7, 4, "right"), Column("std", 7, 7, "right"), Column("t", 7, 6, "right"),
               Column("p", 9, 5, "right"), Column("record?", 8, 3), Column("mean to target", 9, 8, "right")]
    table = fitted_table(columns, out.width, wide,
                         title=f"repeated runs: one-sided t-test of the final val losses, H1 mean < target, "
                               f"passes at p < {SIGNIFICANCE_ALPHA:g}")
    by_folder = {r.folder: r for r in rows}
    for folder in dirs:
        row = by_folder.get(folder.name)
        if row is None:
            continue
        for group in runs_by_commit(read_events(folder / EVENTS_FILE).events, target=row.target_val_loss):
            sig = group.significance
            verdict = "yes" if group.is_record else ("needs ≥2" if sig.n < 2 else "no")
            add_fitted_row(table, {
                "session": short_session_id(row.folder), "commit": (group.commit or "?")[:7], "runs": str(sig.n),
                "mean val": _fmt(sig.mean, 4), "std": _fmt(sig.std, 4), "t": _fmt(sig.t),
                "p": "–" if sig.p_one_sided is None else f"{sig.p_one_sided:.3g}", "record?": verdict,
                "mean to target": fmt_seconds(group.mean_time_to_target_s)})
    print_table(out, table, wide)
