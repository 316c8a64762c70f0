"""Ask a provider for a suggestion, and send unusable answers back to it (bounded retries).

Each answer goes through the one edit verdict (`edits.evaluate_answer`: parse in any format, apply all or
nothing, check what would be written, confine paths, run the guard); nothing is written. On a rejected answer,
the answer and a message explaining the problem are appended to the conversation and the provider is asked
again, at most `max_retries` times.

An answer cut off by the token limit (`finish_reason == "length"`) is never applied automatically: with
`allow_truncated=False` (autonomous mode) it is asked again with a doubled output limit and a request to be
shorter; with `allow_truncated=True` (a human reviews) its complete blocks are returned, marked truncated.

Offline providers (oracle, replay) are deterministic or a fixed sequence, so they are never asked again: a
retry would give the same answer, or consume the recorded answer meant for the next suggestion.

Failures carry the usage of every attempt as attributes (`prompt_tokens`, `completion_tokens`, `cost_usd`,
`latency_s`, `completions`, `errors`, `raw_text`), so the session can log what a failed suggestion cost.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from copilot.core import edits
from copilot.core.edits import EditLimits, EditVerdict, GuardCheck, ModelAnswer
from copilot.core.errors import EditApplyError, EditParseError, ProviderError
from copilot.core.llm import prompts
from copilot.core.llm.providers import Completion, Provider

RETRY_NOTICE = "\n\n[the answer could not be applied; asking the model again]\n\n"
MAX_TOKENS_CEILING = 65_536


@dataclass
class SuggestionResult:
    verdict: EditVerdict
    raw_text: str
    completions: list[Completion] = field(default_factory=list)  # every attempt, the usable one last
    errors: list[str] = field(default_factory=list)  # the error texts sent back to the model
    edit_format: str = "search_replace"  # what the model was asked for

    @property
    def parsed(self) -> edits.ParsedEdits:
        v = self.verdict
        return edits.ParsedEdits(rationale=v.rationale, hunks=v.hunks, format=v.format or "", truncated=v.truncated,
                                 dropped=v.dropped)

    @property
    def last(self) -> Completion:
        return self.completions[-1]

    @property
    def attempts(self) -> int:
        return len(self.completions)

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.completions)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.completions)

    @property
    def cost_usd(self) -> float | None:
        return _total_cost(self.completions)

    @property
    def latency_s(self) -> float:
        return sum(c.latency_s for c in self.completions)


def _total_cost(completions: list[Completion]) -> float | None:
    known = [c.cost_usd for c in completions if c.cost_usd is not None]
    return sum(known) if known else None


def _attach(exc: BaseException, completions: list[Completion], errors: list[str], raw_text: str | None) -> None:
    exc.completions = list(completions)  # type: ignore[attr-defined]
    exc.errors = list(errors)  # type: ignore[attr-defined]
    exc.raw_text = raw_text  # type: ignore[attr-defined]
    exc.prompt_tokens = sum(c.prompt_tokens for c in completions)  # type: ignore[attr-defined]
    exc.completion_tokens = sum(c.completion_tokens for c in completions)  # type: ignore[attr-defined]
    exc.cost_usd = _total_cost(completions)  # type: ignore[attr-defined]
    exc.latency_s = sum(c.latency_s for c in completions)  # type: ignore[attr-defined]
    exc.finish_reason = completions[-1].finish_reason if completions else None  # type: ignore[attr-defined]


def answer_of(completion: Completion) -> ModelAnswer:
    return ModelAnswer(completion.text, completion.tool_calls, completion.finish_reason)


@dataclass(frozen=True)
class EditRequest:
    """What the verdict needs besides the answer: the files, where they live, the format asked for, limits and
    the guard's base."""

    files: Mapping[str, str]
    default_path: str
    edit_format: str = "search_replace"
    root: Path | None = None
    limits: EditLimits = field(default_factory=EditLimits)
    guard: GuardCheck | None = None

    def verdict(self, completion: Completion) -> EditVerdict:
        return edits.evaluate_answer(answer_of(completion), self.files, default_path=self.default_path,
                                     preferred=self.edit_format, root=self.root, limits=self.limits,
                                     guard=self.guard)


async def request_suggestion(
    provider: Provider,
    messages: list[dict[str, str]],
    files: Mapping[str, str] | EditRequest,
    default_path: str | None = None,
    max_retries: int = 2,
    on_delta: Callable[[str], None] | None = None,
    *,
    allow_truncated: bool = True,
    deadline_s: float | None = None,
) -> SuggestionResult:
    """`deadline_s` bounds the whole suggestion, every attempt and edit retry included (default: the provider's
    `deadline_s`; None or no such attribute: no bound beyond the provider's own)."""
    if deadline_s is None:
        deadline_s = getattr(provider, "deadline_s", None)
    if not deadline_s:
        return await _attempts(provider, messages, files, default_path, max_retries, on_delta, allow_truncated)
    completions: list[Completion] = []
    deadline = asyncio.timeout(float(deadline_s))
    try:
        async with deadline:
            return await _attempts(provider, messages, files, default_path, max_retries, on_delta, allow_truncated,
                                   completions)
    except TimeoutError:
        if not deadline.expired():
            raise
        error = ProviderError(_deadline_message(provider, float(deadline_s), completions))
        _attach(error, completions, [], completions[-1].text if completions else None)
        raise error from None


