"""Edits: a model's answer -> hunks -> checked, all-or-nothing new files."""

from copilot.core.edits.blocks import *  # noqa: F401,F403
from copilot.core.edits.blocks import __all__ as _blocks_all
from copilot.core.errors import EditApplyError, EditParseError

__all__ = [*_blocks_all, "EditApplyError", "EditParseError"]
