"""`speedcopilot baseline --record N`: time record N and the next record on this machine, for fair numbers.

Runs record N and N+1 interleaved for K seeds on the runner sessions use (every run stops at the target), and
stores the times per machine fingerprint in the user's data folder. Sessions started afterwards on the same
machine, with the same settings, record this baseline and compute "vs record", FSR and the projected time to
target from it (see docs/fair-numbers.md). `--list` shows what is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from copilot.cli._common import (
    RUNNER_HELP,
    Column,
    add_fitted_row,
    add_track_flag,
    add_wide_flag,
    build_runner,
    build_track,
    console,
    fitted_table,
    non_negative_int,
    positive_int,
    print_table,
    fmt_seconds,
    plain,
    settings_from_args,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from copilot.core.research.baselines import DEFAULT_SEEDS

    parser = subparsers.add_parser("baseline", help="time record N and N+1 on this machine (fair FSR)")
    parser.add_argument("--record", type=non_negative_int, default=None, help="the task's starting record (measures N and N+1)")
    add_track_flag(parser)
    parser.add_argument("--seeds", type=positive_int, default=DEFAULT_SEEDS,
                        help=f"runs per record, interleaved (default {DEFAULT_SEEDS}; 2+ gives a noise estimate)")
    parser.add_argument("--runner", default=None, help=RUNNER_HELP)
    parser.add_argument("--gpus", type=positive_int, default=None, help="GPUs per run (nanogpt track)")
    parser.add_argument("--list", action="store_true", help="show the stored baselines instead of measuring")
    parser.add_argument("--json", action="store_true", help="print JSON (progress goes to stderr)")
    add_wide_flag(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from copilot.core.errors import ConfigError

    if args.list:
        return _list(args)
    if args.record is None:
        raise ConfigError("say which task to time: `speedcopilot baseline --record N` (or --list to see them)")
    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}")
    return _measure(args)


def _measure(args: argparse.Namespace) -> int:
    from copilot import __version__
    from copilot.cli.start import _ensure_data
    from copilot.core.research import baselines as b

    settings = settings_from_args(args)
    track = build_track(settings)
    track.record(args.record)
    _ensure_data(track)
    store = b.BaselineStore()
    store.load()  # a damaged store fails now, not after minutes of runs
    gpus = settings.gpus or 1
    work_dir = store.path.parent / "baseline-runs" / b.new_measurement_id()
    out = console(stderr=args.json)
    next_record = b.next_record_of(track, args.record)
    if next_record is None:
        from copilot.core.errors import ConfigError

        raise ConfigError(f"record {args.record} is the last of the {track.name} track: a baseline times a task's "
                          f"two records, N and N+1; pick an earlier record")
    fp = b.fingerprint(track, settings.runner, gpus)
    out.print(plain(f"timing {track.name} record {args.record}" + (f" and {next_record}" if next_record is not None
                                                                     else "") +
                    f", {args.seeds} seed(s) each, interleaved, stop at target ≤ {track.target_val_loss:g}"))
    out.print(plain(f"machine: {fp.describe()} (fingerprint {fp.key()})"))

    def progress(record: int, seed: int, result: b.BaselineRun) -> None:
        time_text = f"{result.time_s:.2f} s to target" if result.time_s is not None else "did not reach the target"
        out.print(plain(f"  record {record} · seed {seed}: {time_text} ({result.outcome}, wall "
                        f"{fmt_seconds(result.wall_time_s)})"))

    measurements = asyncio.run(b.measure(
        track, args.record, seeds=args.seeds, runner=build_runner(settings), runner_url=settings.runner,
        work_dir=work_dir, gpus=gpus, hang_timeout_s=settings.hang_timeout_s, run_timeout_s=settings.run_timeout_s,
        progress=progress, tool_version=__version__))
    store.add(measurements)
    choice = _choice(measurements, next_record)
    if args.json:
        print(json.dumps({"store": str(store.path), "runs_dir": str(work_dir), "fingerprint": fp.to_dict(),
                          "fingerprint_key": fp.key(), "measurements": [m.to_dict() for m in measurements],
                          "baseline": choice.to_fields() if choice is not None else None}, indent=2))
    else:
        _print_result(out, track, measurements, choice)
        out.print(plain(f"stored in {store.path} (run logs in {work_dir})"))
    unusable = [m for m in measurements if not m.times]
    for m in unusable:
        console(stderr=True).print(plain(
            f"speedcopilot: error: record {m.record} reached the target in 0 of {len(m.runs)} run(s), so this "
            f"baseline cannot be used; the run logs are in {work_dir / 'runs'}", style="red"))
    return 1 if unusable or choice is None else 0


def _choice(measurements: list[Any], next_record: int | None) -> Any:
    from copilot.core.research import baselines as b

    if next_record is None or len(measurements) < 2 or not all(m.times for m in measurements):
        return None
    return b.from_measurements(measurements[0], measurements[1], next_record)


def _print_result(out: Any, track: Any, measurements: list[Any], choice: Any) -> None:
    from copilot.core.research.baselines import speedup_text

    columns = [Column("record", 6, 1, "right"), Column("reached", 7, 2), Column("mean", 8, 3, "right"),
               Column("std", 7, 4, "right"), Column("catalogue", 9, 5, "right"), Column("times", 30, 6)]
    table = fitted_table(columns, out.width, title="time to target on this machine")
    for m in measurements:
        add_fitted_row(table, {
            "record": str(m.record), "reached": f"{len(m.times)}/{len(m.runs)}", "mean": fmt_seconds(m.mean_s),
            "std": "–" if m.std_s is None else f"{m.std_s:.2f} s",
            "catalogue": fmt_seconds(track.record(m.record).time_s),
            "times": ", ".join("–" if r.time_s is None else f"{r.time_s:.2f}" for r in m.runs)})
    out.print(table)
    if choice is None:
        return
    gain = speedup_text(choice.record_time_s, choice.next_record_time_s)
    noise = "unknown (needs 2+ seeds)" if choice.noise_s is None else f"σ = {choice.noise_s:.2f} s (pooled)"
    out.print(plain(f"record {choice.next_record} is {gain} than record {choice.record} here; seed-to-seed noise "
                    f"{noise}"))
    if choice.record_time_s is not None and choice.next_record_time_s is not None \
            and choice.record_time_s <= choice.next_record_time_s:
        out.print(plain(f"warning: record {choice.next_record} is not faster here, so FSR is undefined for this "
                        "task on this machine", style="yellow"))


def _list(args: argparse.Namespace) -> int:
    from copilot.core.research import baselines as b

    settings = settings_from_args(args)
    store = b.BaselineStore()
    measurements = store.load()
    here: str | None = None
    if args.track not in (None, "auto"):
        measurements = [m for m in measurements if m.conditions.track == args.track]
        here = b.fingerprint(build_track(settings, args.track), settings.runner, settings.gpus or 1).key()
    if args.json:
        print(json.dumps({"store": str(store.path), "measurements": [m.to_dict() for m in measurements]}, indent=2))
        return 0
    out = console()
    if not measurements:
        out.print(plain(f"no baselines in {store.path}; measure one with `speedcopilot baseline --record N`"))
        return 0
    columns = [Column("track", 6, 2), Column("record", 6, 1, "right"), Column("reached", 7, 4),
               Column("mean", 8, 3, "right"), Column("std", 7, 5, "right"), Column("target", 6, 6, "right"),
               Column("machine", 22, 7), Column("here", 4, 8), Column("settings", 24, 9),
               Column("measured", 16, 10), Column("id", 22, 11)]
    table = fitted_table(columns, out.width, args.wide, title=plain(f"baselines in {store.path}"))
    import datetime as dt

    for m in measurements:
        add_fitted_row(table, {
            "track": m.conditions.track, "record": str(m.record), "reached": f"{len(m.times)}/{len(m.runs)}",
            "mean": fmt_seconds(m.mean_s), "std": "–" if m.std_s is None else f"{m.std_s:.2f} s",
            "target": f"{m.conditions.target_val_loss:g}", "machine": m.fingerprint.describe(),
            "here": "–" if here is None else ("yes" if m.fingerprint_key == here else "no"),
            "settings": ", ".join(f"{k}={v}" for k, v in sorted(m.conditions.knobs.items())) or "defaults",
            "measured": dt.datetime.fromtimestamp(m.measured_at).strftime("%Y-%m-%d %H:%M"), "id": m.id})
    print_table(out, table, args.wide)
    return 0