def _deadline_message(provider: Any, deadline_s: float, completions: list[Completion]) -> str:
    where = getattr(provider, "host", None) or getattr(provider, "label", None) or "the model endpoint"
    got = (f"{len(completions)} answer(s) came back, none usable" if completions
           else "no complete answer came back: the endpoint may hang, be overloaded, or stream very slowly")
    return (f"No usable suggestion from {where} within the {deadline_s:g} s deadline for one suggestion ({got}). "
            "Try again, raise request_deadline_s in the config, or work offline with --provider oracle.")


async def _attempts(
    provider: Provider,
    messages: list[dict[str, str]],
    files: Mapping[str, str] | EditRequest,
    default_path: str | None,
    max_retries: int,
    on_delta: Callable[[str], None] | None,
    allow_truncated: bool,
    completions: list[Completion] | None = None,
) -> SuggestionResult:
    request = files if isinstance(files, EditRequest) else EditRequest(files, default_path or "train_gpt.py")
    conversation = list(messages)
    completions = completions if completions is not None else []
    errors: list[str] = []
    retries = 0 if getattr(provider, "offline", False) else max(0, max_retries)
    tools = edits.EDIT_TOOLS if request.edit_format == "tools" else None
    max_tokens: int | None = None
    last: EditVerdict | None = None
    for attempt in range(retries + 1):
        if attempt and on_delta is not None:
            on_delta(RETRY_NOTICE)
        try:
            completion = await provider.complete(conversation, on_delta=on_delta, tools=tools, max_tokens=max_tokens)
        except ProviderError as exc:
            _attach(exc, completions, errors, completions[-1].text if completions else None)
            raise
        completions.append(completion)
        verdict = request.verdict(completion)
        usable = verdict.ok and (allow_truncated or not verdict.truncated)
        if usable:
            return SuggestionResult(verdict=verdict, raw_text=completion.text, completions=completions,
                                    errors=errors, edit_format=request.edit_format)
        last = verdict
        if attempt == retries:
            break
        conversation.append({"role": "assistant", "content": completion.text or "(tool calls)"})
        if verdict.truncated:
            errors.append(f"cut off by the token limit after {len(verdict.hunks)} complete block(s)")
            conversation.append(prompts.truncated_message(len(verdict.hunks), request.edit_format))
            max_tokens = _larger_limit(provider, max_tokens)
        else:
            feedback = verdict.feedback_for_model(request.edit_format)
            errors.append(feedback)
            conversation.append(prompts.retry_message(feedback, request.edit_format))

    assert last is not None
    raw_text = completions[-1].text
    error = _failure(last, provider, len(completions), raw_text)
    _attach(error, completions, errors, raw_text)
    raise error


def _larger_limit(provider: Any, current: int | None) -> int | None:
    base = current if current is not None else getattr(provider, "max_tokens", None)
    return min(MAX_TOKENS_CEILING, base * 2) if base else None


def _failure(verdict: EditVerdict, provider: Any, attempts: int, raw_text: str) -> EditParseError | EditApplyError:
    """The error to raise when no attempt was usable, saying that the retries are used up (or, for offline
    providers, what they answered)."""
    message = verdict.error or "the answer could not be used"
    if verdict.ok and verdict.truncated:
        message = (f"The answer was cut off by the token limit (after {len(verdict.hunks)} complete block(s)); "
                   "a cut-off answer is never applied automatically. Raise max_tokens or ask for a smaller change.")
    if getattr(provider, "offline", False) and verdict.error_kind == "parse":
        said = " ".join((raw_text or "").split())[:400]
        message = f"{getattr(provider, 'label', 'the offline provider')} proposed no edit: {said}"
    elif attempts > 1:
        message = f"The model's answer could not be used after {attempts} attempts. Last problem: {message}"
    error: EditParseError | EditApplyError = (EditParseError(message) if verdict.error_kind == "parse"
                                              else EditApplyError(message))
    error.verdict = verdict  # type: ignore[attr-defined]
    return error


def feedback_for(error: EditParseError | EditApplyError) -> str:
    """The text that goes back to the model for a parse or apply error."""
    kind = "apply" if isinstance(error, EditApplyError) else "parse"
    return edits.feedback_text(str(error), kind)
