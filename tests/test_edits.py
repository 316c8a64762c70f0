"""copilot.core.edits: parsing model answers into hunks, tolerant all-or-nothing apply, blocks from two texts."""

from __future__ import annotations

import random

import pytest

from copilot.core.edits import (
    Hunk,
    HunkApplyError,
    apply_hunks,
    apply_to_files,
    blocks_from_texts,
    format_apply_error_for_model,
    hunk_preview,
    parse_edits,
)
from copilot.core.errors import EditApplyError, EditParseError

SCRIPT = """import math

import torch


def get_lr(it):
    if it < args.warmup_iters:
        return args.learning_rate * (it + 1) / args.warmup_iters
    return args.learning_rate


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=False)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=False)

    def forward(self, x):
        x = self.c_fc(x)
        x = F.gelu(x)
        x = self.c_proj(x)
        return x


def main():
    model = GPT(config)
    print("done")
"""


def block(search: str, replace: str, path: str | None = "train_gpt.py", fence: str = "```python") -> str:
    head = f"{path}\n" if path else ""
    return f"{head}{fence}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


def hunk(search: str, replace: str, index: int = 0, path: str = "train_gpt.py", mode: str = "replace") -> Hunk:
    return Hunk(index=index, path=path, search=search, replace=replace, mode=mode)


# ---------------------------------------------------------------------------------------------------------
# Parsing


def test_parse_fenced_block_with_path_line_and_rationale() -> None:
    change = block("        x = F.gelu(x)\n", "        x = F.relu(x).square()\n")
    text = "Use relu squared; it trains faster.\n\n" + change
    text += "\nThat should help.\n"
    parsed = parse_edits(text, "default.py")
    assert parsed.hunks == (
        Hunk(0, "train_gpt.py", "        x = F.gelu(x)\n", "        x = F.relu(x).square()\n"),
    )
    assert parsed.rationale == "Use relu squared; it trains faster.\n\nThat should help."


def test_parse_without_fences_and_without_path_uses_default_path() -> None:
    text = "Change it.\n<<<<<<< SEARCH\na = 1\n=======\na = 2\n>>>>>>> REPLACE\n"
    parsed = parse_edits(text, "train_gpt.py")
    assert parsed.hunks == (Hunk(0, "train_gpt.py", "a = 1\n", "a = 2\n"),)
    assert parsed.rationale == "Change it."


def test_parse_crlf_answer_gives_lf_hunks() -> None:
    text = block("a = 1\n", "a = 2\n").replace("\n", "\r\n")
    (h,) = parse_edits(text, "x.py").hunks
    assert (h.path, h.search, h.replace) == ("train_gpt.py", "a = 1\n", "a = 2\n")


def test_parse_several_blocks_in_one_fence_inherit_the_path() -> None:
    text = (
        "model.py\n```python\n<<<<<<< SEARCH\na = 1\n=======\na = 2\n>>>>>>> REPLACE\n"
        "<<<<<<< SEARCH\nb = 1\n=======\nb = 2\n>>>>>>> REPLACE\n```\n"
        "other.py\n```\n<<<<<<< SEARCH\nc = 1\n=======\n>>>>>>> REPLACE\n```\n"
    )
    parsed = parse_edits(text, "train_gpt.py")
    assert [(h.index, h.path, h.search, h.replace) for h in parsed.hunks] == [
        (0, "model.py", "a = 1\n", "a = 2\n"),
        (1, "model.py", "b = 1\n", "b = 2\n"),
        (2, "other.py", "c = 1\n", ""),
    ]
    assert parsed.rationale == ""


