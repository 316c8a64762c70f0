"""The command line builds only the named command's parser, and that parser is the whole one's part for it."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.cli import build_parser, named_command


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


WHOLE = _commands(build_parser())
EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")


def test_the_whole_parser_has_every_command() -> None:
    assert {"start", "auto", "run", "records", "data", "sessions", "config", "compare", "replay", "edits",
            "baseline", "doctor"} <= set(WHOLE)


@pytest.mark.parametrize("command", sorted(WHOLE))
def test_a_named_command_gets_the_same_parser_alone(command: str) -> None:
    assert named_command([command, "--help"]) == command
    narrow = _commands(build_parser(command))
    assert list(narrow) == [command]
    assert narrow[command].format_help() == WHOLE[command].format_help()


@pytest.mark.parametrize("argv, expected", [
    (["--debug", "start", "--record", "3"], "start"),
    (["config"], "config"),
    ([], None),
    (["--help"], None),
    (["-h", "start"], None),
    (["--version"], None),
    (["strat"], None),  # a typo: the whole parser's error lists every command
])
def test_named_command(argv: list[str], expected: str | None) -> None:
    assert named_command(argv) == expected


def test_an_unknown_command_still_lists_every_command() -> None:
    result = subprocess.run([EXE, "strat"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "invalid choice: 'strat'" in result.stderr
    for command in ("start", "sessions", "replay", "config"):
        assert command in result.stderr


def test_starting_imports_no_other_command_module() -> None:
    probe = ("import sys; from copilot.cli import build_parser, named_command; build_parser(named_command(['start']));"
             "print(sorted(m for m in sys.modules if m.startswith('copilot.cli.') and not m.startswith('copilot.cli._')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['copilot.cli.start']"
