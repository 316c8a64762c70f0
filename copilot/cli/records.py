"""`speedcopilot records list|show|sync|tasks`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from copilot.cli._common import (
    add_track_flag,
    add_wide_flag,
    build_track,
    console,
    fmt_seconds,
    non_negative_int,
    plain,
    print_table,
    settings_from_args,
)

FULL_LIST_BELOW = 100  # narrower terminals get number, time and description only

FOLD_NOTE = ("task 6 (#6→#7, the PyTorch 2.5 upgrade) is folded out as in the paper; task 7 is #6→#8 and starts "
             "from record 7's code (record 6's on the newer torch) with the record_7 hints")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("records", help="the record ladders (micro, nanogpt)")
    sub = parser.add_subparsers(dest="records_command", metavar="ACTION", required=True)

    lst = sub.add_parser("list", help="every record of a track")
    add_track_flag(lst, default="micro")
    lst.add_argument("--json", action="store_true", help="print JSON (number, time_s, description, date, has_code)")
    add_wide_flag(lst)
    lst.set_defaults(func=run_list)

    show = sub.add_parser("show", help="one record: facts, hints, and its script")
    show.add_argument("number", type=non_negative_int)
    add_track_flag(show, default="micro")
    show.add_argument("--script", action="store_true",
                      help="print only the training script, byte for byte (e.g. `> train_gpt.py`)")
    show.set_defaults(func=run_show)

    sync = sub.add_parser("sync", help="clone or update modded-nanogpt and index its records (needs internet)")
    src = sync.add_mutually_exclusive_group()
    src.add_argument("--url", default=None, help="git URL to clone (default: upstream on GitHub)")
    src.add_argument("--path", type=Path, default=None, help="use an existing local clone instead")
    sync.add_argument("--benchmark", type=Path, default=None,
                      help="a local clone of facebookresearch/llm-speedrunner: its training scripts for records "
                           "without upstream code (1–3) and its hint files for all 19 tasks")
    sync.add_argument("--write-catalogue", type=Path, default=None, metavar="FILE",
                      help="developer option: also write the shipped catalogue (records/nanogpt/catalog.toml) "
                           "from this sync, so a later sync of the same snapshot changes nothing")
    sync.set_defaults(func=run_sync)

    tasks = sub.add_parser("tasks", help="the 19 tasks of the Automated LLM Speedrunning Benchmark")
    tasks.add_argument("--hints-dir", type=Path, default=None,
                       help="hint files laid out like the benchmark repository (record_N/level_{1,2,3}_*.txt)")
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(func=run_tasks)


def distinct_name(name: str | None, description: str) -> str | None:
    """The record's short name when it says something the description does not (else None)."""
    if not name or name == description:
        return None
    if name.endswith("…") and description.startswith(name[:-1]):
        return None
    return name


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

    out = console()
    full = args.wide or out.width >= FULL_LIST_BELOW
    table = Table(title=f"{track.name} track · target val loss ≤ {track.target_val_loss}")
    table.add_column("#", no_wrap=True, justify="right", min_width=3)
    table.add_column("time", no_wrap=True, min_width=9)
    if args.wide:  # everything, wrapped rather than cut
        table.add_column("name / description")
    else:
        others = (3, 9, 10, 4) if full else (3, 9)
        table.add_column("name / description", no_wrap=True, overflow="ellipsis",
                         max_width=_rest_width(out.width, others))
    if full:
        table.add_column("date", no_wrap=True, min_width=10)
        table.add_column("code", no_wrap=True, min_width=4)
    for r in records:
        name = distinct_name(r.name, r.description)
        text = f"{name}: {r.description}" if name else r.description
        cells = [str(r.number), fmt_seconds(r.time_s), plain(text)]
        if full:
            cells += [r.date or "", "yes" if r.has_code else "no"]
        table.add_row(*cells)
    print_table(out, table, args.wide)
    return 0


