"""`speedcopilot records list|show|sync|tasks`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from copilot.cli._common import add_track_flag, build_track, console, fmt_seconds, settings_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("records", help="the record ladders (micro, nanogpt)")
    sub = parser.add_subparsers(dest="records_command", metavar="ACTION", required=True)

    lst = sub.add_parser("list", help="every record of a track")
    add_track_flag(lst, default="micro")
    lst.add_argument("--json", action="store_true", help="print JSON (number, time_s, description, date, has_code)")
    lst.set_defaults(func=run_list)

    show = sub.add_parser("show", help="one record: facts, hints, and its script")
    show.add_argument("number", type=int)
    add_track_flag(show, default="micro")
    show.add_argument("--script", action="store_true", help="print the whole training script")
    show.set_defaults(func=run_show)

    sync = sub.add_parser("sync", help="clone or update modded-nanogpt and index its records (needs internet)")
    src = sync.add_mutually_exclusive_group()
    src.add_argument("--url", default=None, help="git URL to clone (default: upstream on GitHub)")
    src.add_argument("--path", type=Path, default=None, help="use an existing local clone instead")
    sync.set_defaults(func=run_sync)

    tasks = sub.add_parser("tasks", help="the 19 tasks of the Automated LLM Speedrunning Benchmark")
    tasks.add_argument("--hints-dir", type=Path, default=None,
                       help="hint files laid out like the benchmark repository (record_N/level_{1,2,3}_*.txt)")
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(func=run_tasks)


def run_list(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    track = build_track(settings, args.track)
    records = track.records()
    if args.json:
        print(json.dumps([
            {"number": r.number, "name": r.name, "time_s": r.time_s, "description": r.description,
             "date": r.date, "has_code": r.has_code, "steps": r.steps, "val_loss": r.val_loss}
            for r in records
        ], indent=2))
        return 0
    from rich.table import Table

    table = Table(title=f"{track.name} track · target val loss ≤ {track.target_val_loss}")
    for col in ("#", "time", "name / description", "date", "code"):
        table.add_column(col)
    for r in records:
        text = r.description if r.name == r.description or not r.name else f"{r.name}: {r.description}"
        table.add_row(str(r.number), fmt_seconds(r.time_s), text, r.date or "", "yes" if r.has_code else "no")
    console().print(table)
    return 0


def run_show(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    track = build_track(settings, args.track)
    r = track.record(args.number)
    out = console()
    out.print(f"[bold]{track.name} record {r.number}: {r.name}[/bold]")
    out.print(r.description)
    out.print(f"time to target {fmt_seconds(r.time_s)} · steps {r.steps or '–'} · final val {r.val_loss or '–'}"
              f" · date {r.date or '–'} · machine {r.machine or '–'}")
    for level, label in ((1, "pseudocode"), (2, "description"), (3, "mini-paper")):
        hint = track.hint(r.number, level)
        if hint:
            out.print(f"hint level {level} ({label}) for {r.number} → {r.number + 1}: {len(hint)} chars")
    if args.script:
        files = track.record_files(r.number)
        print(files[track.script_name])
    return 0


def run_sync(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from copilot.core.tracks.nanogpt_sync import sync_records

    settings = settings_from_args(args)
    with Progress(console=console()) as progress:
        task = progress.add_task("syncing modded-nanogpt", total=1.0)

        def report(message: str, fraction: float) -> None:
            progress.update(task, description=message, completed=fraction)

        index = sync_records(url=args.url, path=args.path, cache_dir=settings.cache_dir, progress=report)
    console().print(f"indexed {index.summary()}")
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    from copilot.core.tracks.nanogpt import benchmark_tasks

    tasks = benchmark_tasks()
    if args.json:
        print(json.dumps([t.to_dict() for t in tasks], indent=2))
        return 0
    from rich.table import Table

    table = Table(title="Automated LLM Speedrunning Benchmark tasks (record i → i+1; record 7 folded out)")
    for col in ("task", "from", "to", "t_from", "t_to", "hints"):
        table.add_column(col)
    for t in tasks:
        hints = "–"
        if args.hints_dir:
            found = sorted(p.name for p in (args.hints_dir / f"record_{t.from_record}").glob("level_*_*.txt"))
            hints = ", ".join(found) or "none found"
        table.add_row(str(t.task_id), str(t.from_record), str(t.to_record), fmt_seconds(t.from_time_s),
                      fmt_seconds(t.to_time_s), hints)
    console().print(table)
    return 0