@pytest.mark.parametrize(
    "text",
    [
        "```python\nsrc/model.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```",  # path inside the fence
        "```python src/model.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```",  # path in the info string
        "```python:src/model.py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```",
        "**src/model.py**\n```py\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n```",
        "File: `./src/model.py`\n\n~~~\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n~~~",
        "### src/model.py\n```\n<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE",  # missing closing fence
        "src/model.py\n```diff\n<<<<< SEARCH\na\n=====\nb\n>>>>> REPLACE\n````",  # 5 marks, wrong closing fence
        "src/model.py\n```text\n<<<<<<<<< SEARCH\na\n=========\nb\n>>>>>>>>> REPLACE\n```",  # 9 marks
    ],
)
def test_parse_path_and_fence_variants(text: str) -> None:
    parsed = parse_edits(text, "train_gpt.py")
    assert parsed.hunks == (Hunk(0, "src/model.py", "a\n", "b\n"),)
    assert parsed.rationale == ""


def test_parse_sentence_before_block_is_rationale_not_path() -> None:
    text = "Here is the fix for the learning rate:\n" + block("a\n", "b\n", path=None)
    parsed = parse_edits(text, "train_gpt.py")
    assert parsed.hunks[0].path == "train_gpt.py"
    assert parsed.rationale == "Here is the fix for the learning rate:"


def test_parse_empty_search_means_create() -> None:
    (h,) = parse_edits(block("", "print('hi')\n"), "x.py").hunks
    assert (h.search, h.replace, h.mode) == ("", "print('hi')\n", "create")
    (h,) = parse_edits(block("\n", "print('hi')\n"), "x.py").hunks  # a blank line only counts as empty too
    assert (h.search, h.mode) == ("", "create")


def test_parse_keeps_blank_and_marker_like_content_lines() -> None:
    text = block("x = 1\n\n    y = '=' * 7\n", "x = 2\n\n    y = '=' * 7\n")
    (h,) = parse_edits(text, "x.py").hunks
    assert h.search == "x = 1\n\n    y = '=' * 7\n"


def test_parse_unified_diff_into_hunks() -> None:
    text = (
        "Two changes.\n\n```diff\ndiff --git a/train_gpt.py b/train_gpt.py\nindex 1..2 100644\n"
        "--- a/train_gpt.py\n+++ b/train_gpt.py\n"
        "@@ -6,4 +6,4 @@ def get_lr(it):\n"
        " def get_lr(it):\n"
        "     if it < args.warmup_iters:\n"
        "-        return args.learning_rate * (it + 1) / args.warmup_iters\n"
        "+        return args.learning_rate * it / args.warmup_iters\n"
        "     return args.learning_rate\n"
        "@@ -19,3 +19,3 @@\n"
        "         x = self.c_fc(x)\n"
        "-        x = F.gelu(x)\n"
        "+        x = F.relu(x).square()\n"
        "\n"
        "--- /dev/null\n+++ b/notes.txt\n@@ -0,0 +1,2 @@\n+hello\n+world\n"
        "```\nDone.\n"
    )
    parsed = parse_edits(text, "default.py")
    assert [h.path for h in parsed.hunks] == ["train_gpt.py", "train_gpt.py", "notes.txt"]
    h0, h1, h2 = parsed.hunks
    assert h0.search == (
        "def get_lr(it):\n    if it < args.warmup_iters:\n"
        "        return args.learning_rate * (it + 1) / args.warmup_iters\n    return args.learning_rate\n"
    )
    assert h0.replace == (
        "def get_lr(it):\n    if it < args.warmup_iters:\n"
        "        return args.learning_rate * it / args.warmup_iters\n    return args.learning_rate\n"
    )
    assert (h1.search, h1.replace) == (
        "        x = self.c_fc(x)\n        x = F.gelu(x)\n",
        "        x = self.c_fc(x)\n        x = F.relu(x).square()\n",
    )
    assert (h2.search, h2.replace) == ("", "hello\nworld\n")
    assert parsed.rationale == "Two changes.\n\nDone."
    result = apply_to_files({"train_gpt.py": SCRIPT}, parsed.hunks)
    assert "it / args.warmup_iters" in result["train_gpt.py"] and "F.relu(x).square()" in result["train_gpt.py"]
    assert result["notes.txt"] == "hello\nworld\n"


