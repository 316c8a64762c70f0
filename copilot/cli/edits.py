"""`speedcopilot edits apply FILE ANSWER`: apply a saved model answer to a file, through the app's own path.

For scripts, CI and batch evaluation of saved answers: parse (any format) -> hunks -> apply all or nothing ->
check what is written -> integrity guard, exactly as the app does before it commits. Nothing named in the
answer is ever run, and nothing but FILE is written (atomically, keeping its permissions).

Exit codes: 0 applied; 10 rejected (FILE byte-identical, one plain-words reason on stderr); 20 applied, with
guard findings the app would show before a run (on stderr). Any other code is a bug.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from copilot.core.edits.model import FORMATS

EXIT_APPLIED = 0
EXIT_REJECTED = 10
EXIT_GUARD = 20


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "edits", help="apply saved model answers to files (scripts, CI, batch evaluation)",
        description="Work with model answers outside the app, through the same edit engine.",
    )
    sub = parser.add_subparsers(dest="edits_command", metavar="ACTION", required=True)
    apply = sub.add_parser(
        "apply", help="apply ANSWER to FILE in place (exit 0 applied, 10 rejected, 20 guard findings)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    apply.add_argument("file", type=Path, metavar="FILE", help="the file to edit in place")
    apply.add_argument("answer", metavar="ANSWER",
                       help="the model's answer: a text file, a saved chat-completion JSON, or - for stdin")
    apply.add_argument("--format", default="auto", choices=["auto", *FORMATS],
                       help="what a bare fenced block means (whole: the whole file); any format is recognised")
    apply.add_argument("--track", default="nanogpt", choices=["micro", "nanogpt"],
                       help="whose integrity rules the guard applies (default nanogpt)")
    apply.add_argument("--no-guard", action="store_true", help="skip the integrity guard")
    apply.add_argument("--finish-reason", default=None,
                       help="why the model stopped, if the answer file does not say (length = cut off)")
    apply.add_argument("--max-line-chars", type=_positive_int, default=None,
                       help="longest line an answer may write (default: edit_max_line_chars, 1000)")
    apply.add_argument("--json", action="store_true", help="print the verdict as JSON on stdout")
    apply.set_defaults(func=run_apply)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


class _Rejected(Exception):
    """Internal: the inputs cannot be used (missing, unreadable, not UTF-8)."""


def _read_text(path: Path | None, what: str) -> str:
    try:
        raw = sys.stdin.buffer.read() if path is None else path.read_bytes()
    except FileNotFoundError:
        raise _Rejected(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise _Rejected(f"{what} {path} is a folder, not a file") from None
    except OSError as exc:
        raise _Rejected(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = path or "(stdin)"
        raise _Rejected(f"{what} {where} is not valid UTF-8 (byte {exc.start}); nothing was changed") from None


def _load_answer(text: str, finish_reason: str | None) -> Any:
    """A plain answer, or a saved chat completion ({"choices": [{"message": …, "finish_reason": …}]} or
    {"text": …, "tool_calls": […], "finish_reason": …})."""
    from copilot.core.edits import ModelAnswer, ToolCall

    data: Any = None
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
    if not isinstance(data, dict) or not ({"choices", "text", "content", "tool_calls"} & set(data)):
        return ModelAnswer(text, (), finish_reason or "stop")
    choice = (data.get("choices") or [{}])[0] if "choices" in data else data
    message = choice.get("message", choice) if isinstance(choice, dict) else {}
    content = message.get("content") if isinstance(message, dict) else None
    content = content if isinstance(content, str) else data.get("text") if isinstance(data.get("text"), str) else ""
    calls = []
    for call in (message.get("tool_calls") if isinstance(message, dict) else None) or []:
        function = call.get("function", call) if isinstance(call, dict) else {}
        arguments = function.get("arguments", "")
        calls.append(ToolCall(name=str(function.get("name", "")),
                              arguments=arguments if isinstance(arguments, str) else json.dumps(arguments)))
    finish = finish_reason or (choice.get("finish_reason") if isinstance(choice, dict) else None) or "stop"
    return ModelAnswer(content, tuple(calls), finish)


def run_apply(args: argparse.Namespace) -> int:
    from copilot.core import edits

    path: Path = args.file
    name = path.name
    try:
        original = _read_text(path, "FILE")
        answer = _load_answer(_read_text(None if args.answer == "-" else Path(args.answer), "ANSWER"),
                              args.finish_reason)
    except _Rejected as exc:
        return _report(args, EXIT_REJECTED, {"status": "rejected", "error": str(exc)}, str(exc))
    limits = edits.EditLimits(max_line_chars=args.max_line_chars or _configured_line_limit())
    guard = None if args.no_guard else edits.GuardCheck(base=original, path=name, track=args.track)
    verdict = edits.evaluate_answer(answer, {name: original}, default_path=name, preferred=args.format,
                                    limits=limits, guard=guard)
    summary = _summary(verdict)
    if not verdict.ok or verdict.truncated:
        reason = verdict.error or ("the answer was cut off by the token limit; a cut-off answer is never applied "
                                   "automatically")
        return _report(args, EXIT_REJECTED, {**summary, "status": "rejected", "error": reason}, reason)
    others = sorted(set(verdict.changed) - {name})
    if others:
        reason = f"the answer edits {', '.join(others)}; only {name} (FILE) can be edited by this command"
        return _report(args, EXIT_REJECTED, {**summary, "status": "rejected", "error": reason}, reason)
    new_text = verdict.files[name]
    if new_text != original:
        try:
            _write_atomically(path, new_text)
        except OSError as exc:
            reason = f"cannot write {path}: {exc.strerror}; it is unchanged"
            return _report(args, EXIT_REJECTED, {**summary, "status": "rejected", "error": reason}, reason)
    findings = _findings(verdict.guard, name)
    if verdict.blocking:
        lines = [f"{path}:{f['line']}: {f['rule']}: {f['reason']}" for f in findings if f["severity"] == "block"]
        if not lines:
            lines = [f"{path}: {verdict.guard.summary()}"]
        return _report(args, EXIT_GUARD, {**summary, "status": "applied_with_findings"}, "\n".join(lines), findings)
    notes = [f"note: {path}:{f['line']}: {f['rule']}: {f['reason']}" for f in findings]
    return _report(args, EXIT_APPLIED, {**summary, "status": "applied"}, "\n".join(notes), findings)


def _configured_line_limit() -> int:
    from copilot.config import load_settings

    try:
        return load_settings().edit_max_line_chars
    except Exception:  # an unreadable config must not change what this command decides
        return 1000


def _summary(verdict: Any) -> dict[str, Any]:
    matches = {m.hunk_index: m for m in verdict.matches}
    return {
        "format": verdict.format,
        "truncated": verdict.truncated,
        "hunks": [
            {"index": h.index, "path": h.path, "mode": h.mode,
             "match": matches[h.index].kind if h.index in matches else None,
             "lines": [matches[h.index].start_line, matches[h.index].end_line] if h.index in matches else None}
            for h in verdict.hunks
        ],
    }


def _findings(report: Any, name: str) -> list[dict[str, Any]]:
    if report is None:
        return []
    out = []
    for finding in getattr(report, "findings", []):
        data = finding.to_dict() if hasattr(finding, "to_dict") else dict(vars(finding))
        data.setdefault("rule", data.get("kind", "guard"))
        data.setdefault("reason", data.get("text", ""))
        data.setdefault("line", 0)
        data["severity"] = "block" if data.get("severity") == "block" else "note"
        data["file"] = name
        out.append(data)
    return out


def _write_atomically(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _report(args: argparse.Namespace, code: int, payload: dict[str, Any], message: str,
            findings: list[dict[str, Any]] | None = None) -> int:
    if args.json:
        payload = {**payload, "exit_code": code, "file": str(args.file), "guard": findings or []}
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    if message:
        if code == EXIT_REJECTED:  # one plain reason; the full text (nearest lines, hints) is in --json
            message = "speedcopilot: rejected: " + message.strip().splitlines()[0]
        print(message, file=sys.stderr)
    return code
