"""Where a hunk goes in a file, and what the window becomes.

Tried in order: an exact match; a whitespace-tolerant match (trailing whitespace, CRLF vs LF, a uniform
indentation shift — the replacement is re-indented by the same shift, blank lines at the edges of SEARCH);
SEARCH with explicit elision lines (`...`, `# ... existing code ...`), where every part must still match
unambiguously; and a bounded fuzzy match. Non-exact matches are merged three-way (SEARCH is the base, the file's
window is "theirs", REPLACE is "ours"): lines REPLACE leaves exactly as SEARCH had them keep the file's actual
text, lines REPLACE changes are written exactly as REPLACE has them (re-indented by the matched shift, nothing
else), and if the file differs from SEARCH on a line the model changes, the hunk is refused. A tolerance only
widens *where* a block matches, never *what* it writes. A missing or ambiguous match is a `HunkApplyError` naming
the nearest lines, so the model can be told how to fix it. When unsure, fail: never apply in the wrong place.

Line numbers in errors are 1-based; block numbers too (block 1 is the hunk with index 0).
"""

from __future__ import annotations

import difflib
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from copilot.core.edits.model import Hunk, HunkApplyError
from copilot.core.edits.text import Doc, hunk_lines

FUZZY_THRESHOLD = 0.9
# Fuzzy matching evaluates at most this many candidate windows; more candidates than that means the SEARCH
# text is too generic to place with confidence.
FUZZY_MAX_WINDOWS = 400
ELISION_MAX_CHAINS = 32  # ways to place the parts of a SEARCH with '...' lines that are compared at most
FUZZY_MIN_LINES = 2  # non-blank SEARCH lines needed before a fuzzy match is tried

# An output line: its text and its line ending (None = the file's dominant ending).
_OutLine = tuple[str, "str | None"]


@dataclass
class _Plan:
    start: int  # 0-based window [start, end) in the lines the hunk applies to
    end: int
    out: list[_OutLine]
    kind: str
    similarity: float


class _Refusal(Exception):
    """Internal: a tier found the place but refuses to apply there (conflict, bad re-indent)."""

    def __init__(self, reason: str, message: str, nearest: tuple[tuple[int, str], ...] = ()) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.nearest = nearest


# ---------------------------------------------------------------------------------------------------------
# Indentation shifts and the three-way merge

# (sign, prefix): sign 0 = no shift, +1 = the file has `prefix` more indentation than SEARCH, -1 = less.
_Shift = tuple[int, str]
_NO_SHIFT: _Shift = (0, "")


