"""The suggestion loop against a real loopback server through the official SDK, and with offline providers."""

from __future__ import annotations

import pytest

from copilot.core.errors import EditApplyError, EditParseError, ProviderError, ProviderExhausted
from copilot.core.llm.providers import OpenAIProvider, OracleProvider, ReplayProvider
from copilot.core.llm.suggest import RETRY_NOTICE, SuggestionResult, request_suggestion
from tests.support.openai_server import OpenAIServer, answer, error
from tests.test_providers import R0, R1, SCRIPT, TwoRecordTrack, prompt_with

KEY = "sk-suggest-test-key-987654321"

MALFORMED = "I would raise the learning rate to 0.003, it should converge faster."
NOT_APPLYING = f"""Raise the LR.

{SCRIPT}
```python
<<<<<<< SEARCH
LEARNING_RATE = 0.5
=======
LEARNING_RATE = 0.003
>>>>>>> REPLACE
```
"""
GOOD = f"""Raise the LR and train fewer steps.

{SCRIPT}
```python
<<<<<<< SEARCH
LR = 0.001
STEPS = 100
=======
LR = 0.003
STEPS = 80
>>>>>>> REPLACE
```
"""


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv
        assert srv.errors == []


def provider_for(server: OpenAIServer) -> OpenAIProvider:
    return OpenAIProvider(model="test-model", api_key=KEY, base_url=server.base_url, timeout_s=30, deadline_s=60,
                          max_retries=0, prices={"test-model": (1.0, 4.0)})


def usage(text: str) -> dict:
    return answer(text, prompt_tokens=1000, completion_tokens=100)


async def test_malformed_then_unappliable_then_good(server: OpenAIServer) -> None:
    server.script([usage(MALFORMED), usage(NOT_APPLYING), usage(GOOD)])
    files = {SCRIPT: R0}
    deltas: list[str] = []
    result = await request_suggestion(provider_for(server), prompt_with(R0), files, SCRIPT, max_retries=2,
                                      on_delta=deltas.append)
    assert isinstance(result, SuggestionResult)
    assert result.raw_text == GOOD and len(result.parsed.hunks) == 1
    assert result.parsed.rationale.startswith("Raise the LR and train fewer steps")
    assert files == {SCRIPT: R0}  # a dry run only
    assert len(result.errors) == 2 and result.attempts == 3
    assert "no SEARCH/REPLACE blocks" in result.errors[0]
    assert "could not be applied" in result.errors[1] and "SEARCH text was not found" in result.errors[1]
    assert (result.prompt_tokens, result.completion_tokens) == (3000, 300)
    assert result.cost_usd == pytest.approx(3 * (1000 * 1.0 + 100 * 4.0) / 1e6)
    assert result.latency_s > 0
    assert "".join(deltas) == MALFORMED + RETRY_NOTICE + NOT_APPLYING + RETRY_NOTICE + GOOD

    first, second, third = server.completions
    assert len(first.messages) == 2
    assert [m["role"] for m in second.messages] == ["system", "user", "assistant", "user"]
    assert second.messages[2]["content"] == MALFORMED
    assert result.errors[0] in second.messages[3]["content"]
    assert third.messages[:4] == second.messages
    assert third.messages[4]["content"] == NOT_APPLYING
    assert result.errors[1] in third.messages[5]["content"]


async def test_all_answers_bad_raises_the_last_error_with_usage(server: OpenAIServer) -> None:
    server.script([usage(NOT_APPLYING), usage(MALFORMED), usage(NOT_APPLYING), usage(GOOD)])
    with pytest.raises(EditApplyError) as info:
        await request_suggestion(provider_for(server), prompt_with(R0), {SCRIPT: R0}, SCRIPT, max_retries=2)
    exc = info.value
    assert "after 3 attempts" in str(exc) and "SEARCH text was not found" in str(exc)
    assert exc.prompt_tokens == 3000 and exc.completion_tokens == 300 and exc.cost_usd > 0
    assert len(exc.errors) == 2 and exc.raw_text == NOT_APPLYING
    assert len(server.completions) == 3 and server.pending == 1


async def test_parse_error_as_the_last_problem(server: OpenAIServer) -> None:
    server.script([usage(MALFORMED)])
    with pytest.raises(EditParseError) as info:
        await request_suggestion(provider_for(server), prompt_with(R0), {SCRIPT: R0}, SCRIPT, max_retries=0)
    assert "no SEARCH/REPLACE blocks" in str(info.value) and info.value.errors == []
    assert len(server.completions) == 1


