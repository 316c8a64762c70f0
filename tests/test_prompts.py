"""Prompt construction: content, rules, round trip of the rendered files, truncation within the budget."""

from __future__ import annotations

from copilot.core.llm import prompts
from copilot.core.llm.prompts import AttemptSummary, PromptContext, build_messages, files_from_messages, retry_message

SCRIPT = 'import os\n\nLR = 0.001\nprint(f"step:{step} val_loss:{loss:.4f}")\n'


def ctx(**kw) -> PromptContext:
    args = dict(track="micro", record=3, target_val_loss=3.28, script_path="train_gpt.py", script_text=SCRIPT,
                record_time_s=181.2, next_record_time_s=150.0)
    args.update(kw)
    return PromptContext(**args)


def test_system_message_states_task_rules_and_format() -> None:
    system, user = build_messages(ctx())
    assert system["role"] == "system" and user["role"] == "user"
    text = system["content"]
    for needle in ("3.28", "shortest", "train_gpt.py", "log print", "data paths", "validation tokens",
                   "validation routine", "timer", "runnable", "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE",
                   "exactly"):
        assert needle in text, needle


def test_user_message_has_facts_hints_attempts_feedback_files_and_instruction_in_order() -> None:
    attempts = [
        AttemptSummary("abcdef1234567", "raise LR", "reached_target", 160.5, 3.2791, ""),
        AttemptSummary("1234567abcdef", "bigger batch", "crashed", None, None, "Traceback\nRuntimeError: OOM"),
    ]
    user = build_messages(ctx(
        hints={2: "Use a warmup.", 1: "lr = warmup(step)"},
        attempts=attempts,
        feedback="hunk 1: keep the batch size",
        instruction="try a cosine schedule",
        companion_files={"utils.py": "def f():\n    pass\n"},
    ))[1]["content"]
    order = ["record 3", "181 s", "150 s", "Hint level 1", "lr = warmup(step)", "Hint level 2", "Use a warmup.",
             "abcdef1234", "reached_target", "160 s", "3.2791", "RuntimeError: OOM", "keep the batch size",
             "### File: `train_gpt.py`", "### File: `utils.py`", "try a cosine schedule"]
    positions = [user.index(n) for n in order]
    assert positions == sorted(positions)
    assert "1234567abcdef" not in user  # commits shortened


def test_no_optional_sections_when_empty() -> None:
    user = build_messages(ctx(record_time_s=None, next_record_time_s=None))[1]["content"]
    assert "Hint" not in user and "attempts" not in user and "feedback" not in user
    assert "Propose your next improvement" in user


def test_rendered_files_read_back_exactly_even_with_backticks_inside() -> None:
    tricky = 'doc = """\n```python\nx = 1\n```\n"""\nq = "````"\n'
    files = {"train_gpt.py": tricky, "empty.txt": "", "no_newline.py": "x = 1"}
    messages = build_messages(ctx(script_text=tricky, companion_files={"empty.txt": "", "no_newline.py": "x = 1"}))
    back = files_from_messages(messages)
    assert back["train_gpt.py"] == tricky and back["empty.txt"] == "" and back["no_newline.py"] == "x = 1\n"
    assert set(back) == set(files)


def test_files_come_from_the_last_user_message_holding_files() -> None:
    messages = build_messages(ctx())
    messages += [{"role": "assistant", "content": prompts.render_file("train_gpt.py", "fake")},
                 retry_message("no blocks")]
    assert files_from_messages(messages) == {"train_gpt.py": SCRIPT}


def test_error_tail_keeps_the_end_and_attempts_are_bounded() -> None:
    long_tail = "noise line\n" * 1000 + "FinalError: the real cause"
    attempts = [AttemptSummary(f"c{i:09d}", f"try {i}", "above_target", None, 3.5, "") for i in range(8)]
    attempts.append(AttemptSummary("cfinal0000", "last", "crashed", None, None, long_tail))
    user = build_messages(ctx(attempts=attempts))[1]["content"]
    assert "FinalError: the real cause" in user and "earlier characters truncated" in user
    assert user.count("noise line") < 200
    assert "older attempt(s) not shown" in user and "c000000003" not in user and "c000000004" in user


def test_prompt_stays_within_budget_but_never_cuts_the_script() -> None:
    script = "".join(f"x{i} = {i}\n" for i in range(3000))  # ~30k chars
    big = dict(
        hints={1: "p" * 50_000, 2: "d" * 50_000, 3: "m" * 50_000},
        attempts=[AttemptSummary(f"c{i}", "t", "crashed", None, None, "e" * 10_000) for i in range(10)],
        companion_files={"data.py": "z" * 100_000},
        instruction="i" * 10_000,
        feedback="f" * 10_000,
    )
    messages = build_messages(ctx(script_text=script, max_prompt_chars=60_000, **big))
    total = sum(len(m["content"]) for m in messages)
    assert total <= 60_000
    assert files_from_messages(messages)["train_gpt.py"] == script
    user = messages[1]["content"]
    assert "truncated" in user and "not shown: 100,000 characters" in user
    generous = build_messages(ctx(script_text=script, **big))
    assert sum(len(m["content"]) for m in generous) > total  # the budget really cut something


def test_feedback_as_a_list_of_notes() -> None:
    user = build_messages(ctx(feedback=["hunk 0: too risky", "hunk 2: keep it"]))[1]["content"]
    assert "- hunk 0: too risky" in user and "- hunk 2: keep it" in user


def test_retry_message_carries_the_error() -> None:
    msg = retry_message("Block 2: SEARCH not found; nearest line 14: LR = 0.001")
    assert msg["role"] == "user" and "Block 2: SEARCH not found" in msg["content"]
    assert "SEARCH/REPLACE" in msg["content"]
    long = retry_message("e" * 50_000)["content"]
    assert len(long) < 10_000 and "truncated" in long