def test_parse_loose_diff_without_file_headers_uses_default_path() -> None:
    text = "Change:\n@@\n a = 1\n-b = 2\n+b = 3\n c = 4\n"
    parsed = parse_edits(text, "train_gpt.py")
    assert parsed.hunks == (Hunk(0, "train_gpt.py", "a = 1\nb = 2\nc = 4\n", "a = 1\nb = 3\nc = 4\n"),)
    assert parsed.rationale == "Change:"


def test_parse_code_snippet_in_rationale_keeps_its_fences() -> None:
    text = "Like this:\n\n```python\nx = F.relu(x)\n```\n\nThe edit:\n" + block("x = F.gelu(x)\n", "x = F.relu(x)\n")
    parsed = parse_edits(text, "train_gpt.py")
    assert parsed.rationale == "Like this:\n\n```python\nx = F.relu(x)\n```\n\nThe edit:"
    assert len(parsed.hunks) == 1


def test_parse_diff_hunk_without_context_is_refused() -> None:
    text = "--- a/x.py\n+++ b/x.py\n@@ -10,0 +11,1 @@\n+added = True\n"
    with pytest.raises(EditParseError, match="no context lines"):
        parse_edits(text, "x.py")


@pytest.mark.parametrize("text", ["", "   \n\n", "I think the model is fine as it is.", "```python\nx = 1\n```"])
def test_parse_no_blocks_is_an_error_that_shows_the_format(text: str) -> None:
    with pytest.raises(EditParseError, match="<<<<<<< SEARCH"):
        parse_edits(text, "x.py")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n", "Block 1.*no '=======' line"),
        ("<<<<<<< SEARCH\na\n=======\nb\n", "Block 1.*cut off.*'>>>>>>> REPLACE'"),
        ("<<<<<<< SEARCH\na\n", "Block 1.*cut off"),
        (block("a\n", "b\n") + "<<<<<<< SEARCH\nc\n=======\nd\n<<<<<<< SEARCH\n", "Block 2.*not closed"),
        ("a\n=======\nb\n>>>>>>> REPLACE\n", "outside any block.*missing its '<<<<<<< SEARCH'"),
    ],
)
def test_parse_malformed_block_says_which_and_how_to_fix(text: str, expected: str) -> None:
    with pytest.raises(EditParseError, match=expected):
        parse_edits(text, "x.py")


# ---------------------------------------------------------------------------------------------------------
# Applying


def test_apply_exact() -> None:
    result = apply_hunks(SCRIPT, [hunk("        x = F.gelu(x)\n", "        x = F.relu(x).square()\n")])
    assert result.text == SCRIPT.replace("F.gelu(x)", "F.relu(x).square()")
    (m,) = result.matches
    assert (m.hunk_index, m.kind, m.start_line, m.end_line, m.similarity) == (0, "exact", 20, 20, 1.0)


def test_apply_tolerates_trailing_whitespace_writes_replace_as_given_and_keeps_crlf() -> None:
    source = SCRIPT.replace("\n", "\r\n")
    h = hunk(
        "    def forward(self, x):   \n        x = self.c_fc(x)\t\n",
        "    def forward(self, x):\n        x = self.c_fc(x) * 2  \n",
    )
    result = apply_hunks(source, [h])
    assert result.matches[0].kind == "whitespace"
    # where it matches is tolerant; what it writes is REPLACE's text, trailing spaces included
    assert result.text == source.replace("x = self.c_fc(x)\r\n", "x = self.c_fc(x) * 2  \r\n")


@pytest.mark.parametrize("shift", ["dedent", "indent"])
def test_apply_uniform_indentation_shift_reindents_the_replacement(shift: str) -> None:
    search = "def forward(self, x):\n    x = self.c_fc(x)\n    x = F.gelu(x)\n"
    replace = "def forward(self, x):\n    x = self.c_fc(x)\n    if True:\n        x = F.gelu(x)\n"
    if shift == "indent":  # the model indented one level too deep
        search = "".join("        " + line + "\n" for line in search.splitlines())
        replace = "".join("        " + line + "\n" for line in replace.splitlines())
    result = apply_hunks(SCRIPT, [hunk(search, replace)])
    assert result.matches[0].kind == "whitespace"
    assert result.text == SCRIPT.replace(
        "        x = F.gelu(x)\n", "        if True:\n            x = F.gelu(x)\n"
    )


