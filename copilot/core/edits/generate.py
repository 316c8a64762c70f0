"""From two texts to the edits that turn one into the other: SEARCH/REPLACE text (the offline oracle, the
benchmarks) or hunks (whole-file answers, so the human still reviews hunk by hunk)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from copilot.core.edits.match import _find_whitespace
from copilot.core.edits.model import Hunk
from copilot.core.edits.text import Doc, lines_to_text

_FENCE_LANG = {".py": "python", ".sh": "bash", ".toml": "toml", ".md": "markdown", ".json": "json", ".yaml": "yaml"}


def blocks_from_texts(old: str, new: str, path: str, context_lines: int = 1) -> str:
    """SEARCH/REPLACE text whose application to `old` gives `new` (one block per changed region).

    Each SEARCH is unique in `old` and in the text as it is when the block applies (context grows until it is).
    Limits of the format: a change to line endings only, or to whether the last line ends with a newline, cannot
    be expressed. Returns "" when the texts are equal.
    """
    if old == new:
        return ""
    a = Doc.from_text(old).lines
    b = Doc.from_text(new).lines
    suffix = "." + path.rsplit(".", 1)[-1] if "." in path.rsplit("/", 1)[-1] else ""
    lang = _FENCE_LANG.get(suffix, "")
    if not a:
        return _format_block(path, lang, [], b)
    changes = [
        [i1, i2, j1, j2]
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
        if tag != "equal"
    ]
    regions = [_Region(i1, i2, j1, j2, max(context_lines, 0)) for i1, i2, j1, j2 in changes]
    regions = _settle_regions(regions, a, b)
    return "\n".join(_format_block(path, lang, a[r.lo : r.hi], b[r.jlo : r.jhi]) for r in regions)


@dataclass
class _Region:
    i1: int
    i2: int
    j1: int
    j2: int
    ctx: int
    lo: int = 0
    hi: int = 0
    jlo: int = 0
    jhi: int = 0

    def bound(self, n_old: int) -> None:
        ctx = max(self.ctx, 1) if self.i1 == self.i2 else self.ctx  # a pure insertion needs an anchor line
        self.lo = max(0, self.i1 - ctx)
        self.hi = min(n_old, self.i2 + ctx)
        self.jlo = self.j1 - (self.i1 - self.lo)
        self.jhi = self.j2 + (self.hi - self.i2)


def _settle_regions(regions: list[_Region], a: list[str], b: list[str]) -> list[_Region]:
    while True:
        for region in regions:
            region.bound(len(a))
        merged: list[_Region] = []
        for region in regions:
            if merged and region.lo < merged[-1].hi:
                prev = merged[-1]
                merged[-1] = _Region(prev.i1, region.i2, prev.j1, region.j2, max(prev.ctx, region.ctx))
                merged[-1].bound(len(a))
            else:
                merged.append(region)
        if len(merged) != len(regions):
            regions = merged
            continue
        grown = False
        for n, region in enumerate(regions):
            search = a[region.lo : region.hi]
            evolving = (b[: regions[n - 1].jhi] + a[regions[n - 1].hi :]) if n else a
            whole = region.lo == 0 and region.hi == len(a)
            # Unique even with whitespace ignored, as apply_hunks requires of an exact match.
            unique = (
                any(s.strip() for s in search)
                and len(_find_whitespace(a, search)) == 1
                and len(_find_whitespace(evolving, search)) == 1
            )
            if not unique and not whole:
                region.ctx += 1
                grown = True
        if not grown:
            return regions


def _format_block(path: str, lang: str, search: list[str], replace: list[str]) -> str:
    return (
        f"{path}\n```{lang}\n<<<<<<< SEARCH\n{lines_to_text(search)}=======\n{lines_to_text(replace)}"
        ">>>>>>> REPLACE\n```\n"
    )


def hunks_from_texts(old: str, new: str, path: str, first_index: int = 0, context_lines: int = 1) -> list[Hunk]:
    """Hunks whose application to `old` gives `new`, one per changed region, each SEARCH unique.

    Lines compare exactly: a line that differs only in trailing whitespace is a change, as the new text has it
    (the whole new file is what the model wrote). An empty `old` gives one "create" hunk.
    """
    a = Doc.from_text(old).lines
    b = Doc.from_text(new).lines
    if not a:
        return [Hunk(first_index, path, "", lines_to_text(b), mode="create")] if b else []
    ops = difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    changes = [_Region(i1, i2, j1, j2, max(context_lines, 0)) for tag, i1, i2, j1, j2 in ops if tag != "equal"]
    if not changes:
        return []
    regions = _settle_regions(changes, a, b)
    return [
        Hunk(first_index + n, path, lines_to_text(a[r.lo : r.hi]), lines_to_text(_replacement(a, b, ops, r)))
        for n, r in enumerate(regions)
    ]


def _replacement(a: list[str], b: list[str], ops: list[tuple[str, int, int, int, int]], region: "_Region") -> list[str]:
    """The new lines for the region's old lines: context and unchanged stretches keep the old text, changes take
    the new."""
    middle: list[str] = []
    for tag, i1, i2, j1, j2 in ops:
        inside = region.i1 <= i1 and i2 <= region.i2 and region.j1 <= j1 and j2 <= region.j2
        if inside:
            middle.extend(a[i1:i2] if tag == "equal" else b[j1:j2])
    return a[region.lo : region.i1] + middle + a[region.i2 : region.hi]
