"""The `speedcopilot` command.

One module per command group lives in this package; each exposes `add_parser(subparsers)` which registers its
sub-command(s) and sets `func` (called with the parsed args, returns an exit code). Modules are discovered, so
adding a command never edits this file. Heavy imports (textual, openai, git) happen inside `func`, not at import.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import signal
import sys
from typing import Sequence

from copilot import __version__
from copilot.cli._common import check_sessions_folder
from copilot.core.errors import SpeedcopilotError


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with `command` (a module's command name) only that command's part: a start
    then imports one command module instead of all of them."""
    parser = argparse.ArgumentParser(
        prog="speedcopilot",
        description="A terminal co-pilot for human-AI ML speedrunning.",
    )
    parser.add_argument("--version", action="version", version=f"speedcopilot {__version__}")
    parser.add_argument("--debug", action="store_true", help="show stack traces on errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = _command_modules()
    names = [modules[command]] if command in modules else sorted(modules.values())
    for name in names:
        module = importlib.import_module(f"{__name__}.{name}")
        add_parser = getattr(module, "add_parser", None)
        if add_parser is not None:
            add_parser(subparsers)
    return parser


def named_command(argv: Sequence[str]) -> str | None:
    """The command `argv` names when only --debug comes before it; None otherwise (help, --version, no command,
    an unknown name: those need the whole parser, whose help and errors list every command)."""
    for arg in argv:
        if arg == "--debug":
            continue
        if arg.startswith("-"):
            return None
        return arg if arg in _command_modules() else None
    return None


def _command_modules() -> dict[str, str]:
    """Command name -> module name: a module is named after its command (`_cmd` where the name is taken)."""
    return {m.name.removesuffix("_cmd"): m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


# The status a shell reports for a command killed by SIGPIPE (`git log | head` exits with it).
CLOSED_PIPE_STATUS = 128 + int(getattr(signal, "SIGPIPE", 13))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(named_command(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        check_sessions_folder(args)
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here rather than at interpreter exit
        return code
    except BrokenPipeError:
        return _closed_pipe()
    except SpeedcopilotError as exc:
        if args.debug:
            raise
        print(f"speedcopilot: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from copilot.core.session.storage import is_storage_fault

        if args.debug or not is_storage_fault(exc):
            raise
        # a write the disk refused somewhere no narrower handler saw it: still one line, never a traceback
        print(f"speedcopilot: error: {_storage_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("speedcopilot: interrupted", file=sys.stderr)
        return 130


def _storage_line(exc: BaseException) -> str:
    from copilot.core.session.storage import storage_error

    return str(storage_error(exc, "a write to the disk failed",
                             "free space or fix the disk (or pass --session-dir on another one), then run the "
                             "command again; `speedcopilot sessions repair ID` records what a session missed"))


def _closed_pipe() -> int:
    """The reader of our stdout went away (`speedcopilot records list | head`): stop quietly, like git does.

    stdout is pointed at /dev/null so that the flush at interpreter exit does not raise a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured in tests)
        pass
    return CLOSED_PIPE_STATUS


if __name__ == "__main__":
    sys.exit(main())