def test_apply_search_with_extra_blank_edge_lines() -> None:
    h = hunk("\n\n        x = F.gelu(x)\n\n", "\n\n        x = F.silu(x)\n\n")
    result = apply_hunks(SCRIPT, [h])
    assert result.text == SCRIPT.replace("F.gelu", "F.silu")
    assert result.matches[0].kind == "whitespace"


def test_apply_fuzzy_stale_context_line_keeps_the_files_version() -> None:
    search = (
        "        x = self.c_fc(x)\n"
        "        x = F.gelu(x)\n"
        "        x = self.proj(x)\n"  # the model remembers an older name
        "        return x\n"
    )
    replace = search.replace("F.gelu(x)", "F.relu(x).square()")
    result = apply_hunks(SCRIPT, [hunk(search, replace)])
    (m,) = result.matches
    assert m.kind == "fuzzy" and FUZZY_MIN <= m.similarity < 1.0
    assert (m.start_line, m.end_line) == (19, 22)
    assert result.text == SCRIPT.replace("F.gelu(x)", "F.relu(x).square()")


FUZZY_MIN = 0.9


def test_apply_refuses_when_the_file_differs_on_a_line_the_model_changes() -> None:
    search = "        x = self.c_fc(x)\n        x = F.gelu(x, 1)\n        x = self.c_proj(x)\n        return x\n"
    replace = "        x = self.c_fc(x)\n        x = F.silu(x)\n        x = self.c_proj(x)\n        return x\n"
    with pytest.raises(EditApplyError) as info:
        apply_hunks(SCRIPT, [hunk(search, replace)])
    assert info.value.reason == "conflict"
    assert "20" in str(info.value) and "x = F.gelu(x)" in str(info.value)


def test_apply_not_found_names_the_nearest_lines_and_the_first_difference() -> None:
    search = "def get_lr(it):\n    if it <= args.warmup_steps:\n        return 0.0\n"
    with pytest.raises(EditApplyError) as info:
        apply_hunks(SCRIPT, [hunk(search, "x\n", index=2)])
    err = info.value
    assert isinstance(err, HunkApplyError) and err.reason == "not_found" and err.hunk_index == 2
    message = str(err)
    assert message.startswith("Block 3 (train_gpt.py): the SEARCH text was not found")
    assert "SEARCH line 2 is '    if it <= args.warmup_steps:'" in message
    assert "file line 7 is '    if it < args.warmup_iters:'" in message
    assert "    6 | def get_lr(it):" in message
    assert err.nearest[0] == (6, "def get_lr(it):")


def test_apply_not_found_anywhere() -> None:
    with pytest.raises(EditApplyError, match="no block of lines resembles it"):
        apply_hunks(SCRIPT, [hunk("completely = unrelated\nlines = here\n", "")])


def test_apply_ambiguous_names_every_place() -> None:
    source = "a = 1\nb = 2\n\na = 1\nb = 3\n"
    with pytest.raises(EditApplyError) as info:
        apply_hunks(source, [hunk("a = 1\n", "a = 5\n")])
    assert info.value.reason == "ambiguous"
    assert "matches 2 places (line 1, line 4)" in str(info.value)
    # with one more line of context it is unique
    assert apply_hunks(source, [hunk("a = 1\nb = 3\n", "a = 5\nb = 3\n")]).text == "a = 1\nb = 2\n\na = 5\nb = 3\n"