def _rest_width(total: int, others: tuple[int, ...]) -> int:
    """The width left for one more column of a rich table (borders and one space of padding each side)."""
    columns = len(others) + 1
    return max(12, total - sum(others) - 3 * columns - 1)


def run_show(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    track = build_track(settings, args.track)
    r = track.record(args.number)
    if args.script:
        files = track.record_files(r.number)
        write_exact(files[track.script_name])
        return 0
    out = console()
    name = distinct_name(r.name, r.description)
    out.print(plain(f"{track.name} record {r.number}: {name or r.description}", style="bold"))
    if name:
        out.print(plain(r.description))
    out.print(plain(f"time to target {fmt_seconds(r.time_s)} · steps {r.steps or '–'} · final val "
                    f"{r.val_loss or '–'} · date {r.date or '–'} · machine {r.machine or '–'}"))
    for level, label in ((1, "pseudocode"), (2, "description"), (3, "mini-paper")):
        hint = track.hint(r.number, level)
        if hint:
            out.print(f"hint level {level} ({label}) for {r.number} → {r.number + 1}: {len(hint)} chars")
    return 0


def write_exact(text: str) -> None:
    """Write text to stdout as its UTF-8 bytes: no added newline, no markup, no newline translation."""
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8"))
    sys.stdout.buffer.flush()


def run_sync(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from copilot.core.tracks import nanogpt_sync as ns

    settings = settings_from_args(args)
    only_benchmark = args.benchmark is not None and args.url is None and args.path is None
    existing = ns.load_index(settings.cache_dir) if only_benchmark else None
    with Progress(console=console()) as progress:
        task = progress.add_task("syncing modded-nanogpt", total=1.0)

        def report(message: str, fraction: float) -> None:
            progress.update(task, description=message.replace("[", "\\["), completed=fraction)

        if existing is not None:  # add the benchmark to the records already synced, without the network
            index = ns.apply_benchmark(existing, args.benchmark, settings.cache_dir, progress=report)
        else:
            index = ns.sync_records(url=args.url, path=args.path, cache_dir=settings.cache_dir, progress=report,
                                    benchmark=args.benchmark)
    out = console()
    out.print(plain(f"indexed {index.summary()}"))
    if args.write_catalogue is not None:
        from copilot.core.tracks.nanogpt_catalogue import write_catalogue

        write_catalogue(index, args.write_catalogue)
        out.print(plain(f"wrote the catalogue {args.write_catalogue} from this sync"))
    return 0


def run_tasks(args: argparse.Namespace) -> int:
    from copilot.core.tracks.nanogpt import NanoGPTTrack, benchmark_tasks

    settings = settings_from_args(args)
    track = NanoGPTTrack(cache_dir=settings.cache_dir, hints_dir=args.hints_dir or settings.hints_dir)
    tasks = benchmark_tasks(track)
    if args.json:
        print(json.dumps([t.to_dict() for t in tasks], indent=2))
        return 0
    from rich.table import Table

    table = Table(title="Automated LLM Speedrunning Benchmark tasks (record i → i+1)", caption=FOLD_NOTE,
                  caption_justify="left")
    widths = (("task", 4), ("from", 4), ("to", 3), ("start code", 10), ("t_from", 9), ("t_to", 9))
    for col, width in widths:
        table.add_column(col, no_wrap=True, min_width=width)
    table.add_column("hints", no_wrap=True, overflow="ellipsis",
                     max_width=_rest_width(console().width, tuple(w for _, w in widths)))
    hints_root = track.hints_root()
    for t in tasks:
        hints = "–"
        if hints_root is not None:
            found = sorted(p.name for p in (hints_root / t.hint_folder).glob("level_*_*.txt"))
            hints = f"{t.hint_folder}: {', '.join(found)}" if found else f"{t.hint_folder}: none found"
        table.add_row(str(t.task_id), str(t.from_record), str(t.to_record), f"record {t.start_record}",
                      fmt_seconds(t.from_time_s), fmt_seconds(t.to_time_s), plain(hints))
    console().print(table)
    return 0
