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


# What each protected kind looks like in a line of code (for the line-level warnings).
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

# Semantic atoms whose change is blocking (extracted from code with comments stripped).
_DATA_LITERAL = re.compile(r"""(['"])([^'"\s]*(?:fineweb[^'"\s]*|\.bin))\1""")  # a path-like literal
_VAL_TOKENS_VALUE = re.compile(r"\bval_tokens\s*(?::\s*[\w.\[\]]+)?\s*=\s*(.+)$")
_FORMAT_FIELD = re.compile(r"\b(val_loss|train_time):\{([^{}]*)\}")
_TIMER_ASSIGN = re.compile(r"\btraining_time_ms\s*([-+*/]?=)(?!=)\s*(.*)$")
_VAL_FUDGE = re.compile(r"\bval_loss\s*(?:[-+*/]=\s*.*\d\.\d|=\s*[-+]?(?!0+(?:\.0*)?\s*$)[\d.]+(?:e[-+]?\d+)?\s*$)")
_COMPILE_FLAG = re.compile(r"(_inductor\.config\.\w+|coordinate_descent_tuning)\s*=")
_BEGIN = re.compile(r"^\s*#.*\b(do[\s-]+not[\s-]+(change|edit|modify)|protected\s+(block|region))", re.IGNORECASE)
_END = re.compile(r"^\s*#.*\bend\b.*\b(do[\s-]+not[\s-]+(change|edit|modify)|protected)", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _strip_comment(line: str) -> str:
    """The line without a trailing # comment (quote-aware, good enough for one physical line)."""
    quote: str | None = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote and line[i - 1] != "\\":
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def _norm(line: str) -> str:
    return re.sub(r"\s+", " ", _strip_comment(line).strip())


def _is_code(line: str) -> bool:
    return bool(_norm(line))


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


def _atoms(text: str) -> dict[str, Counter[str]]:
    """The protected facts of a script: data literals, shard magic, val token count, val-line format fields,
    and the compile flags it sets."""
    atoms: dict[str, Counter[str]] = {k: Counter() for k in ("data", "val_tokens", "log_format", "compile_flags")}
    for raw in text.splitlines():
        line = _norm(raw)
        if not line:
            continue
        for m in _DATA_LITERAL.finditer(line):
            # the file pattern, not its folder: the folder may differ per machine (DATA_PATH)
            atoms["data"][m.group(2).rsplit("/", 1)[-1]] = 1
        if "20240520" in line:
            atoms["data"]["shard magic 20240520"] = 1
        m = _VAL_TOKENS_VALUE.search(line)
        if m and "==" not in line:
            atoms["val_tokens"][m.group(1).strip().rstrip(",")] = 1
        if "val_loss:{" in line:  # the validation line: what it prints is the score
            for key, expr in _FORMAT_FIELD.findall(line):
                atoms["log_format"][f"{key}:{{{expr.replace(' ', '')}}}"] = 1
        m = _COMPILE_FLAG.search(line)
        if m:
            atoms["compile_flags"][line] += 1
    return atoms


def _timer_tamper(line: str) -> str | None:
    """Why an added line that writes training_time_ms looks like it bends the clock, or None."""
    m = _TIMER_ASSIGN.search(line)
    if not m:
        return None
    op, rhs = m.group(1), m.group(2)
    if op in ("-=", "*=", "/="):
        return f"training_time_ms {op} … shrinks the measured time"
    if op == "+=":
        if "t0" not in rhs and "perf_counter" not in rhs and "time(" not in rhs:
            return "training_time_ms grows by something other than elapsed time"
        if set(_NUMBER.findall(rhs)) - {"1000", "1e3", "1000.0"}:
            return "the ms conversion of training_time_ms changed"
    return None


def check_integrity(base_text: str, new_text: str, track_name: str = "nanogpt") -> GuardReport:
    """Blocking findings for changed protected facts (data, val tokens, the scored log line, the clock, the
    val loss, compile flags, do-not-change blocks); warnings for other changed lines that touch them."""
    report = GuardReport()
    base_lines, new_lines = base_text.splitlines(), new_text.splitlines()

    base_atoms, new_atoms = _atoms(base_text), _atoms(new_text)
    for kind in ("data", "val_tokens", "log_format"):
        for atom in (base_atoms[kind] - new_atoms[kind]):
            line = _first_line(base_lines, atom, kind)
            report.findings.append(Finding(kind, line, atom, BLOCK, "base", f"protected {kind.replace('_', ' ')} changed"))
        for atom in (new_atoms[kind] - base_atoms[kind]):
            line = _first_line(new_lines, atom, kind)
            report.findings.append(Finding(kind, line, atom, BLOCK, "new", f"protected {kind.replace('_', ' ')} changed"))
    for atom in (new_atoms["compile_flags"] - base_atoms["compile_flags"]):
        line = _first_line(new_lines, atom, "compile_flags")
        report.findings.append(Finding("compile_flags", line, atom, BLOCK, "new",
                                       "extra torch.compile/inductor flags are banned (upstream rule since record 21)"))
    flagged = {(f.where, f.line) for f in report.findings}

    base_count = Counter(_norm(l) for l in base_lines if _is_code(l))
    new_count = Counter(_norm(l) for l in new_lines if _is_code(l))
    removed = base_count - new_count
    for number, line in enumerate(base_lines, 1):
        key = _norm(line)
        if not key or removed[key] <= 0:
            continue
        removed[key] -= 1
        kind = _kind(key)
        if kind and ("base", number) not in flagged:
            report.findings.append(Finding(kind, number, line.strip(), WARN, "base",
                                           f"a line touching the {kind.replace('_', ' ')} was changed or removed"))
    added = new_count - base_count
    for number, line in enumerate(new_lines, 1):
        key = _norm(line)
        if not key or added[key] <= 0:
            continue
        added[key] -= 1
        kind = _kind(key)
        if kind is None or ("new", number) in flagged:
            continue
        severity, reason = WARN, f"a new line touches the {kind.replace('_', ' ')}"
        tamper = _timer_tamper(key)
        if tamper:
            kind, severity, reason = "timer", BLOCK, tamper
        elif _VAL_FUDGE.search(key):
            kind, severity, reason = "validation", BLOCK, "the val loss is adjusted by a constant"
        report.findings.append(Finding(kind, number, line.strip(), severity, "new", reason))

    report.findings.extend(_block_findings(base_text, new_text))
    report.findings.sort(key=lambda f: (f.severity != BLOCK, f.where != "new", f.line))
    return report


def _first_line(lines: list[str], atom: str, kind: str) -> int:
    probe = atom.replace("shard magic ", "")
    if kind == "log_format":
        probe = atom.split(":", 1)[0] + ":{"
    for number, line in enumerate(lines, 1):
        norm = _norm(line)
        if probe in norm or (kind == "log_format" and probe in norm and "val_loss:{" in norm):
            return number
        if kind == "val_tokens" and _VAL_TOKENS_VALUE.search(norm) and atom in norm:
            return number
    return 0


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