def test_exact_match_with_a_rival_at_another_indentation_is_ambiguous() -> None:
    # A model that dedented its SEARCH would match the module-level copy exactly: refuse rather than guess.
    source = "def main():\n    model = GPT(config)\n\nmodel = GPT(config)\n"
    with pytest.raises(EditApplyError) as info:
        apply_hunks(source, [hunk("model = GPT(config)\n", "model = GPT(config).eval()\n")])
    assert info.value.reason == "ambiguous" and "line 2, line 4" in str(info.value)


def test_apply_fuzzy_near_match_in_two_places_is_ambiguous() -> None:
    source = "def f():\n    alpha = 1\n    beta = 2\n    return alpha\n\n" * 2
    search = "def f():\n    alpha = 1\n    beta = 3\n    return alpha\n"  # stale line; fits both copies
    with pytest.raises(EditApplyError) as info:
        apply_hunks(source, [hunk(search, search.replace("return alpha", "return beta"))])
    assert info.value.reason == "ambiguous"


def test_hunks_apply_in_order_and_nothing_changes_when_a_later_one_fails() -> None:
    good = hunk("        x = F.gelu(x)\n", "        x = F.silu(x)\n", index=0)
    bad = hunk("    print('never there')\n", "", index=1)
    with pytest.raises(EditApplyError, match="Block 2 of 2"):
        apply_hunks(SCRIPT, [good, bad])
    files = {"train_gpt.py": SCRIPT}
    with pytest.raises(EditApplyError):
        apply_to_files(files, [good, bad])
    assert files == {"train_gpt.py": SCRIPT}


def test_second_hunk_invalid_after_the_first_says_which_broke_it() -> None:
    first = hunk(
        "        x = F.gelu(x)\n        x = self.c_proj(x)\n", "        x = F.silu(x)\n        x = self.c_proj(x)\n", 0
    )
    second = hunk("        x = F.gelu(x)\n", "        x = F.relu(x)\n", 1)
    with pytest.raises(EditApplyError) as info:
        apply_hunks(SCRIPT, [first, second])
    err = info.value
    assert err.reason == "stale_after"
    assert "Block 2 (train_gpt.py) no longer applies after block 1 was applied" in str(err)
    assert "Merge blocks 1 and 2" in str(err)


def test_explicit_append_and_create() -> None:
    result = apply_hunks("a = 1", [hunk("", "b = 2\n", mode="append")])  # no final newline before
    assert result.text == "a = 1\nb = 2\n"
    assert (result.matches[0].kind, result.matches[0].start_line, result.matches[0].end_line) == ("append", 2, 1)
    files = apply_to_files({"train_gpt.py": SCRIPT}, [hunk("", "x = 1\n", path="new/helper.py", mode="create")])
    assert files == {"train_gpt.py": SCRIPT, "new/helper.py": "x = 1\n"}


@pytest.mark.parametrize("search", ["", "\n", "   \n\t\n"])
def test_blank_search_never_means_somewhere_at_the_end(search: str) -> None:
    with pytest.raises(EditApplyError, match="empty or holds only blank lines"):
        apply_hunks(SCRIPT, [hunk(search, "x = 1\n")])
    # the parser reads a blank SEARCH as "create a new file": refused on a file that exists
    parsed = parse_edits(block(search, "x = 1\n"), "train_gpt.py")
    assert parsed.hunks[0].mode == "create"
    with pytest.raises(EditApplyError, match="creates a new file, but the file exists"):
        apply_to_files({"train_gpt.py": SCRIPT}, parsed.hunks)
    assert apply_to_files({}, parsed.hunks) == {"train_gpt.py": "x = 1\n"}


def test_edit_at_end_of_file_without_final_newline_keeps_it_so() -> None:
    assert apply_hunks("a\nb\nc", [hunk("b\nc\n", "b\nC\n")]).text == "a\nb\nC"
    assert apply_hunks("a\nb\nc", [hunk("c\n", "")]).text == "a\nb"


