"""`speedcopilot doctor`: will a run work on this machine (or the ssh runner's)? One line per check, with its fix."""

from __future__ import annotations

import argparse
import json

from copilot.cli._common import (
    add_track_flag,
    build_track,
    console,
    non_negative_int,
    plain,
    positive_int,
    settings_from_args,
)

STYLES = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="check GPUs, torch, torchrun, data and the runner before a run")
    add_track_flag(parser, default="nanogpt")
    parser.add_argument("--record", type=non_negative_int, default=None, help="also check this record's code, data and versions")
    parser.add_argument("--gpus", type=positive_int, default=None, help="GPUs the run will use (default: the setting, 1)")
    parser.add_argument("--runner", default=None, help="local or ssh://[user@]host[:port]/path")
    parser.add_argument("--python", default=None, help="the python whose torch runs use (default: this one)")
    parser.add_argument("--all-records", action="store_true",
                        help="nanogpt: per synced record, whether its data resolves and what else it needs")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run_doctor_cmd)


def run_doctor_cmd(args: argparse.Namespace) -> int:
    from copilot.core.tracks.doctor import run_doctor

    settings = settings_from_args(args)
    track = build_track(settings, "nanogpt" if args.track in (None, "auto") else args.track)
    report = run_doctor(track, record=args.record, gpus=args.gpus or settings.gpus or 1,
                        runner_url=args.runner or settings.runner, python=args.python,
                        all_records=args.all_records)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return 0 if report.ok else 1
    out = console()
    for check in report.checks:
        status, _, rest = check.line().partition(" ")
        out.print(plain(f"{status:4s}", style=STYLES.get(check.status, "")) + plain(f" {rest.lstrip()}"),
                  soft_wrap=True)
    if report.records is not None:
        resolved = sum(1 for r in report.records if r.get("data") == "ok")
        with_code = sum(1 for r in report.records if r.get("has_code"))
        out.print(plain(f"records: {resolved} of {with_code} with code resolve their data"))
        for entry in report.records:
            if entry.get("has_code") and entry.get("data") != "ok":
                out.print(plain(f"  record {entry['number']}: {entry['data']}"), soft_wrap=True)
    verdict = "a run would work" if report.ok else f"a run would fail: {len(report.failures())} check(s) failed"
    out.print(plain(verdict, style="bold"))
    return 0 if report.ok else 1
