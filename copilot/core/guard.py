"""Integrity guard: flag edits that touch what a speedrun must not change (FACTS.md §1.8, §2.4, §3.1).

Protected parts of a training script: the data (shard paths and patterns, the shard format), the number of
validation tokens, the validation routine, the timer (perf_counter / synchronize around train_time), the
log format strings that the parser reads, and extra torch.compile / inductor flags (banned upstream after
record 21). Micro-track scripts additionally fence their validation set and target inside a marked
"do not change" block; any change inside such a block is blocking.

The check compares the record's script (base) with the candidate (new) line by line, ignoring whitespace,
comment-only lines and moved lines, so refactors that keep the protected lines intact pass.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

BLOCK = "block"
WARN = "warn"


@dataclass(frozen=True)
class Finding:
    kind: str  # data | val_tokens | validation | timer | log_format | compile_flags | protected_block
    line: int  # 1-based; in the new text, or in the base text when where == "base" (a removed line)
    text: str
    severity: str  # "block" | "warn"
    where: str = "new"
    reason: str = ""


@dataclass
class GuardReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return any(f.severity == BLOCK for f in self.findings)

    def summary(self) -> str:
        if not self.findings:
            return "no protected part touched"
        kinds = Counter(f.kind for f in self.findings)
        parts = ", ".join(f"{k}×{n}" if n > 1 else k for k, n in kinds.items())
        return f"{'blocking' if self.blocking else 'warning'}: {parts}"


# What each protected kind looks like in a line of code.
_PATTERNS: dict[str, re.Pattern[str]] = {
    "data": re.compile(
        r"fineweb_(train|val)|train_files|val_files|input_bin|input_val_bin|DATA_PATH|NANOGPT_(TRAIN|VAL)_FILES"
        r"|_load_data_shard|20240520|\.bin\b|MICRO_DATA|DATA_DIR"
    ),
    "val_tokens": re.compile(r"val_tokens|VAL_TOKENS|10485760|10_485_760"),
    "timer": re.compile(r"perf_counter|time\.time\(\)|time\.monotonic|cuda\.synchronize|training_time_ms|\btrain_time\b|\bt0\b"),
    "log_format": re.compile(r"val_loss:|train_loss:|train_time:|step_avg:|peak memory"),
    "validation": re.compile(r"\bval_loss\b|val_steps|val_batch_size|val_loader|\.eval\(\)|inference_mode|no_grad"),
    "compile_flags": re.compile(r"_inductor\.config|coordinate_descent_tuning|torch\._dynamo\.config"),
}
# Kind order: a line is attributed to the first kind that matches (a print of val_loss is a log-format line).
_ORDER = ("log_format", "val_tokens", "data", "compile_flags", "timer", "validation")

# Names whose (re)assignment in an added line is always blocking: it rewrites what is measured.
_ASSIGN = re.compile(
    r"\b(training_time_ms|train_time|t0|val_tokens|train_files|val_files|val_loss|input_bin|input_val_bin)"
    r"\s*(?:[-+*/]?=)(?!=)"
)
_SEVERITY_REMOVED = {"log_format": BLOCK, "val_tokens": BLOCK, "data": BLOCK, "timer": BLOCK,
                     "validation": WARN, "compile_flags": WARN}
_SEVERITY_ADDED = {"log_format": WARN, "val_tokens": BLOCK, "data": BLOCK, "timer": WARN,
                   "validation": WARN, "compile_flags": BLOCK}

_BEGIN = re.compile(r"^\s*#.*\b(do[\s-]+not[\s-]+(change|edit|modify)|protected\s+(block|region))", re.IGNORECASE)
_END = re.compile(r"^\s*#.*\bend\b.*\b(do[\s-]+not[\s-]+(change|edit|modify)|protected)", re.IGNORECASE)


def _norm(line: str) -> str:
    return re.sub(r"\s+", " ", line.strip())


def _is_code(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _kind(line: str) -> str | None:
    for kind in _ORDER:
        if _PATTERNS[kind].search(line):
            return kind
    return None


def protected_blocks(text: str) -> list[tuple[int, list[str]]]:
    """(first line number, lines) of every marked do-not-change block; the block runs to its end marker,
    else to the first blank line after code."""
    lines = text.splitlines()
    blocks: list[tuple[int, list[str]]] = []
    i = 0
    while i < len(lines):
        if _BEGIN.search(lines[i]) and not _END.search(lines[i]):
            start, body, j = i + 2, [], i + 1  # start: 1-based number of the first body line
            has_end = any(_END.search(l) for l in lines[i + 1 :])
            while j < len(lines):
                if _END.search(lines[j]) or (not has_end and not lines[j].strip() and any(_is_code(b) for b in body)):
                    break
                body.append(lines[j])
                j += 1
            blocks.append((start, body))
            i = j
        i += 1
    return blocks


def check_integrity(base_text: str, new_text: str, track_name: str = "nanogpt") -> GuardReport:
    """Findings for every protected line the new script removed, changed or added."""
    report = GuardReport()
    base_lines, new_lines = base_text.splitlines(), new_text.splitlines()
    base_count = Counter(_norm(l) for l in base_lines if _is_code(l))
    new_count = Counter(_norm(l) for l in new_lines if _is_code(l))

    removed = base_count - new_count
    for number, line in enumerate(base_lines, 1):
        key = _norm(line)
        if not _is_code(line) or removed[key] <= 0:
            continue
        removed[key] -= 1
        kind = _kind(line)
        if kind:
            report.findings.append(Finding(kind, number, line.strip(), _SEVERITY_REMOVED[kind], "base",
                                           f"a protected {kind.replace('_', ' ')} line was changed or removed"))

    added = new_count - base_count
    for number, line in enumerate(new_lines, 1):
        key = _norm(line)
        if not _is_code(line) or added[key] <= 0:
            continue
        added[key] -= 1
        kind = _kind(line)
        if kind is None:
            continue
        severity = _SEVERITY_ADDED[kind]
        if _ASSIGN.search(line):
            severity = BLOCK
        report.findings.append(Finding(kind, number, line.strip(), severity, "new",
                                       f"a new line touches the {kind.replace('_', ' ')}"))

    report.findings.extend(_block_findings(base_text, new_text))
    report.findings.sort(key=lambda f: (f.severity != BLOCK, f.where != "new", f.line))
    return report


def _block_findings(base_text: str, new_text: str) -> list[Finding]:
    base_blocks, new_blocks = protected_blocks(base_text), protected_blocks(new_text)
    findings: list[Finding] = []
    for i, (start, body) in enumerate(base_blocks):
        if i >= len(new_blocks):
            findings.append(Finding("protected_block", start, "do-not-change block removed", BLOCK, "base",
                                    "the marked do-not-change block is gone"))
            continue
        new_start, new_body = new_blocks[i]
        old = [_norm(l) for l in body if l.strip()]
        new = [_norm(l) for l in new_body if l.strip()]
        if old != new:
            offset = next((k for k, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
            nonblank = [l for l in new_body if l.strip()]
            text = nonblank[offset].strip() if offset < len(nonblank) else "(lines removed)"
            line = new_start + next((k for k, l in enumerate(new_body) if l.strip() and _norm(l) == _norm(text)), 0)
            findings.append(Finding("protected_block", line, text, BLOCK, "new",
                                    "a line inside the marked do-not-change block changed"))
    return findings


def timer_gap_flag(wall_time_s: float | None, train_time_ms: float | None,
                   allowance_s: float = 480.0, ratio: float = 1.0) -> str | None:
    """A warning when the script's own train_time disagrees with the wall clock the runner measured.

    train_time excludes validation and the untimed warm-up/compile, so it is always below the wall time; the
    gap is suspicious when train_time exceeds the wall time (a broken clock) or when more time ran untimed
    than both `allowance_s` (compile + validation; ~7 min on a first nanogpt run) and `ratio` × train_time.
    """
    if wall_time_s is None or train_time_ms is None or wall_time_s <= 0:
        return None
    train_s = train_time_ms / 1000.0
    if train_s > wall_time_s * 1.02 + 0.5:
        return (f"the script reports train_time {train_s:.1f}s but the run took only {wall_time_s:.1f}s of wall "
                "time: its timer is wrong")
    untimed = wall_time_s - train_s
    if untimed > max(allowance_s, ratio * train_s):
        share = 100.0 * train_s / wall_time_s
        return (f"the script's train_time ({train_s:.1f}s) covers only {share:.0f}% of the wall time "
                f"({wall_time_s:.1f}s): {untimed:.0f}s ran untimed; check that the timer brackets all training")
    return None
