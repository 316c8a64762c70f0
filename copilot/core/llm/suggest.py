"""Ask a provider for a suggestion, and send malformed or unappliable answers back to it (bounded retries).

Each answer is parsed (`edits.parse_edits`) and dry-run against the current files (`edits.apply_to_files`);
nothing is written. On a parse or apply error, the answer and a `prompts.retry_message` explaining the problem
are appended to the conversation and the provider is asked again, at most `max_retries` times.

Offline providers (oracle, replay) are deterministic or a fixed sequence, so they are never asked again: a
retry would give the same answer, or consume the recorded answer meant for the next suggestion.

Failures carry the usage of every attempt as attributes (`prompt_tokens`, `completion_tokens`, `cost_usd`,
`latency_s`, `completions`, `errors`, `raw_text`), so the session can log what a failed suggestion cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from copilot.core import edits
from copilot.core.llm import prompts
from copilot.core.errors import EditApplyError, EditParseError, ProviderError
from copilot.core.llm.providers import Completion, Provider

RETRY_NOTICE = "\n\n[the answer could not be applied; asking the model again]\n\n"


@dataclass
class SuggestionResult:
    parsed: edits.ParsedEdits
    raw_text: str
    completions: list[Completion] = field(default_factory=list)  # every attempt, the usable one last
    errors: list[str] = field(default_factory=list)  # the error texts sent back to the model

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


def feedback_for(error: EditParseError | EditApplyError) -> str:
    """The text that goes back to the model for a parse or apply error."""
    if isinstance(error, EditApplyError):
        return edits.format_apply_error_for_model(error)
    return str(error)


def _attach(exc: BaseException, completions: list[Completion], errors: list[str], raw_text: str | None) -> None:
    exc.completions = list(completions)  # type: ignore[attr-defined]
    exc.errors = list(errors)  # type: ignore[attr-defined]
    exc.raw_text = raw_text  # type: ignore[attr-defined]
    exc.prompt_tokens = sum(c.prompt_tokens for c in completions)  # type: ignore[attr-defined]
    exc.completion_tokens = sum(c.completion_tokens for c in completions)  # type: ignore[attr-defined]
    exc.cost_usd = _total_cost(completions)  # type: ignore[attr-defined]
    exc.latency_s = sum(c.latency_s for c in completions)  # type: ignore[attr-defined]


def _check(text: str, files: Mapping[str, str], default_path: str) -> edits.ParsedEdits:
    parsed = edits.parse_edits(text, default_path)
    edits.apply_to_files(files, parsed.hunks)  # dry run: raises EditApplyError, writes nothing
    return parsed


async def request_suggestion(
    provider: Provider,
    messages: list[dict[str, str]],
    files: Mapping[str, str],
    default_path: str,
    max_retries: int = 2,
    on_delta: Callable[[str], None] | None = None,
) -> SuggestionResult:
    conversation = list(messages)
    completions: list[Completion] = []
    errors: list[str] = []
    retries = 0 if getattr(provider, "offline", False) else max(0, max_retries)
    last: EditParseError | EditApplyError | None = None
    for attempt in range(retries + 1):
        if attempt and on_delta is not None:
            on_delta(RETRY_NOTICE)
        try:
            completion = await provider.complete(conversation, on_delta=on_delta)
        except ProviderError as exc:
            _attach(exc, completions, errors, completions[-1].text if completions else None)
            raise
        completions.append(completion)
        try:
            parsed = _check(completion.text, files, default_path)
        except (EditParseError, EditApplyError) as exc:
            last = exc
            if attempt == retries:
                break
            feedback = feedback_for(exc)
            errors.append(feedback)
            conversation += [{"role": "assistant", "content": completion.text}, prompts.retry_message(feedback)]
            continue
        return SuggestionResult(parsed=parsed, raw_text=completion.text, completions=completions, errors=errors)

    assert last is not None
    raw_text = completions[-1].text
    _relabel(last, provider, len(completions), raw_text)
    _attach(last, completions, errors, raw_text)
    raise last


def _relabel(exc: Exception, provider: Any, attempts: int, raw_text: str) -> None:
    """Say in the message that the retries are used up (or, for offline providers, what they answered)."""
    message = str(exc)
    if getattr(provider, "offline", False) and isinstance(exc, EditParseError):
        said = " ".join(raw_text.split())[:400]
        message = f"{getattr(provider, 'label', 'the offline provider')} proposed no edit: {said}"
    elif attempts > 1:
        message = f"The model's answer could not be used after {attempts} attempts. Last problem: {message}"
    exc.args = (message,)