def test_elided_context_applies_when_each_part_is_unique() -> None:
    search = "class MLP(nn.Module):\n    ...\n        x = F.gelu(x)\n"
    replace = "class MLP(nn.Module):\n    ...\n        x = F.silu(x)\n"
    result = apply_hunks(SCRIPT, [hunk(search, replace)])
    assert result.text == SCRIPT.replace("F.gelu", "F.silu")
    assert result.matches[0].kind == "fuzzy"
    assert (result.matches[0].start_line, result.matches[0].end_line) == (12, 20)


def test_elided_context_is_refused_when_a_part_fits_several_places() -> None:
    search = "class MLP(nn.Module):\n    # ... existing code ...\n        return x\n"
    source = SCRIPT + "\n\nclass Other:\n    def g(self, x):\n        return x\n"
    with pytest.raises(EditApplyError) as info:
        apply_hunks(source, [hunk(search, search.replace("return x", "return -x"))])
    assert info.value.reason == "ambiguous" and "'...'" in str(info.value)


def test_elided_context_with_a_generic_unchanged_anchor_applies() -> None:
    # "super().__init__()" (the part after '...') occurs only once after the anchor here, but the anchor part
    # "def __init__(self, config):" could also be read as the start of an earlier class; every reading gives the
    # same text because the model changes only the last part.
    source = SCRIPT + "\n\nclass Block(nn.Module):\n    def __init__(self, config):\n        super().__init__()\n"
    source += "        self.ln = nn.LayerNorm(config.n_embd)\n"
    search = "    def __init__(self, config):\n    ...\n        self.ln = nn.LayerNorm(config.n_embd)\n"
    replace = "    def __init__(self, config):\n    ...\n        self.ln = nn.RMSNorm(config.n_embd)\n"
    result = apply_hunks(source, [hunk(search, replace)])
    assert result.text == source.replace("nn.LayerNorm", "nn.RMSNorm")
    assert result.matches[0].start_line == source.splitlines().index("class Block(nn.Module):") + 2


def test_placeholder_only_in_replace_is_refused() -> None:
    search = "    def forward(self, x):\n        x = self.c_fc(x)\n        x = F.gelu(x)\n"
    replace = "    def forward(self, x):\n        # ... existing code ...\n        x = F.silu(x)\n"
    with pytest.raises(EditApplyError) as info:
        apply_hunks(SCRIPT, [hunk(search, replace)])
    assert info.value.reason == "elision"


def test_apply_to_files_several_files_and_path_resolution() -> None:
    files = {"records/micro/record_1/train_gpt.py": SCRIPT, "README.md": "# title\ntext\n"}
    hunks = [
        hunk("        x = F.gelu(x)\n", "        x = F.silu(x)\n", 0, path="train_gpt.py"),  # unique suffix
        hunk("text\n", "better text\n", 1, path="./README.md"),
    ]
    out = apply_to_files(files, hunks)
    assert out["records/micro/record_1/train_gpt.py"] == SCRIPT.replace("gelu", "silu")
    assert out["README.md"] == "# title\nbetter text\n"
    with pytest.raises(EditApplyError, match="not one of the files"):
        apply_to_files(files, [hunk("a\n", "b\n", path="missing.py")])


def test_large_file_fuzzy_and_missing_blocks_work() -> None:
    # A 3,000-line file and a 20-line block: correctness only (speed is measured in bench/edit_apply.py).
    lines = [f"    value_{n} = compute(value_{n - 1}, {n % 7})" for n in range(3000)]
    source = "\n".join(lines) + "\n"
    window = lines[1500:1520]
    stale = list(window)
    stale[10] = stale[10].replace("compute", "compute_old")
    search = "".join(line + "\n" for line in stale)
    replace = search.replace("value_1505 = compute", "value_1505 = faster")
    result = apply_hunks(source, [hunk(search, replace)])
    assert result.matches[0].kind == "fuzzy"
    assert result.text == source.replace("value_1505 = compute", "value_1505 = faster")
    with pytest.raises(EditApplyError):
        apply_hunks(source, [hunk("".join(f"other_{n} = 1\n" for n in range(20)), "")])


