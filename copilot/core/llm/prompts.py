"""Prompt construction: the task, the rules, hints, past attempts with their results, and the current files.

Layout of the messages `build_messages` returns:

- system: the task (reach val loss <= target in the shortest training time), the rules, the answer format.
- user:   record facts, hints (levels 1..3), recent attempts, feedback on the last suggestion, the current files,
          and last the typed instruction.

Current files are rendered by `render_file` as a header line plus a fenced block whose fence is longer than any
backtick run in the text, so `files_from_messages` can read them back exactly (the offline oracle does that).
The script itself is never truncated (SEARCH text must match it exactly); hints, attempts, feedback and
companion files are, with a visible marker, to keep the prompt within `PromptContext.max_prompt_chars`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

HINT_NAMES = {1: "pseudocode of the change", 2: "description of the change", 3: "mini-paper about the change"}

MAX_PROMPT_CHARS = 200_000
MAX_ATTEMPTS = 5
MAX_HINT_CHARS = 8_000
MAX_ERROR_TAIL_CHARS = 1_500
MAX_FEEDBACK_CHARS = 3_000
MAX_INSTRUCTION_CHARS = 3_000
MAX_COMPANION_CHARS = 20_000
MAX_RETRY_ERROR_CHARS = 6_000

FILE_HEADER = "### File: "
_FILE_RE = re.compile(
    r"^### File: `(?P<path>[^`\n]+)`[ \t]*\n(?P<fence>`{3,})[^\n`]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class AttemptSummary:
    commit: str
    description: str
    outcome: str  # e.g. reached_target | above_target | crashed | diverged | hung | cancelled
    time_to_target_s: float | None = None
    final_val_loss: float | None = None
    error_tail: str = ""


@dataclass
class PromptContext:
    track: str
    record: int
    target_val_loss: float
    script_path: str
    script_text: str
    record_time_s: float | None = None
    next_record_time_s: float | None = None
    companion_files: Mapping[str, str] = field(default_factory=dict)
    hints: Mapping[int, str] = field(default_factory=dict)  # level (1..3) -> text, the levels the user chose
    attempts: Sequence[AttemptSummary] = ()
    feedback: str | Sequence[str] | None = None  # the human's notes on the last suggestion (per rejected hunk)
    instruction: str | None = None
    run_command: str | None = None  # how the script is launched, if the track says
    instruction_from: str = "human"  # who typed the instruction: "human", or "search policy" in autonomous mode
    edit_format: str = "search_replace"  # how the model is asked to answer (edits.FORMATS)
    max_prompt_chars: int = MAX_PROMPT_CHARS


# ---------------------------------------------------------------------------------------------------------
# Text helpers


def truncate_head(text: str, limit: int) -> str:
    """Keep the beginning of `text`, marking what was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return text[:limit].rstrip() + f"\n[… {cut} more characters truncated …]"


def truncate_tail(text: str, limit: int) -> str:
    """Keep the end of `text` (where errors are), marking what was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    return f"[… {cut} earlier characters truncated …]\n" + text[-limit:].lstrip("\n")


def _fence_for(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _lang(path: str) -> str:
    return {"py": "python", "sh": "bash", "toml": "toml", "md": "markdown", "json": "json"}.get(
        path.rsplit(".", 1)[-1] if "." in path else "", ""
    )


def render_file(path: str, text: str) -> str:
    """A file as the model sees it; `files_from_messages` reads it back exactly."""
    fence = _fence_for(text)
    body = text if not text or text.endswith("\n") else text + "\n"
    return f"{FILE_HEADER}`{path}`\n{fence}{_lang(path)}\n{body}{fence}"


def files_from_text(text: str) -> dict[str, str]:
    return {m.group("path"): m.group("body") for m in _FILE_RE.finditer(text)}


def files_from_messages(messages: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """The files rendered in the last user message that holds any (a trailing newline is always present)."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        files = files_from_text(str(message.get("content", "")))
        if files:
            return files
    return {}


