"""Paths a model may name: plain relative paths inside the workspace, nothing else.

Checked where an answer is parsed (`plain_relative_path`) and again where a file is written (`confine`), so a
path that slipped past the parser still cannot leave the workspace.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from copilot.core.edits.text import first_forbidden
from copilot.core.errors import EditParseError, WorkspaceError

MAX_PATH_CHARS = 255
_SAFE_CHARS = re.compile(r"^[A-Za-z0-9._+@/-]+$")
_SHELL_META = set(";|&$`<>(){}[]*?!~'\"\\ #%^=,\t")
_EXTENSION = re.compile(r"\.[A-Za-z0-9_]{1,8}$")
_PATH_PREFIX = re.compile(r"^(?:file(?:name)?|path)\s*:\s*", re.IGNORECASE)


class UnsafePath(ValueError):
    """Internal: why a path is not a plain relative path inside the workspace."""


def plain_relative_path(raw: str) -> str:
    """The normalised form of a path an answer names ('./a//b.py' -> 'a/b.py'); UnsafePath says why not."""
    bad = first_forbidden(raw)
    if bad is not None:
        raise UnsafePath(f"it holds {bad[2]}")
    path = raw.strip().replace("\\", "/")
    if not path:
        raise UnsafePath("it is empty")
    if len(path) > MAX_PATH_CHARS:
        raise UnsafePath(f"it is longer than {MAX_PATH_CHARS} characters")
    if path.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", path):
        raise UnsafePath("it is absolute; name a file inside the workspace, relative to its top")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise UnsafePath("it names no file")
    if ".." in parts:
        raise UnsafePath("it climbs out of the workspace with '..'")
    if any(p.lower() == ".git" for p in parts):
        raise UnsafePath("it points into the workspace's .git folder")
    clean = "/".join(parts)
    if not _SAFE_CHARS.match(clean):
        odd = sorted({ch for ch in clean if not _SAFE_CHARS.match(ch)})
        raise UnsafePath("it holds characters a plain file name does not need: " + " ".join(repr(c) for c in odd))
    return clean


def strip_decoration(line: str) -> str:
    """A line with markdown decoration removed: '### `a.py`:' -> 'a.py'."""
    token = line.strip()
    token = re.sub(r"^#{1,6}\s+", "", token)  # markdown heading
    token = token.strip("*_` ")
    token = _PATH_PREFIX.sub("", token)
    return token.strip("*_`'\" ").rstrip(":").strip("*_`'\" ")


def path_candidate(line: str) -> str | None:
    """The path a line names when it is a path line, i.e. its first token looks like a file name and the line is
    not prose. Returned raw (not yet checked): the caller checks it and reports an unsafe one as an error.

    "train_gpt.py", "**src/model.py**", "File: a.py:" are path lines; "train_gpt.py; rm -rf ~" is a path line
    (an unsafe one); "Here is the change:" and "model.py is where the loss is computed:" are prose.
    """
    token = strip_decoration(line)
    if not token or len(token) > 400:
        return None
    if first_forbidden(token) is not None:
        first = token.split()[0] if token.split() else token
        return token if _looks_like_file(first) or _looks_like_file(token) else None
    first, _, rest = token.partition(" ")
    head = re.split(r"[;|&$`<>]", first, maxsplit=1)[0]
    if not (_looks_like_file(head) or _looks_like_file(first)):
        return None
    if not rest and head == first:
        return token  # a single token: a plain path line
    if first != head or any(ch in _SHELL_META - {" ", "#", "'", '"', ",", "(", ")"} for ch in rest):
        return token  # a file name glued to shell syntax: unsafe, never prose
    return None


def _looks_like_file(token: str) -> bool:
    token = token.strip("`'\"*_")
    return bool(token) and (bool(_EXTENSION.search(token)) or "/" in token) and bool(re.search(r"\w", token))


def check_path(raw: str, where: str) -> str:
    """plain_relative_path as a parse error that says which block and why."""
    try:
        return plain_relative_path(raw)
    except UnsafePath as exc:
        raise EditParseError(
            f"{where} names the path {raw!r}, which is not a plain relative path inside the workspace: {exc}. "
            "Name the file relative to the workspace (for example train_gpt.py), on its own line before the block."
        ) from None


def confine(root: Path, relpath: str) -> Path:
    """The absolute path of `relpath` inside `root`, refusing anything that resolves outside it (through '..',
    an absolute path or a symlink on the way) or into .git. Raises WorkspaceError."""
    try:
        clean = plain_relative_path(relpath)
    except UnsafePath as exc:
        raise WorkspaceError(f"refusing to write {relpath!r}: {exc}") from None
    top = Path(os.path.realpath(root))
    target = top / clean
    resolved = Path(os.path.realpath(target))
    if resolved != top and top not in resolved.parents:
        raise WorkspaceError(
            f"refusing to write {relpath!r}: it resolves to {resolved}, outside the workspace {top} "
            "(a symlink on the way leads out)"
        )
    if ".git" in resolved.relative_to(top).parts:
        raise WorkspaceError(f"refusing to write {relpath!r}: it resolves into the workspace's .git folder")
    return target