# ---------------------------------------------------------------------------------------------------------
# Preview and feedback


def test_hunk_preview_shows_the_change_at_its_match() -> None:
    h = hunk("    x = self.c_fc(x)\n    x = F.gelu(x)\n", "    x = self.c_fc(x)\n    x = F.silu(x)\n    x = x * 2\n")
    assert hunk_preview(SCRIPT, h) == [
        "         x = self.c_fc(x)",
        "-        x = F.gelu(x)",
        "+        x = F.silu(x)",
        "+        x = x * 2",
    ]
    assert hunk_preview(SCRIPT, hunk("", "tail = 1\n", mode="append")) == ["+tail = 1"]
    with pytest.raises(EditApplyError):
        hunk_preview(SCRIPT, hunk("nope\nnot here\n", ""))


def test_format_apply_error_for_model() -> None:
    with pytest.raises(EditApplyError) as info:
        apply_hunks(SCRIPT, [hunk("def get_lr(it):\n    if it <= warm:\n", "x\n")])
    feedback = format_apply_error_for_model(info.value)
    assert feedback.startswith("Your edit could not be applied, so none of its blocks were applied")
    assert "    6 | def get_lr(it):" in feedback
    assert "Reply with corrected SEARCH/REPLACE blocks" in feedback
    plain = format_apply_error_for_model(EditApplyError("something odd"))
    assert "something odd" in plain and "Reply with corrected" in plain


# ---------------------------------------------------------------------------------------------------------
# Blocks from two texts (round trip)

ROUND_TRIP_PAIRS = {
    "one_line": (SCRIPT, SCRIPT.replace("F.gelu(x)", "F.silu(x)")),
    "insert_at_start": (SCRIPT, "#!/usr/bin/env python\n" + SCRIPT),
    "append_at_end": (SCRIPT, SCRIPT + "\n\nif __name__ == '__main__':\n    main()\n"),
    "delete_function": (SCRIPT, SCRIPT.replace(SCRIPT[SCRIPT.index("def get_lr") : SCRIPT.index("class MLP")], "")),
    "repeated_lines_need_context": (
        "x = 1\ny = 2\nx = 1\ny = 2\nx = 1\ny = 2\n",
        "x = 1\ny = 2\nx = 1\ny = 3\nx = 1\ny = 2\n",
    ),
    "insert_between_blank_lines": ("a\n\n\n\nb\n\n\n\nc\n", "a\n\n\n\nb\n\nnew\n\nc\n"),
    "many_changes": (SCRIPT, SCRIPT.replace("x", "y").replace("args.", "cfg.")),
    "from_empty": ("", "print('new file')\n"),
    "to_empty": ("a\nb\n", ""),
    "crlf": (SCRIPT.replace("\n", "\r\n"), SCRIPT.replace("\n", "\r\n").replace("gelu", "silu")),
    "no_final_newline": ("a\nb\nc", "a\nB\nc"),
    "duplicate_created_by_earlier_block": ("p\nq\nz\nr\nq\ns\n", "p\nr\nq\nz\nr\nq\nS\n"),
    "same_line_at_another_indentation": ("def f():\n    x = 1\n\nx = 1\n", "def f():\n    x = 1\n\nx = 2\n"),
}


def assert_round_trip(old: str, new: str, context_lines: int = 1) -> str:
    text = blocks_from_texts(old, new, "train_gpt.py", context_lines=context_lines)
    parsed = parse_edits(text, "train_gpt.py")
    for h in parsed.hunks:
        assert h.path == "train_gpt.py"
        if h.search:
            lines = old.replace("\r\n", "\n").split("\n")
            search = h.search.split("\n")[:-1]
            count = sum(lines[i : i + len(search)] == search for i in range(len(lines)))
            assert count == 1, f"SEARCH not unique in old: {h.search!r}"
    assert apply_hunks(old, parsed.hunks).text == new
    return text