def _lead(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _shift_between(model_line: str, file_line: str) -> _Shift | None:
    ml, fl = _lead(model_line), _lead(file_line)
    if ml == fl:
        return _NO_SHIFT
    if fl.endswith(ml):
        return (1, fl[: len(fl) - len(ml)])
    if ml.endswith(fl):
        return (-1, ml[: len(ml) - len(fl)])
    return None


def _apply_shift(line: str, shift: _Shift) -> str | None:
    """The model's line in the file's indentation; None when it cannot be (less indented than the shift)."""
    sign, prefix = shift
    if sign == 0 or not line.strip():
        return line
    if sign > 0:
        return prefix + line
    if line.startswith(prefix):
        return line[len(prefix) :]
    return None


def _mode_shift(pairs: Sequence[tuple[str, str]]) -> _Shift:
    shifts = Counter(
        s for s in (_shift_between(m, f) for m, f in pairs if m.strip() and f.strip()) if s is not None
    )
    return shifts.most_common(1)[0][0] if shifts else _NO_SHIFT


@dataclass
class _MergeInput:
    search: list[str]
    window: list[str]
    window_eols: list[str]
    replace: list[str]
    shift: _Shift
    window_start: int  # 0-based line number of window[0], for messages


def _merge(m: _MergeInput) -> list[_OutLine]:
    """Three-way merge: base SEARCH, the file's window, the model's REPLACE. Raises _Refusal on a conflict."""
    S, W, R, shift = m.search, m.window, m.replace, m.shift
    s_as_file = [_as_file_key(s, shift) for s in S]
    w_keys = [w.rstrip() for w in W]
    # Which lines the model changed is decided exactly: a REPLACE line that differs from its SEARCH line only in
    # trailing whitespace is a change, and is written as REPLACE has it.
    map_w = _line_map(s_as_file, w_keys, pair_replacements=True)
    map_r = _line_map(S, R)

    def transform(r: str) -> str:
        shifted = _apply_shift(r, shift)
        if shifted is None:
            raise _Refusal(
                "reindent",
                f"the REPLACE line {r!r} is less indented than the indentation shift between the SEARCH text and "
                "the file, so it cannot be re-indented safely",
            )
        return shifted

    out: list[_OutLine] = []
    i = j = k = 0
    stable = [x for x in range(len(S)) if x in map_w and x in map_r]
    for st in stable + [len(S)]:
        j1, k1 = (map_w[st], map_r[st]) if st < len(S) else (len(W), len(R))
        sc, wc, rc = range(i, st), range(j, j1), range(k, k1)
        file_same = [s_as_file[x] for x in sc] == [w_keys[y] for y in wc]
        model_same = [S[x] for x in sc] == [R[z] for z in rc]
        if model_same:  # the model keeps these lines: keep the file's actual text
            out.extend((W[y], m.window_eols[y]) for y in wc)
        elif file_same:
            out.extend((transform(R[z]), None) for z in rc)
        elif [_apply_shift(R[z], shift) for z in rc] == [W[y] for y in wc]:
            out.extend((W[y], m.window_eols[y]) for y in wc)  # both made the same change
        else:
            nearest = tuple((m.window_start + y + 1, W[y]) for y in wc)
            first = S[sc[0]] if len(sc) else "(nothing)"
            raise _Refusal(
                "conflict",
                f"the file differs from SEARCH exactly where REPLACE changes it: SEARCH has {first!r} but the "
                f"file's line{'s' if len(wc) != 1 else ''} "
                + (", ".join(f"{n}: {t!r}" for n, t in nearest) if nearest else "(none there)"),
                nearest,
            )
        if st < len(S):
            out.append((W[j1], m.window_eols[j1]))
            i, j, k = st + 1, j1 + 1, k1 + 1
    return out


def _as_file_key(line: str, shift: _Shift) -> str:
    shifted = _apply_shift(line, shift)
    return "\x00unshiftable\x00" if shifted is None else shifted.rstrip()


def _line_map(a: list[str], b: list[str], pair_replacements: bool = False) -> dict[int, int]:
    """Line i of `a` → line j of `b` for equal lines; with pair_replacements also for lines of a same-size
    replaced run (a line of SEARCH that the file holds in another version), so that a stale line next to a
    changed one does not turn the whole region into a conflict."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    mapping: dict[int, int] = {}
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal" or (pair_replacements and tag == "replace" and i2 - i1 == j2 - j1):
            for offset in range(i2 - i1):
                mapping[i1 + offset] = j1 + offset
    return mapping


# ---------------------------------------------------------------------------------------------------------
# Locating a hunk

# Only explicit forms stand for "lines left out here": a line that is just '...' / '…' (optionally as a comment),
# or a comment that says nothing but that lines were left out. A comment that merely contains '...' (a shape
# such as `# (B, T, ...)`) is real text.
_BARE_ELISION_RE = re.compile(r"^\s*(?:(?:#|//)\s*)?(?:\.\.\.|…)\s*$")
_WORDED_ELISION_RE = re.compile(
    r"^\s*(?:#|//)\s*(?:\.\.\.|…)?\s*[(\[]?\s*(?:"
    r"existing code|existing|unchanged(?: code| lines)?|(?:the )?rest of (?:the )?"
    r"(?:file|function|code|class|method|loop|script|body)(?: (?:is |stays )?unchanged)?|"
    r"remaining (?:code|lines)(?: unchanged)?|(?:code|lines) omitted|omitted|same as before|no changes? here"
    r")\s*[)\]]?\s*(?:\.\.\.|…)?\s*$",
    re.IGNORECASE,
)


def is_elision(line: str) -> bool:
    """True for a line that can only mean "the model left lines out here"."""
    if "..." not in line and "…" not in line and "#" not in line and "//" not in line:
        return False
    return bool(_BARE_ELISION_RE.match(line) or _WORDED_ELISION_RE.match(line))


def _find_exact(lines: list[str], S: list[str]) -> list[int]:
    n = len(S)
    first = S[0]
    return [i for i in range(len(lines) - n + 1) if lines[i] == first and lines[i : i + n] == S]


def _find_whitespace(lines: list[str], S: list[str]) -> list[tuple[int, _Shift]]:
    n = len(S)
    keys = [s.strip() for s in S]
    first = keys[0]
    found: list[tuple[int, _Shift]] = []
    for i in range(len(lines) - n + 1):
        if lines[i].strip() != first:
            continue
        window = lines[i : i + n]
        if [w.strip() for w in window] != keys:
            continue
        shifts = {_shift_between(s, w) for s, w in zip(S, window) if s.strip()}
        if len(shifts) == 1 and None not in shifts:
            found.append((i, shifts.pop()))
    return found


def _trim_blank_edges(S: list[str], R: list[str]) -> tuple[list[str], list[str]]:
    """Drop blank lines at the edges of SEARCH that REPLACE keeps as blank lines at the same edge. A blank edge
    line that REPLACE changes stays, so that trimming never drops a line the model meant to change."""

    def leading_blanks(lines: list[str]) -> int:
        count = 0
        while count < len(lines) and not lines[count].strip():
            count += 1
        return count

    top = min(leading_blanks(S), leading_blanks(R))
    S, R = S[top:], R[top:]
    bottom = min(leading_blanks(S[::-1]), leading_blanks(R[::-1]))
    return S[: len(S) - bottom], R[: len(R) - bottom]


def _span(start: int, end: int) -> str:
    return f"line {start + 1}" if end - start <= 1 else f"lines {start + 1}–{end}"


class _Locator:
    """Finds where one hunk goes in one text and what the window becomes."""

    def __init__(self, doc: Doc, hunk: Hunk, total: int, floor: int = 0) -> None:
        self.floor = floor  # 0-based line where the previous hunk of an ordered format ended
        self.doc = doc
        self.lines = doc.lines
        self.hunk = hunk
        self.label = f"Block {hunk.index + 1}" + (f" of {total}" if total > 1 else "") + f" ({hunk.path})"
        self.S = hunk_lines(hunk.search.replace("\r\n", "\n"))
        self.R = hunk_lines(hunk.replace.replace("\r\n", "\n"))

    def error(
        self, reason: str, message: str, nearest: tuple[tuple[int, str], ...] = (), hint: str = ""
    ) -> HunkApplyError:
        text = f"{self.label}: {message}"
        if nearest:
            text += "\nNearest lines in the file:\n" + "\n".join(f"{n:>5} | {t}" for n, t in nearest)
        if hint:
            text += "\n" + hint
        return HunkApplyError(
            text, hunk_index=self.hunk.index, path=self.hunk.path, reason=reason, nearest=nearest, hint=hint
        )

    def plan(self) -> _Plan:
        S, R = self.S, self.R
        extra = sum(map(is_elision, R)) - sum(map(is_elision, S))
        if extra > 0:
            marker = next(r for r in R if is_elision(r))
            raise self.error(
                "elision",
                f"REPLACE holds {marker.strip()!r}, which stands for lines left out, but SEARCH does not leave "
                "those lines out; applying it would delete them.",
                hint="Copy every line into REPLACE that should stay, instead of a '...' placeholder.",
            )
        mode = self.hunk.mode
        if mode in ("create", "append"):
            if mode == "create" and self.lines:
                raise self.error(
                    "exists",
                    "SEARCH is empty (or only blank lines), which creates a new file, but the file exists and is "
                    "not empty.",
                    hint="Copy the lines the change belongs to into SEARCH; to add lines at the end of the file, "
                    "put its last lines into SEARCH and repeat them in REPLACE before the new ones.",
                )
            return _Plan(len(self.lines), len(self.lines), [(r, None) for r in R], mode, 1.0)
        if mode == "insert_after":
            at = self._anchor_position(required=True)
            assert at is not None
            return _Plan(at + 1, at + 1, [(r, None) for r in R], "insert_after", 1.0)
        if not any(s.strip() for s in S) and S and self.hunk.line_hint is not None:
            at = self.hunk.line_hint - 1
            if [w.rstrip() for w in self.lines[at : at + len(S)]] == [s.rstrip() for s in S]:
                out = self._merged(S, R, at, at + len(S), _NO_SHIFT)
                return _Plan(at, at + len(S), out, "whitespace", 1.0)
        if not any(s.strip() for s in S):
            raise self.error(
                "not_found",
                "the SEARCH text is empty or holds only blank lines, which cannot be placed.",
                hint="Copy a few distinctive lines of the current file into SEARCH.",
            )
        found = self._basic(S, R, trimmed=False)
        if found is not None:
            return found
        S2, R2 = _trim_blank_edges(S, R)
        if S2 and S2 != S:
            found = self._basic(S2, R2, trimmed=True)
            if found is not None:
                return found
        if any(is_elision(s) for s in S2):
            found = self._elided(S2, R2)
            if found is not None:
                return found
        # The three-way merge copes with blank edge lines the file lacks, so the untrimmed text goes first.
        for s_lines, r_lines in ((S, R), (S2, R2)) if S2 != S else ((S, R),):
            found = self._fuzzy(s_lines, r_lines)
            if found is not None:
                return found
        raise self._not_found(S2)

    # -- exact and whitespace-tolerant

    def _basic(self, S: list[str], R: list[str], trimmed: bool) -> _Plan | None:
        exact = _find_exact(self.lines, S)
        loose = _find_whitespace(self.lines, S)
        if len(exact) > 1:
            exact = self._tie_break(exact, lambda i: i, S)
        if len(exact) == 1:
            # The same lines at another indentation are a rival: a model that shifted its indentation would
            # match the wrong one exactly.
            rivals = len(loose) > 1 and not self.hunk.exact
            if rivals and self._tie_break(loose, lambda c: c[0], S)[0][0] != exact[0]:
                raise self._ambiguous([(i, i + len(S)) for i, _ in loose])
            start = exact[0]
            return _Plan(start, start + len(S), [(r, None) for r in R], "whitespace" if trimmed else "exact", 1.0)
        if len(loose) > 1:
            loose = self._tie_break(loose, lambda c: c[0], S)
        if len(loose) == 1:
            start, shift = loose[0]
            out = self._merged(S, R, start, start + len(S), shift)
            return _Plan(start, start + len(S), out, "whitespace", 1.0)
        return None

    # -- ties: where a hunk sits when its lines fit several places

    def _tie_break(self, candidates: list, start_of: "Callable[[Any], int]", S: list[str]) -> list:
        """One candidate, picked only by what the format itself says: the diff header's line (when the lines
        there are exactly SEARCH), then the patch's '@@' anchor line, then (ordered formats) the first place
        after the previous hunk. Otherwise the hunk is ambiguous: every place is reported."""
        hint = self.hunk.line_hint
        if hint is not None:
            at_hint = [c for c in candidates if start_of(c) == hint - 1]
            if len(at_hint) == 1:
                return at_hint
        pool = [c for c in candidates if start_of(c) >= self.floor] if self.hunk.ordered else list(candidates)
        at = self._anchor_position()
        if at is not None:
            after = [c for c in pool if start_of(c) > at]
            if after:
                return after[:1]
        if self.hunk.ordered and pool:
            return pool[:1]
        raise self._ambiguous([(start_of(c), start_of(c) + len(S)) for c in candidates])

    def _anchor_position(self, required: bool = False) -> int | None:
        anchor = (self.hunk.anchor or "").strip()
        if not anchor:
            return None
        start = self.floor if self.hunk.ordered else 0
        found = [n for n in range(start, len(self.lines)) if self.lines[n].strip() == anchor]
        if not found:
            found = [n for n in range(start, len(self.lines)) if self.lines[n].strip().startswith(anchor)]
        if len(found) == 1 or (found and self.hunk.ordered):
            return found[0]
        if required:
            if not found:
                raise self.error("not_found", f"its anchor line {anchor!r} is not in the file.",
                                 hint="Put a line copied exactly from the file after '@@'.")
            raise self._ambiguous([(n, n + 1) for n in found])
        return None

    def _merged(self, S: list[str], R: list[str], start: int, end: int, shift: _Shift) -> list[_OutLine]:
        try:
            return _merge(
                _MergeInput(S, self.lines[start:end], self.doc.eols[start:end], R, shift, start)
            )
        except _Refusal as refusal:
            raise self.error(
                refusal.reason,
                f"at {_span(start, end)}: {refusal.message}.",
                refusal.nearest,
                hint="Copy the current lines exactly into SEARCH (including indentation), then change them in "
                "REPLACE.",
            ) from None

    # -- SEARCH with "..." lines standing for unchanged lines

    def _elided(self, S: list[str], R: list[str]) -> _Plan | None:
        s_parts = _split_elided(S)
        r_parts = _split_elided(R)
        if len(s_parts) == 1:  # only leading/trailing elisions: drop them and match the rest
            return self._basic(s_parts[0], r_parts[0] if len(r_parts) == 1 else R, trimmed=True)
        if len(r_parts) != len(s_parts):
            raise self.error(
                "elision",
                f"SEARCH skips lines with {len(s_parts) - 1} '...' line(s) but REPLACE has {len(r_parts) - 1}, so "
                "it is unclear what happens to the skipped lines.",
                hint="Do not elide lines with '...': copy every line of the region into SEARCH and REPLACE.",
            )
        candidates = [self._part_candidates(part) for part in s_parts]
        if any(not c for c in candidates):
            return None
        chains = _increasing_chains(candidates, [len(p) for p in s_parts], limit=ELISION_MAX_CHAINS + 1)
        if not chains:
            return None
        # Several ways to place the parts are harmless when they all give the same text (typically a generic
        # unchanged anchor line above the change); otherwise the hunk is ambiguous.
        plans: list[_Plan | None] = []
        for chain in chains[:ELISION_MAX_CHAINS]:
            try:
                plans.append(self._elided_plan(chain, s_parts, r_parts))
            except HunkApplyError:
                plans.append(None)
        results = {None if p is None else self._result_key(p) for p in plans}
        if len(chains) > ELISION_MAX_CHAINS or len(results) > 1 or None in results:
            part = next(k for k in range(len(s_parts)) if chains[0][k][0] != chains[1][k][0]) if len(chains) > 1 else 0
            first = next((line for line in s_parts[part] if line.strip()), s_parts[part][0])
            spots = sorted({c[part][0] for c in chains})[:3]
            raise self.error(
                "ambiguous",
                f"SEARCH leaves lines out with '...', and its part {part + 1} (starting {first.strip()!r}) fits "
                f"more than one place: " + ", ".join(f"line {a + 1}" for a in spots) + ".",
                tuple((a + 1, self.lines[a]) for a in spots),
                hint="Do not elide lines with '...': copy every line of the region into SEARCH, or add lines to "
                "make each part unique.",
            )
        return min((p for p in plans if p is not None), key=lambda p: p.end - p.start)

    def _elided_plan(
        self, chain: list[tuple[int, _Shift]], s_parts: list[list[str]], r_parts: list[list[str]]
    ) -> _Plan:
        out: list[_OutLine] = []
        for n, ((pos, shift), s_part, r_part) in enumerate(zip(chain, s_parts, r_parts)):
            end = pos + len(s_part)
            out.extend(self._merged(s_part, r_part, pos, end, shift))
            if n + 1 < len(chain):
                nxt = chain[n + 1][0]
                out.extend((self.lines[x], self.doc.eols[x]) for x in range(end, nxt))
        start, stop = chain[0][0], chain[-1][0] + len(s_parts[-1])
        given = sum(len(p) for p in s_parts)
        return _Plan(start, stop, out, "fuzzy", round(min(1.0, given / max(1, stop - start)), 3))

    def _result_key(self, plan: _Plan) -> str:
        return splice_plan(self.doc, plan).text()

    def _part_candidates(self, part: list[str]) -> list[tuple[int, _Shift]]:
        exact = _find_exact(self.lines, part)
        if exact:
            return [(i, _NO_SHIFT) for i in exact]
        return _find_whitespace(self.lines, part)

    # -- bounded fuzzy

    def _windows(self, S: list[str], need: int) -> list[tuple[int, int, int]]:
        """(hits, start, size) of windows of len(S)±1 lines holding at least `need` of SEARCH's lines."""
        keys = {s.strip() for s in S if s.strip()}
        prefix = [0]
        for line in self.lines:
            stripped = line.strip()
            prefix.append(prefix[-1] + (1 if stripped and stripped in keys else 0))
        n, total = len(S), len(self.lines)
        out = []
        for size in (n, n - 1, n + 1):
            if size < 1 or size > total:
                continue
            for start in range(total - size + 1):
                hits = prefix[start + size] - prefix[start]
                if hits >= need:
                    out.append((hits, start, size))
        out.sort(key=lambda w: (-w[0], w[2] != n, w[1]))
        return out

    def _scored(self, S: list[str], windows: list[tuple[int, int, int]]) -> list[tuple[float, int, int]]:
        target = [s.strip() for s in S]
        scored = []
        for _, start, size in windows:
            ratio = _similarity(target, [w.strip() for w in self.lines[start : start + size]])
            if ratio >= FUZZY_THRESHOLD:
                scored.append((ratio, start, size))
        return scored

    def _fuzzy(self, S: list[str], R: list[str]) -> _Plan | None:
        nonblank = [s for s in S if s.strip()]
        if len(nonblank) < FUZZY_MIN_LINES:
            return None
        windows = self._windows(S, need=max(1, math.ceil(0.5 * len(nonblank))))
        if len(windows) > FUZZY_MAX_WINDOWS:
            return None  # too generic to place with confidence; reported as not found with nearest lines
        scored = self._scored(S, windows)
        if not scored:
            return None
        scored.sort(key=lambda c: (-c[0], c[2] != len(S), c[1]))
        clusters: list[list[tuple[float, int, int]]] = []
        for cand in scored:
            for cluster in clusters:
                best = cluster[0]
                if cand[1] < best[1] + best[2] and best[1] < cand[1] + cand[2]:
                    cluster.append(cand)
                    break
            else:
                clusters.append([cand])
        if len(clusters) > 1:
            raise self._ambiguous([(c[0][1], c[0][1] + c[0][2]) for c in clusters], fuzzy=True)
        first_error: HunkApplyError | None = None
        for ratio, start, size in clusters[0]:
            window = self.lines[start : start + size]
            aligned = _line_map([x.strip() for x in S], [w.strip() for w in window])
            shift = _mode_shift([(S[a], window[b]) for a, b in aligned.items()])
            try:
                out = self._merged(S, R, start, start + size, shift)
            except HunkApplyError as err:
                first_error = first_error or err
                continue
            return _Plan(start, start + size, out, "fuzzy", round(ratio, 3))
        assert first_error is not None
        raise first_error

    # -- errors

    def _ambiguous(self, spans: list[tuple[int, int]], fuzzy: bool = False) -> HunkApplyError:
        shown = spans[:5]
        nearest = tuple((a + 1, self.lines[a]) for a, _ in shown)
        where = ", ".join(_span(a, b) for a, b in shown) + (f" and {len(spans) - 5} more" if len(spans) > 5 else "")
        how = "nearly matches" if fuzzy else "matches"
        return self.error(
            "ambiguous",
            f"the SEARCH text {how} {len(spans)} places ({where}), so it is unclear which one to change.",
            nearest,
            hint="Add unchanged lines before or after the change to SEARCH (and REPLACE) until it matches one place.",
        )

    def _not_found(self, S: list[str]) -> HunkApplyError:
        best: tuple[float, int, int] | None = None
        windows = self._windows(S, need=1)[:40]
        target = [s.strip() for s in S]
        for _, start, size in windows:
            ratio = _similarity(target, [w.strip() for w in self.lines[start : start + size]])
            if best is None or ratio > best[0]:
                best = (ratio, start, size)
        hint = (
            "Copy the SEARCH lines exactly from the current file (same text, same indentation), or leave SEARCH "
            "empty to append to the end of the file."
        )
        if any(is_elision(s) for s in S):
            hint += " Do not skip lines with '...': each part around a '...' line must match the file exactly."
        if best is None:
            first = next(s for s in S if s.strip())
            close = difflib.get_close_matches(
                first.strip(), [line.strip() for line in self.lines], n=3, cutoff=0.5
            )
            nearest = tuple(
                (n + 1, line) for n, line in enumerate(self.lines) if line.strip() in close
            )[:3]
            return self.error(
                "not_found",
                "the SEARCH text was not found in the file, and no block of lines resembles it"
                + ("; the lines most like its first line are below." if nearest else "."),
                nearest,
                hint,
            )
        ratio, start, size = best
        window = self.lines[start : start + size]
        nearest = tuple((start + n + 1, line) for n, line in enumerate(window))
        difference = ""
        for n, (s, w) in enumerate(zip(S, window)):
            if s.rstrip() != w.rstrip():
                difference = (
                    f" The first difference: SEARCH line {n + 1} is {s!r} but file line {start + n + 1} is {w!r}."
                )
                break
        return self.error(
            "not_found",
            f"the SEARCH text was not found in the file; the most similar place is {_span(start, start + size)} "
            f"(similarity {ratio:.2f}).{difference}",
            nearest,
            hint,
        )


