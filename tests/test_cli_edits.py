"""`speedcopilot edits apply FILE ANSWER`, run as a script or CI job runs it (the console script, subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from copilot.core.edits import blocks_from_texts
from copilot.resources import records_dir

EXE = shutil.which("speedcopilot") or str(Path(sys.executable).parent / "speedcopilot")
MICRO = records_dir() / "micro"


def edits(*args: str | Path, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, "edits", "apply", *map(str, args)], capture_output=True, cwd=cwd, input=stdin,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "train_gpt.py"
    path.write_bytes((MICRO / "record_1" / "train_gpt.py").read_bytes())
    path.chmod(0o640)
    return path


def _answer(tmp_path: Path, text: str, name: str = "answer.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_real_record_transition_applies_byte_exactly_and_writes_only_file(tmp_path: Path, script: Path) -> None:
    old, new = script.read_text(), (MICRO / "record_2" / "train_gpt.py").read_text()
    answer = _answer(tmp_path, "Muon for the hidden matrices.\n\n" + blocks_from_texts(old, new, script.name))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = edits(script, answer, "--track", "micro")
    assert result.returncode == 0, result.stderr
    assert script.read_bytes() == (MICRO / "record_2" / "train_gpt.py").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temp or backup files left behind
    assert script.stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    "answer",
    [
        "no blocks at all, just prose",
        "train_gpt.py; rm -rf ~\n```\n<<<<<<< SEARCH\nimport os\n=======\nimport os, sys\n>>>>>>> REPLACE\n```\n",
        "../evil.py\n```\n<<<<<<< SEARCH\n=======\nprint('pwned')\n>>>>>>> REPLACE\n```\n",
        "```\n<<<<<<< SEARCH\nimport os\n=======\nimport os\x00\n>>>>>>> REPLACE\n```\n",
        "```\n<<<<<<< SEARCH\nimport os\n=======\nimport os\n=======\nimport sys\n>>>>>>> REPLACE\n```\n",
        "```\n<<<<<<< SEARCH\nimport os\n=======\nimport os (\n>>>>>>> REPLACE\n```\n",
        "```\n<<<<<<< SEARCH\n\n=======\nimport evil\n>>>>>>> REPLACE\n```\n",
    ],
    ids=["prose", "shell-path", "outside", "nul", "conflict-marker", "no-compile", "blank-search"],
)
def test_rejected_answers_exit_10_with_one_line_and_leave_the_file_byte_identical(
    tmp_path: Path, script: Path, answer: str
) -> None:
    before = script.read_bytes()
    result = edits(script, _answer(tmp_path, answer))
    assert result.returncode == 10, result.stderr
    err = result.stderr.decode()
    assert err.startswith("speedcopilot: rejected: ") and err.count("\n") == 1 and "Traceback" not in err
    assert script.read_bytes() == before
    assert not (tmp_path.parent / "evil.py").exists()


def test_invalid_utf8_and_missing_files_are_rejections(tmp_path: Path, script: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"```\n<<<<<<< SEARCH\nimport os\n=======\nimport \xff\n>>>>>>> REPLACE\n```\n")
    result = edits(script, bad)
    assert result.returncode == 10 and b"not valid UTF-8" in result.stderr
    assert edits(tmp_path / "missing.py", bad).returncode == 10
    assert edits(script, tmp_path / "missing.txt").returncode == 10


def test_guard_findings_exit_20_with_the_findings_on_stderr(tmp_path: Path, script: Path) -> None:
    text = script.read_text()
    line = next(l for l in text.splitlines() if "print(" in l and "val_loss:{val_loss" in l)
    hacked = line.replace("val_loss:{val_loss", "val_loss:{0.5 * val_loss", 1)
    answer = _answer(tmp_path, f"```\n<<<<<<< SEARCH\n{line}\n=======\n{hacked}\n>>>>>>> REPLACE\n```\n")
    result = edits(script, answer, "--track", "micro")
    assert result.returncode == 20, result.stderr
    assert str(script).encode() in result.stderr
    assert hacked in script.read_text()  # applied, as the app commits it: the findings come before a run
    result = edits(script, _answer(tmp_path, "x", "noop.txt"), "--no-guard")
    assert result.returncode == 10


def test_json_verdict_and_stdin(tmp_path: Path, script: Path) -> None:
    old, new = script.read_text(), (MICRO / "record_2" / "train_gpt.py").read_text()
    body = blocks_from_texts(old, new, script.name).encode()
    result = edits(script, "-", "--json", stdin=body)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["status"] == "applied" and data["exit_code"] == 0 and data["format"] == "search_replace"
    assert all(h["match"] == "exact" for h in data["hunks"])


def test_a_saved_completion_with_tool_calls_and_a_cut_off_one(tmp_path: Path, script: Path) -> None:
    call = {"type": "function", "function": {"name": "edit_file", "arguments": json.dumps(
        {"path": "train_gpt.py", "old_string": "import math\n", "new_string": "import math\nimport random\n"})}}
    saved = {"choices": [{"message": {"role": "assistant", "content": "Add an import.", "tool_calls": [call]},
                          "finish_reason": "tool_calls"}]}
    result = edits(script, _answer(tmp_path, json.dumps(saved), "saved.json"), "--format", "tools")
    assert result.returncode == 0, result.stderr
    assert "import math\nimport random\n" in script.read_text()
    saved["choices"][0]["finish_reason"] = "length"
    before = script.read_bytes()
    result = edits(script, _answer(tmp_path, json.dumps(saved), "cut.json"))
    assert result.returncode == 10 and b"cut off by the token limit" in result.stderr
    assert script.read_bytes() == before


def test_an_answer_that_edits_another_file_is_rejected(tmp_path: Path, script: Path) -> None:
    answer = _answer(tmp_path, "helper.py\n```\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n```\n")
    result = edits(script, answer)
    assert result.returncode == 10 and b"only train_gpt.py" in result.stderr
    assert not (tmp_path / "helper.py").exists()
