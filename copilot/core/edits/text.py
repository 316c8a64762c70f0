"""Text helpers shared by the parsers and the matcher: lines with their own endings, and characters that must
never be written into a training script."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Sequence


def split_plain_lines(text: str) -> list[str]:
    """Lines of a model answer: any line ending (CRLF, LF, lone CR) ends a line; a final newline adds no line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if text.endswith("\n"):
        text = text[:-1]
    return text.split("\n")


def lines_to_text(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


def hunk_lines(text: str) -> list[str]:
    return split_plain_lines(text.replace("\r\n", "\n")) if text else []


@dataclass
class Doc:
    """A file as lines plus each line's own ending, so CRLF files and a missing final newline survive edits."""

    lines: list[str]  # content without the line ending
    eols: list[str]  # "\n", "\r\n" or "" (last line without a newline)

    @classmethod
    def from_text(cls, text: str) -> "Doc":
        # Only \n ends a line (str.splitlines would also split at form feeds and lone \r).
        pieces = text.split("\n")
        lines: list[str] = []
        eols: list[str] = []
        for piece in pieces[:-1]:
            if piece.endswith("\r"):
                lines.append(piece[:-1])
                eols.append("\r\n")
            else:
                lines.append(piece)
                eols.append("\n")
        if pieces[-1]:
            lines.append(pieces[-1])
            eols.append("")
        return cls(lines, eols)

    def text(self) -> str:
        return "".join(line + eol for line, eol in zip(self.lines, self.eols))

    def dominant_eol(self) -> str:
        counts = Counter(e for e in self.eols if e)
        return "\r\n" if counts["\r\n"] > counts["\n"] else "\n"


# ---------------------------------------------------------------------------------------------------------
# Characters that hide what code does (Trojan Source, ANSI tricks) or break tools reading it.

_ALLOWED_CONTROLS = frozenset("\t\n\r")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_INVISIBLE = frozenset("\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u2060\u2061\u2062\u2063"
                       "\u2064\u3164\ufeff\uffa0")


def forbidden_char(ch: str) -> str | None:
    """Why `ch` must not be written into a script, or None when it is fine."""
    if ch in _ALLOWED_CONTROLS:
        return None
    code = ord(ch)
    if ch == "\x00":
        return "a NUL byte"
    if ch == "\x1b":
        return "an ANSI escape (ESC)"
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"a control character (U+{code:04X})"
    if ch in _BIDI:
        return f"a bidirectional-text override (U+{code:04X}) that makes code read differently than it runs"
    if ch in _INVISIBLE:
        return f"an invisible character (U+{code:04X} {unicodedata.name(ch, 'unnamed')})"
    category = unicodedata.category(ch)
    if category == "Cs":
        return f"an unpaired surrogate (U+{code:04X}): the text was not valid UTF-8"
    if category == "Cf" or 0xE0000 <= code <= 0xE007F:
        return f"an invisible format character (U+{code:04X} {unicodedata.name(ch, 'unnamed')})"
    if category in ("Zl", "Zp"):
        return f"a Unicode line separator (U+{code:04X}) that editors and Python read differently"
    return None


def first_forbidden(text: str, allowed: str = "") -> tuple[int, str, str] | None:
    """(offset, char, reason) of the first forbidden character of `text` not in `allowed`, or None."""
    for offset, ch in enumerate(text):
        if ch in allowed:
            continue
        reason = forbidden_char(ch)
        if reason is not None:
            return offset, ch, reason
    return None