def _similarity(a: list[str], b: list[str]) -> float:
    """difflib's ratio over the characters of two line lists (newlines included), computed line-aware: equal
    lines count whole, lines of a replaced run are compared pairwise. Close to the plain character ratio and
    much cheaper on long, similar texts."""
    total = sum(len(x) + 1 for x in a) + sum(len(y) + 1 for y in b)
    if not total:
        return 1.0
    matched = 0
    pair = difflib.SequenceMatcher(None, autojunk=False)
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            matched += sum(len(x) + 1 for x in a[i1:i2])
        elif tag == "replace":
            for x, y in zip(a[i1:i2], b[j1:j2]):
                pair.set_seqs(x, y)
                matched += sum(m.size for m in pair.get_matching_blocks()) + 1
    return 2.0 * matched / total


def _split_elided(lines: list[str]) -> list[list[str]]:
    """Parts of `lines` between elision lines; leading/trailing elisions and empty parts dropped."""
    parts: list[list[str]] = [[]]
    for line in lines:
        if is_elision(line):
            if parts[-1]:
                parts.append([])
        else:
            parts[-1].append(line)
    return [p for p in parts if p] or [[]]


def _increasing_chains(
    candidates: list[list[tuple[int, _Shift]]], sizes: list[int], limit: int
) -> list[list[tuple[int, _Shift]]]:
    """Up to `limit` ways to pick one candidate per part with each part starting after the previous one ends."""
    results: list[list[tuple[int, _Shift]]] = []

    def walk(part: int, min_start: int, chain: list[tuple[int, _Shift]]) -> None:
        if len(results) >= limit:
            return
        if part == len(candidates):
            results.append(list(chain))
            return
        for cand in candidates[part]:
            if cand[0] >= min_start:
                chain.append(cand)
                walk(part + 1, cand[0] + sizes[part], chain)
                chain.pop()
                if len(results) >= limit:
                    return

    walk(0, 0, [])
    return results




def splice_plan(doc: Doc, plan: _Plan) -> Doc:
    eol = doc.dominant_eol()
    lines = doc.lines[: plan.start]
    eols = doc.eols[: plan.start]
    at_end = plan.end == len(doc.lines)
    had_final_newline = not doc.lines or doc.eols[-1] != ""
    inserting = plan.start == plan.end
    if inserting and plan.out and eols and eols[-1] == "":
        eols[-1] = eol  # lines added after a last line that had no newline
    for text, line_eol in plan.out:
        lines.append(text)
        eols.append(eol if line_eol is None else line_eol)
    lines.extend(doc.lines[plan.end :])
    eols.extend(doc.eols[plan.end :])
    # A hunk that reaches the end of a file without a final newline keeps it that way.
    if at_end and not had_final_newline and not inserting and eols:
        eols[-1] = ""
    return Doc(lines, eols)
