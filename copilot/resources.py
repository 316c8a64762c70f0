"""Where the shipped records/ and themes/ folders are, in a checkout and in an installed wheel."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def records_dir() -> Path:
    """The folder of shipped record catalogues and micro-track scripts (repo's records/)."""
    return Path(str(files("copilot.records")))


def themes_dir() -> Path:
    """The folder of shipped colour themes (repo's themes/)."""
    return Path(str(files("copilot.themes")))