@pytest.mark.parametrize("name", sorted(ROUND_TRIP_PAIRS))
@pytest.mark.parametrize("context_lines", [0, 1, 3])
def test_blocks_from_texts_round_trip(name: str, context_lines: int) -> None:
    old, new = ROUND_TRIP_PAIRS[name]
    assert_round_trip(old, new, context_lines)


def test_blocks_from_texts_one_block_per_region_and_equal_texts() -> None:
    new = SCRIPT.replace("import math", "import math as m").replace('print("done")', 'print("ok")')
    text = assert_round_trip(SCRIPT, new)
    assert text.count("<<<<<<< SEARCH") == 2
    assert text.startswith("train_gpt.py\n```python\n<<<<<<< SEARCH\nimport math\n\n=======\nimport math as m\n")
    assert blocks_from_texts(SCRIPT, SCRIPT, "train_gpt.py") == ""


@pytest.mark.parametrize("seed", range(25))
def test_blocks_from_texts_round_trip_random_edits(seed: int) -> None:
    rng = random.Random(seed)
    vocab = ["x = 1", "y = 2", "", "    return x", "def f():", "pass", "# note", "z = x + y"]
    old_lines = [rng.choice(vocab) for _ in range(rng.randint(5, 60))]
    new_lines = list(old_lines)
    for _ in range(rng.randint(1, 6)):
        op = rng.choice(["insert", "delete", "change"])
        k = rng.randrange(len(new_lines) + (op == "insert")) if new_lines else 0
        if op == "insert" or not new_lines:
            new_lines.insert(k, rng.choice(vocab + ["w = 9", "    y += 1"]))
        elif op == "delete":
            del new_lines[k]
        else:
            new_lines[k] = rng.choice(vocab + ["q = 0"])
    old = "\n".join(old_lines) + "\n"
    new = "\n".join(new_lines) + "\n"
    if old != new:
        assert_round_trip(old, new, context_lines=rng.choice([0, 1, 2]))


@pytest.mark.parametrize("seed", range(8))
def test_never_applies_in_the_wrong_place(seed: int) -> None:
    """Drifted hunks against repetitive files: each one applies where it was taken from, or is refused."""
    vocab = ["x = 1", "y = x + 1", "return x", "if x:", "pass", "z = f(x, y)", "", "# comment", "total += i"]
    applied = 0
    for case in range(60):
        rng = random.Random(seed * 1000 + case)
        lines = [" " * rng.choice([0, 4, 8]) + rng.choice(vocab) for _ in range(rng.randint(10, 60))]
        n = rng.randint(2, 7)
        at = rng.randrange(len(lines) - n + 1)
        search = lines[at : at + n]
        if not any(line.strip() for line in search):
            continue
        changed = rng.randrange(n)
        replace = list(search)
        replace[changed] = f"    changed_{case} = 1"
        expected = lines[:at] + replace + lines[at + n :]
        drift = rng.choice(["none", "stale", "trailing", "indent"])
        if drift == "stale":
            context = [k for k in range(n) if k != changed and search[k].strip()]
            if context:
                k = rng.choice(context)
                search = search[:k] + [search[k] + "  # old"] + search[k + 1 :]
                replace = replace[:k] + [search[k]] + replace[k + 1 :]
        elif drift == "trailing":
            search = [line + " " if line.strip() else line for line in search]
        elif drift == "indent":
            search = ["    " + line if line.strip() else line for line in search]
            replace = ["    " + line if line.strip() else line for line in replace]
        try:
            result = apply_hunks("\n".join(lines) + "\n", [hunk("\n".join(search) + "\n", "\n".join(replace) + "\n")])
        except EditApplyError:
            continue
        applied += 1
        # Non-exact tiers compare blank lines without their whitespace; nothing else may differ.
        got = [line if line.strip() else "" for line in result.text.split("\n")[:-1]]
        assert got == [line if line.strip() else "" for line in expected], (drift, search, replace)
    assert applied >= 30