async def test_provider_error_propagates_with_the_usage_so_far(server: OpenAIServer) -> None:
    server.script([usage(MALFORMED), error(401)])
    with pytest.raises(ProviderError) as info:
        await request_suggestion(provider_for(server), prompt_with(R0), {SCRIPT: R0}, SCRIPT, max_retries=2)
    assert "OPENAI_API_KEY" in str(info.value) and KEY not in str(info.value)
    assert info.value.prompt_tokens == 1000 and len(info.value.errors) == 1


async def test_oracle_suggestion_applies_without_retries() -> None:
    result = await request_suggestion(OracleProvider(TwoRecordTrack(), 0), prompt_with(R0), {SCRIPT: R0}, SCRIPT)
    assert result.errors == [] and result.cost_usd == 0 and len(result.parsed.hunks) >= 3


async def test_offline_provider_with_nothing_to_propose_is_not_asked_again() -> None:
    oracle = OracleProvider(TwoRecordTrack(), 0)
    files = {SCRIPT: R1, "helper.py": "def helper():\n    return 42\n"}
    asked: list[int] = []
    answer_for = oracle.answer_for

    def counting(current):  # type: ignore[no-untyped-def]
        asked.append(1)
        return answer_for(current)

    oracle.answer_for = counting  # type: ignore[method-assign]
    with pytest.raises(ProviderExhausted, match="offline oracle has nothing left to propose.*match record 1"):
        await request_suggestion(oracle, prompt_with(R1, {"helper.py": files["helper.py"]}), files, SCRIPT)
    assert asked == [1]


async def test_replay_does_not_consume_the_next_answer_on_failure() -> None:
    replay = ReplayProvider([NOT_APPLYING, GOOD])
    with pytest.raises(EditApplyError):
        await request_suggestion(replay, prompt_with(R0), {SCRIPT: R0}, SCRIPT, max_retries=2)
    assert replay.remaining == 1
    result = await request_suggestion(replay, prompt_with(R0), {SCRIPT: R0}, SCRIPT)
    assert result.raw_text == GOOD


# -- edit formats and cut-off answers ---------------------------------------------------------------------

async def test_tool_call_answers_stream_through_the_sdk_and_become_hunks(server: OpenAIServer) -> None:
    import json

    from copilot.core.llm.suggest import EditRequest

    args = json.dumps({"path": SCRIPT, "old_string": "LR = 0.001", "new_string": "LR = 0.003"})
    for stream in (True, False):
        server.script([answer("Raise the LR.", tool_calls=[{"name": "edit_file", "arguments": args}],
                              finish_reason="tool_calls", chunks=4)])
        provider = provider_for(server)
        provider.stream = stream
        result = await request_suggestion(provider, prompt_with(R0), EditRequest({SCRIPT: R0}, SCRIPT, "tools"))
        assert result.verdict.format == "tools" and result.verdict.files[SCRIPT] == R0.replace("0.001", "0.003")
        assert result.last.tool_calls[0].name == "edit_file"
        request = server.completions[-1].json
        assert request["tools"][0]["function"]["name"] == "edit_file" and request["tool_choice"] == "auto"


async def test_a_cut_off_answer_is_kept_for_review_but_retried_larger_for_a_policy(server: OpenAIServer) -> None:
    from copilot.core.llm.suggest import EditRequest

    cut = GOOD + f"\n{SCRIPT}\n```python\n<<<<<<< SEARCH\nSTEPS = 1"
    server.script([answer(cut, finish_reason="length")])
    provider = provider_for(server)
    provider.max_tokens = 1000
    request = EditRequest({SCRIPT: R0}, SCRIPT)
    result = await request_suggestion(provider, prompt_with(R0), request, allow_truncated=True)
    assert result.verdict.truncated and result.verdict.dropped == 1 and len(result.verdict.hunks) == 1
    assert result.last.finish_reason == "length"

    server.script([answer(cut, finish_reason="length"), answer(GOOD)])
    result = await request_suggestion(provider, prompt_with(R0), request, allow_truncated=False)
    assert not result.verdict.truncated and result.attempts == 2
    first, second = server.completions[-2:]
    assert first.json["max_tokens"] == 1000 and second.json["max_tokens"] == 2000
    assert "cut off by the token limit" in second.messages[-1]["content"]

    server.script([answer(cut, finish_reason="length")] * 3)
    with pytest.raises(EditApplyError, match="cut off by the token limit"):
        await request_suggestion(provider, prompt_with(R0), request, allow_truncated=False)
