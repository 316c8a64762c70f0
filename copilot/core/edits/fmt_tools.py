"""Edits as OpenAI tool calls, for models that prefer tools (the way Claude Code's Edit and Codex's apply_patch
work): `edit_file(path, old_string, new_string)` replaces one exact occurrence, `apply_patch(patch)` takes a
`*** Begin Patch` envelope, `write_file(path, content)` sends a whole file. Each edit becomes hunks like any
other format, so review, matching and every check are the same.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

from copilot.core.edits.apply import resolve_path
from copilot.core.edits.fmt_blocks import join_rationale
from copilot.core.edits.fmt_patch import parse_patch
from copilot.core.edits.generate import hunks_from_texts
from copilot.core.edits.model import Hunk, ParsedEdits, ToolCall
from copilot.core.edits.paths import check_path
from copilot.core.edits.text import split_plain_lines
from copilot.core.errors import EditParseError

EDIT_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "edit_file",
            "description": (
                "Replace one exact occurrence of old_string in a file with new_string. old_string must be copied "
                "exactly from the current file (same characters and indentation) and occur once: include "
                "neighbouring lines to make it unique. An empty old_string creates a new file."
            ),
            "parameters": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "file path relative to the workspace"},
                    "old_string": {"type": "string", "description": "the exact text to replace"},
                    "new_string": {"type": "string", "description": "the text that replaces it"},
                },
                "required": ["path", "old_string", "new_string"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "apply_patch",
            "description": "Apply a patch in the '*** Begin Patch' … '*** End Patch' format to the files.",
            "parameters": {
                "type": "object",
                "properties": {"patch": {"type": "string", "description": "the whole patch text"}},
                "required": ["patch"],
                "additionalProperties": False,
            },
        },
    },
]

_EDIT_NAMES = {"edit_file", "edit", "str_replace", "replace_in_file", "str_replace_editor"}
_PATCH_NAMES = {"apply_patch", "patch"}
_WRITE_NAMES = {"write_file", "create_file", "write"}


def _arg(args: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in args:
            return args[name]
    return None


def _arguments(call: ToolCall, number: int) -> dict[str, Any]:
    try:
        args = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        raise EditParseError(
            f"Tool call {number} ({call.name}) has arguments that are not valid JSON ({exc.msg} at character "
            f"{exc.pos}): it may have been cut off. Send the call again with complete JSON arguments."
        ) from None
    if not isinstance(args, dict):
        raise EditParseError(f"Tool call {number} ({call.name}) must pass its arguments as a JSON object.")
    return args


def _text(value: Any, what: str, number: int, name: str) -> str:
    if not isinstance(value, str):
        raise EditParseError(f"Tool call {number} ({name}) needs {what} as a string.")
    return value


def parse_tool_calls(calls: Sequence[ToolCall], text: str, default_path: str, files: Mapping[str, str],
                     truncated: bool = False) -> ParsedEdits:
    hunks: list[Hunk] = []
    dropped = 0
    for number, call in enumerate(calls, start=1):
        name = (call.name or "").strip()
        try:
            args = _arguments(call, number)
        except EditParseError:
            if truncated and number == len(calls) and hunks:
                dropped = 1  # the last call was cut by the token limit
                break
            raise
        if name not in _PATCH_NAMES | _EDIT_NAMES | _WRITE_NAMES:
            raise EditParseError(
                f"Tool call {number} asks for an unknown tool {name!r}; the edit tools are edit_file and apply_patch."
            )
        if name in _PATCH_NAMES:
            patch = _text(_arg(args, "patch", "input"), "'patch'", number, name)
            parsed = parse_patch(split_plain_lines(patch), default_path)
            hunks.extend(Hunk(len(hunks) + k, h.path, h.search, h.replace, h.mode, h.anchor)
                         for k, h in enumerate(parsed.hunks))
            continue
        raw_path = _arg(args, "path", "file_path", "file", "filename")
        path = check_path(_text(raw_path, "'path'", number, name), f"Tool call {number} ({name})")
        if name in _EDIT_NAMES:
            old = _text(_arg(args, "old_string", "old_str", "old", "search"), "'old_string'", number, name)
            new = _text(_arg(args, "new_string", "new_str", "new", "replace"), "'new_string'", number, name)
            hunks.append(_edit_hunk(len(hunks), path, old, new, files))
        else:
            content = _text(_arg(args, "content", "text", "file_text"), "'content'", number, name)
            known = resolve_path(path, files)
            hunks.extend(hunks_from_texts(files.get(known, "") if known else "", content, known or path,
                                          first_index=len(hunks)))
    if not hunks:
        raise EditParseError("The model's tool calls change nothing: no edit_file or apply_patch call with a change.")
    return ParsedEdits(rationale=join_rationale(split_plain_lines(text or "")), hunks=tuple(hunks),
                       format="tools", truncated=truncated, dropped=dropped)


def _edit_hunk(index: int, path: str, old: str, new: str, files: Mapping[str, str]) -> Hunk:
    """An edit_file call as a line hunk. Tools replace substrings: when `old` occurs exactly once in the file,
    the hunk covers the whole lines around it; otherwise `old` is matched line-wise like a SEARCH block."""
    if not old.strip():
        return Hunk(index, path, "", new, mode="create")
    known = resolve_path(path, files)
    text = files.get(known) if known else None
    if text is not None and text.count(old) == 1:
        pos = text.index(old)
        start = text.rfind("\n", 0, pos) + 1
        end_of_old = pos + len(old)
        if old.endswith("\n"):
            line_end = end_of_old
        else:
            nl = text.find("\n", end_of_old)
            line_end = len(text) if nl < 0 else nl + 1
        search = text[start:line_end]
        replace = text[start:pos] + new + text[end_of_old:line_end]
        return Hunk(index, known or path, search, replace, exact=True)
    search = old if old.endswith("\n") else old + "\n"
    replace = new if new.endswith("\n") or not new else new + "\n"
    return Hunk(index, path, search, replace)
