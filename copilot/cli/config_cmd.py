"""`speedcopilot config show`: the effective configuration, secrets masked."""

from __future__ import annotations

import argparse
import json

from copilot.cli._common import console, settings_from_args
from copilot.config import user_config_path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("config", help="show the effective configuration")
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the effective config (defaults < user file < ./speedcopilot.toml "
                                       "< environment < flags), secrets masked")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    values = settings.masked()
    if args.json:
        print(json.dumps(values, indent=2))
        return 0
    from rich.table import Table

    table = Table(title="speedcopilot configuration", show_header=True)
    table.add_column("setting")
    table.add_column("value")
    for key, value in values.items():
        if key == "prices":
            value = ", ".join(f"{m}={p[0]}/{p[1]}" for m, p in value.items())
        table.add_row(key, "" if value is None else str(value))
    out = console()
    out.print(table)
    out.print(f"user config file: {user_config_path()}")
    return 0