def _seconds(value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"{value:.3g} s" if value < 100 else f"{value:,.0f} s"


# ---------------------------------------------------------------------------------------------------------
# System message


def system_message(ctx: PromptContext) -> str:
    run = ctx.run_command or f"the same command as before (it runs `{ctx.script_path}`)"
    return f"""You are an expert ML engineer taking part in a training speedrun, working with a human co-pilot.

Task: change the training script `{ctx.script_path}` so that it reaches a validation loss of \
{ctx.target_val_loss:g} or lower in the shortest possible training time (the `train_time` the script prints). \
Only training time counts; code tidiness does not.

Rules:
- Keep every log print exactly as it is (same format, same keys): the results are read from those lines.
- Do not change the data paths or the training/validation files, the number of validation tokens, the \
validation routine, or the timer that measures train_time.
- Keep the script runnable with {run}; no new dependencies, no downloads.
- Make one focused improvement at a time; fix bugs reported in earlier attempts first.

Answer format: a brief rationale (a few sentences: what you change and why it should be faster), then \
{answer_format(ctx.edit_format, ctx.script_path)}"""


def answer_format(edit_format: str, path: str) -> str:
    """How to write the edit, in the format the model is asked for."""
    if edit_format == "udiff":
        return f"""a unified diff of your change:

```diff
--- a/{path}
+++ b/{path}
@@ -12,3 +12,3 @@
 an unchanged line copied exactly from the current file
-the line as it is now
+the line as it should be
 another unchanged line
```

Context lines (starting with a space) must copy the current file exactly and make each hunk's place unique."""
    if edit_format == "patch":
        return f"""one patch in this envelope:

*** Begin Patch
*** Update File: {path}
@@ a line just above the change, copied from the file (e.g. def get_lr(it):)
 an unchanged line (prefixed with a space)
-a line to remove
+a line to add
*** End Patch

Unchanged and removed lines must copy the current file exactly (same indentation). Do not delete or move files."""
    if edit_format == "whole":
        return f"""the complete new file, on one path line and in one fenced block:

{path}
```python
every line of the new file, nothing left out
```

Write out every line: no '...' or '# rest unchanged' placeholders, which would delete what they stand for."""
    if edit_format == "tools":
        return """calls to the edit_file tool, one per change: path, old_string (copied exactly from the current \
file, with enough neighbouring lines to occur only once) and new_string. Write the rationale as plain text."""
    return f"""one SEARCH/REPLACE block per change, like this:

{path}
```python
<<<<<<< SEARCH
lines copied exactly from the current file
=======
the lines that replace them
>>>>>>> REPLACE
```

The SEARCH text must match the current file exactly (same characters, same indentation, no '...' to skip \
lines) and match only one place: include a few unchanged neighbouring lines to make it unique. Keep blocks \
small. Do not repeat the whole file."""


_FORMAT_NAMES = {"search_replace": "SEARCH/REPLACE blocks", "udiff": "a unified diff", "patch": "one patch",
                 "whole": "the complete new file", "tools": "edit_file tool calls"}


def format_name(edit_format: str) -> str:
    return _FORMAT_NAMES.get(edit_format, _FORMAT_NAMES["search_replace"])


# ---------------------------------------------------------------------------------------------------------
# User message


def _facts(ctx: PromptContext) -> str:
    lines = [f"Track {ctx.track!r}, starting from record {ctx.record}. Target: val_loss <= {ctx.target_val_loss:g}."]
    if ctx.record_time_s is not None:
        lines.append(f"This record reaches the target in {_seconds(ctx.record_time_s)} of training time.")
    if ctx.next_record_time_s is not None:
        lines.append(f"The next record reached it in {_seconds(ctx.next_record_time_s)}: match or beat that.")
    return "\n".join(lines)


def _hints_section(hints: Mapping[int, str], per_hint: int) -> str:
    parts = []
    for level in sorted(hints):
        text = (hints[level] or "").strip()
        if not text:
            continue
        name = HINT_NAMES.get(level, f"level {level}")
        parts.append(f"### Hint level {level} ({name})\n{truncate_head(text, per_hint)}")
    if not parts:
        return ""
    return "## Hints about the change that made the next record\n\n" + "\n\n".join(parts)


def _attempt_line(n: int, a: AttemptSummary, tail_chars: int) -> str:
    head = f"{n}. commit {a.commit[:10]}"
    if a.description:
        head += f" — {a.description.strip().splitlines()[0][:200]}"
    facts = [f"outcome: {a.outcome}"]
    if a.time_to_target_s is not None:
        facts.append(f"time to target: {_seconds(a.time_to_target_s)}")
    if a.final_val_loss is not None:
        facts.append(f"final val_loss: {a.final_val_loss:.4f}")
    text = head + "\n   " + "; ".join(facts)
    tail = (a.error_tail or "").strip()
    if tail and tail_chars > 0:
        tail = truncate_tail(tail, tail_chars)
        text += f"\n   last output lines:\n{_fence_for(tail)}\n{tail}\n{_fence_for(tail)}"
    return text


def _attempts_section(attempts: Sequence[AttemptSummary], keep: int, tail_chars: int) -> str:
    if not attempts or keep <= 0:
        return ""
    shown = list(attempts)[-keep:]
    skipped = len(attempts) - len(shown)
    lines = ["## Earlier attempts in this session (oldest first)"]
    if skipped:
        lines.append(f"[… {skipped} older attempt(s) not shown …]")
    lines += [_attempt_line(i + 1 + skipped, a, tail_chars) for i, a in enumerate(shown)]
    return "\n\n".join(lines)


def _feedback_section(feedback: str | Sequence[str] | None) -> str:
    if not feedback:
        return ""
    text = feedback if isinstance(feedback, str) else "\n".join(f"- {f}" for f in feedback if f)
    if not text.strip():
        return ""
    return ("## The human's feedback on your last suggestion\n"
            + truncate_head(text.strip(), MAX_FEEDBACK_CHARS)
            + "\nTake it into account: do not propose rejected changes again unless the feedback asks for it.")


def _files_section(ctx: PromptContext, companion_limit: int) -> str:
    parts = ["## Current files", render_file(ctx.script_path, ctx.script_text)]
    for path in sorted(ctx.companion_files):
        text = ctx.companion_files[path]
        if len(text) <= companion_limit:
            parts.append(render_file(path, text))
        else:
            parts.append(f"{FILE_HEADER}`{path}` (not shown: {len(text):,} characters; do not edit it)")
    return "\n\n".join(parts)


def _instruction_section(instruction: str | None, source: str = "human", edit_format: str = "search_replace") -> str:
    request = "Propose your next improvement."
    if instruction and instruction.strip():
        request = (f"The {source} asks: " + truncate_head(instruction.strip(), MAX_INSTRUCTION_CHARS)
                   + "\nFollow this request.")
    return "## Your turn\n" + request + f" Answer with a brief rationale, then {format_name(edit_format)}."


@dataclass(frozen=True)
class _Budget:
    hint_chars: int
    attempts: int
    tail_chars: int
    companion_chars: int


# From generous to frugal; the first that fits is used. The script is never cut.
_BUDGETS = (
    _Budget(MAX_HINT_CHARS, MAX_ATTEMPTS, MAX_ERROR_TAIL_CHARS, MAX_COMPANION_CHARS),
    _Budget(MAX_HINT_CHARS, MAX_ATTEMPTS, 600, 0),
    _Budget(3_000, 3, 400, 0),
    _Budget(1_200, 2, 200, 0),
    _Budget(400, 1, 0, 0),
)


def user_message(ctx: PromptContext, budget: _Budget = _BUDGETS[0]) -> str:
    sections = [
        _facts(ctx),
        _hints_section(ctx.hints, budget.hint_chars),
        _attempts_section(ctx.attempts, budget.attempts, budget.tail_chars),
        _feedback_section(ctx.feedback),
        _files_section(ctx, budget.companion_chars),
        _instruction_section(ctx.instruction, ctx.instruction_from, ctx.edit_format),
    ]
    return "\n\n".join(s for s in sections if s)


def build_messages(ctx: PromptContext) -> list[dict[str, str]]:
    system = system_message(ctx)
    user = ""
    for budget in _BUDGETS:
        user = user_message(ctx, budget)
        if len(system) + len(user) <= ctx.max_prompt_chars:
            break
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def retry_message(error_text: str, edit_format: str = "search_replace") -> dict[str, str]:
    """The user turn that sends a malformed or unappliable answer's problem back to the model."""
    error_text = truncate_head(error_text.strip(), MAX_RETRY_ERROR_CHARS)
    return {
        "role": "user",
        "content": (
            f"Your last answer could not be used:\n\n{error_text}\n\n"
            "The files are unchanged, exactly as shown earlier. Answer again: a brief rationale, then "
            f"{format_name(edit_format)} for all of your changes, copied exactly from the current file."
        ),
    }


def truncated_message(blocks: int, edit_format: str = "search_replace") -> dict[str, str]:
    """The user turn after an answer was cut off by the token limit."""
    kept = f"after {blocks} complete block{'s' if blocks != 1 else ''}" if blocks else "before any complete edit"
    return {
        "role": "user",
        "content": (
            f"Your last answer was cut off by the token limit {kept}, so none of it was applied. Answer again, "
            f"shorter: a one-line rationale, then {format_name(edit_format)} for all of your changes, small ones."
        ),
    }
