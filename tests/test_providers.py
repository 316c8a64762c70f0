"""Providers against real parts: the official openai SDK talking to a real loopback HTTP server, the oracle on a
small real track, replay from a real event log."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from pathlib import Path

import pytest
from openai import AsyncOpenAI

from copilot.core import edits
from copilot.core.errors import ConfigError, ProviderError, ProviderExhausted, TrackError
from copilot.core.llm import prompts
from copilot.core.llm.providers import (
    Completion,
    OpenAIProvider,
    OracleProvider,
    ReplayProvider,
    build_provider,
    cost_of,
    price_for,
)
from copilot.core.session import schema as sc
from copilot.core.session.events import EventLog, read_events
from copilot.core.tracks.base import RecordInfo
from tests.support.openai_server import (
    OpenAIServer,
    answer,
    error,
    huge,
    raw,
    raw_sse,
    stall,
    truncated,
)
from tests.support.waiting import HANG_GUARD_S

KEY = "sk-test-secret-key-0123456789abcdef"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "say hello"}]
PRICES = {"test-model": (2.0, 8.0), "gpt-4o-mini": (0.15, 0.6)}


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv
        assert srv.errors == [], srv.errors  # no unexpected exception inside the server


def provider_for(server: OpenAIServer, **kwargs) -> OpenAIProvider:
    args = dict(model="test-model", api_key=KEY, base_url=server.base_url, timeout_s=30.0, deadline_s=60.0,
                max_retries=2, prices=PRICES, backoff_s=0.01)
    args.update(kwargs)
    return OpenAIProvider(**args)


class SleepRecorder:
    """Stands in for asyncio.sleep between attempts: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


async def fails(provider: OpenAIProvider, **kwargs) -> str:
    with pytest.raises(ProviderError) as info:
        await provider.complete(MESSAGES, **kwargs)
    message = str(info.value)
    assert KEY not in message
    assert info.value.__cause__ is None  # the SDK exception (with the request and its headers) is not chained
    return message


# -- happy paths -----------------------------------------------------------------------------------------


async def test_streaming_answer_arrives_in_deltas_with_usage_and_cost(server: OpenAIServer) -> None:
    text = "Use a higher learning rate.\nIt converges faster."
    server.script([answer(text, chunks=4, prompt_tokens=1000, completion_tokens=500)])
    deltas: list[str] = []
    result = await provider_for(server).complete(MESSAGES, on_delta=deltas.append)
    assert isinstance(result, Completion)
    assert len(deltas) == 4 and "".join(deltas) == text == result.text
    assert result.finish_reason == "stop" and result.model == "test-model"
    assert (result.prompt_tokens, result.completion_tokens) == (1000, 500) and not result.usage_estimated
    assert result.cost_usd == pytest.approx((1000 * 2.0 + 500 * 8.0) / 1e6)
    assert result.latency_s > 0
    (request,) = server.completions
    assert request.json["stream"] is True and request.json["stream_options"] == {"include_usage": True}
    assert request.json["messages"] == MESSAGES and request.json["model"] == "test-model"
    assert request.headers["authorization"] == f"Bearer {KEY}"


async def test_non_streaming_answer(server: OpenAIServer) -> None:
    server.script([answer("whole answer", prompt_tokens=10, completion_tokens=3)])
    deltas: list[str] = []
    result = await provider_for(server, stream=False).complete(MESSAGES, on_delta=deltas.append)
    assert result.text == "whole answer" and deltas == ["whole answer"]
    assert (result.prompt_tokens, result.completion_tokens) == (10, 3)
    assert result.cost_usd == pytest.approx((10 * 2.0 + 3 * 8.0) / 1e6)
    assert "stream" not in server.completions[0].json


async def test_server_ignoring_stream_options_gets_estimated_tokens(server: OpenAIServer) -> None:
    server.script([answer("x" * 400, usage=False)])
    result = await provider_for(server, prices={}).complete(MESSAGES)
    assert result.usage_estimated and result.completion_tokens == 100 and result.prompt_tokens > 0
    assert result.cost_usd is None  # unknown price: no guessed cost


async def test_server_ignoring_stream_flag_answers_json(server: OpenAIServer) -> None:
    body = {"id": "x", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "json anyway"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}
    server.script([raw(json.dumps(body))])
    deltas: list[str] = []
    result = await provider_for(server).complete(MESSAGES, on_delta=deltas.append)
    assert result.text == "json anyway" and deltas == ["json anyway"] and result.prompt_tokens == 7


async def test_models_route_lists_the_model(server: OpenAIServer) -> None:
    async with AsyncOpenAI(base_url=server.base_url, api_key=KEY, max_retries=0) as client:
        models = await client.models.list()
    assert [m.id for m in models.data] == ["test-model"] and server.pending == 0


def test_price_lookup_and_cost() -> None:
    assert price_for("gpt-4o-mini-2024-07-18", PRICES) == (0.15, 0.6)
    assert price_for("openai/gpt-4o-mini", PRICES) == (0.15, 0.6)
    assert price_for("llama3", PRICES) is None and price_for("x", None) is None
    assert cost_of("gpt-4o-mini", 1_000_000, 1_000_000, PRICES) == pytest.approx(0.75)


# -- failures that become clear errors -------------------------------------------------------------------


async def test_401_names_the_key_setting_and_never_the_key(server: OpenAIServer, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server.script([error(401, message=f"Incorrect API key provided: {KEY}")])
    message = await fails(provider_for(server))
    assert "OPENAI_API_KEY" in message and "--provider oracle" in message and "401" in message
    assert len(server.completions) == 1  # no retry on 401
    assert server.completions[0].headers["authorization"] == f"Bearer {KEY}"  # it was sent...
    assert KEY not in caplog.text  # ...but never logged
    assert KEY not in repr(provider_for(server))


async def test_400_is_not_retried(server: OpenAIServer) -> None:
    server.script([error(400, message="context length exceeded"), answer("never sent")])
    message = await fails(provider_for(server))
    assert "HTTP 400" in message and "context length exceeded" in message
    assert len(server.completions) == 1


async def test_429_then_success_honours_retry_after(server: OpenAIServer) -> None:
    server.script([error(429, retry_after=1), answer("after the wait")])
    result = await provider_for(server, backoff_s=0.0).complete(MESSAGES)
    waited = server.completions[1].started_at - server.completions[0].started_at
    assert result.text == "after the wait" and len(server.completions) == 2
    assert waited >= 0.95  # the real wait; that it was Retry-After and not more is the recorder's test below


async def test_the_wait_between_attempts_is_the_backoff_or_retry_after(server: OpenAIServer) -> None:
    server.script([error(503), error(503), error(503), error(429, retry_after=7), answer("fifth time")])
    sleep = SleepRecorder()
    provider = provider_for(server, backoff_s=0.5, max_backoff_s=1.5, max_retries=4, sleep=sleep)
    result = await provider.complete(MESSAGES)
    assert result.text == "fifth time" and len(server.completions) == 5
    backoffs = [0.5, 1.0, 1.5]  # doubling from backoff_s, capped at max_backoff_s, each with ±25% jitter
    assert all(0.75 * want <= got <= 1.25 * want for got, want in zip(sleep.waits, backoffs))
    assert len(sleep.waits) == 4 and sleep.waits[3] == 7.0  # Retry-After, exactly


async def test_429_retry_after_ms_and_exhaustion(server: OpenAIServer) -> None:
    server.script([error(429, retry_after_ms=50)] * 3)
    message = await fails(provider_for(server, max_retries=2))
    assert "429" in message and "after 3 attempts" in message and len(server.completions) == 3


async def test_retry_after_beyond_the_deadline_fails_at_once(server: OpenAIServer) -> None:
    server.script([error(429, retry_after=30)])
    sleep = SleepRecorder()
    message = await fails(provider_for(server, deadline_s=2.0, sleep=sleep))
    assert "deadline" in message and "30.0 s" in message
    assert sleep.waits == [] and len(server.completions) == 1  # it did not wait, and did not ask again


async def test_500_until_retries_are_used_up(server: OpenAIServer) -> None:
    server.script([error(500)] * 3 + [answer("too late")])
    message = await fails(provider_for(server, max_retries=2))
    assert "HTTP 500" in message and "after 3 attempts" in message
    assert len(server.completions) == 3 and server.pending == 1


async def test_500_then_success(server: OpenAIServer) -> None:
    server.script([error(502), answer("recovered")])
    assert (await provider_for(server).complete(MESSAGES)).text == "recovered"


async def test_read_timeout(server: OpenAIServer) -> None:
    server.script([stall(5)])
    message = await fails(provider_for(server, timeout_s=0.3, max_retries=0))
    assert "timeout" in message  # the stalled answer would have come after 5 s; the read gave up first


async def test_overall_deadline_stops_a_slow_stream(server: OpenAIServer) -> None:
    # Every read comes within the per-read timeout, so only the provider's own deadline can stop it.
    server.script([answer("a" * 40, chunks=40, delay_s=0.1)])
    deltas: list[str] = []
    started = time.monotonic()
    message = await fails(provider_for(server, timeout_s=10.0, deadline_s=0.6), on_delta=deltas.append)
    assert "deadline" in message and time.monotonic() - started > 0.5
    assert deltas and len("".join(deltas)) < 40  # it streamed, then stopped before the 4 s answer was whole


async def test_connection_refused(server: OpenAIServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    provider = OpenAIProvider(model="m", api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout_s=2,
                              max_retries=1, backoff_s=0.01)
    message = await fails(provider)
    assert "Cannot reach" in message and "OPENAI_BASE_URL" in message and "--provider oracle" in message
    assert f"127.0.0.1:{port}" in message


async def test_truncated_stream_is_an_error_not_a_short_answer(server: OpenAIServer) -> None:
    server.script([truncated("<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n", after_chunks=2), answer("unused")])
    deltas: list[str] = []
    message = await fails(provider_for(server), on_delta=deltas.append)
    assert "ended early" in message and deltas
    assert len(server.completions) == 1  # text was already streamed: no silent retry that repeats it


async def test_connection_dropped_mid_stream(server: OpenAIServer) -> None:
    server.script([truncated("abcdefgh", after_chunks=2, abrupt=True)])
    message = await fails(provider_for(server, max_retries=0), on_delta=lambda _: None)
    assert "Cannot reach" in message or "connection" in message.lower()


async def test_connection_dropped_before_any_text_is_retried(server: OpenAIServer) -> None:
    server.script([truncated("abc", after_chunks=0, abrupt=True), answer("second try")])
    result = await provider_for(server).complete(MESSAGES)
    assert result.text == "second try" and len(server.completions) == 2


@pytest.mark.parametrize("stream", [True, False])
async def test_invalid_json(server: OpenAIServer, stream: bool) -> None:
    server.script([raw_sse(['{"choices": [{"delta": {"content": "hi"']) if stream else raw('{"choices": [')])
    message = await fails(provider_for(server, stream=stream))
    assert "not valid JSON" in message and "OPENAI_BASE_URL" in message


@pytest.mark.parametrize("stream", [True, False])
async def test_non_json_body(server: OpenAIServer, stream: bool) -> None:
    server.script([raw("<html>Welcome to nginx!</html>", content_type="text/html")])
    message = await fails(provider_for(server, stream=stream))
    assert "OPENAI_BASE_URL" in message
    if stream:
        assert "no streamed data" in message and "text/html" in message
    else:
        assert "not JSON" in message and "Welcome to nginx" in message


async def test_sse_line_that_is_not_json(server: OpenAIServer) -> None:
    server.script([raw_sse(["this is not json"])])
    assert "not valid JSON" in await fails(provider_for(server))


@pytest.mark.parametrize("stream", [True, False])
async def test_invalid_utf8(server: OpenAIServer, stream: bool) -> None:
    body = b'{"id": "x", "choices": [{"index": 0, "delta": {"content": "caf\xe9 \xff"}}]}'
    server.script([raw_sse([body]) if stream else raw(body.replace(b'"delta"', b'"message"'))])
    assert "UTF-8" in await fails(provider_for(server, stream=stream))


@pytest.mark.parametrize("stream", [True, False])
async def test_huge_answer_is_capped(server: OpenAIServer, stream: bool) -> None:
    server.script([huge(5_000_000)])
    seen = 0

    def count(piece: str) -> None:
        nonlocal seen
        seen += len(piece)

    message = await fails(provider_for(server, stream=stream), on_delta=count)
    assert "1,000,000 characters" in message and seen <= 1_000_000


async def test_cancellation_closes_the_stream(server: OpenAIServer) -> None:
    server.script([answer("y" * 100, chunks=100, delay_s=0.05)])
    first = asyncio.Event()
    task = asyncio.create_task(provider_for(server).complete(MESSAGES, on_delta=lambda _: first.set()))
    await asyncio.wait_for(first.wait(), HANG_GUARD_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.wait_for(lambda: server.completions[0].client_disconnected)
    assert not server.completions[0].completed


async def test_unknown_route_is_a_404_with_advice(server: OpenAIServer) -> None:
    provider = provider_for(server, base_url=server.base_url.removesuffix("/v1") + "/wrong")
    message = await fails(provider)
    assert "404" in message and "/v1" in message


# -- factory ---------------------------------------------------------------------------------------------


def factory(name: str, **kw):
    args = dict(model="gpt-4o-mini", api_key=None, base_url=None, timeout_s=10, deadline_s=60, max_retries=1,
                prices=PRICES, track=TwoRecordTrack(), record=0)
    args.update(kw)
    return build_provider(name, **args)


def test_build_provider_choices() -> None:
    assert isinstance(factory("auto"), OracleProvider)
    openai = factory("auto", api_key=KEY, base_url="http://user:pw@127.0.0.1:8000/v1")
    assert isinstance(openai, OpenAIProvider) and not openai.offline
    assert openai.label == "openai gpt-4o-mini @ 127.0.0.1:8000" and "pw" not in openai.label
    assert factory("openai", api_key=KEY).label == "openai gpt-4o-mini @ api.openai.com"
    assert isinstance(factory("openai", base_url="http://127.0.0.1:1/v1"), OpenAIProvider)  # local, no key
    with pytest.raises(ProviderError, match="OPENAI_API_KEY"):
        factory("openai")
    with pytest.raises(ConfigError, match="oracle"):
        factory("gemini")


# -- oracle ----------------------------------------------------------------------------------------------

SCRIPT = "train.py"
R0 = """import math

LR = 0.001
STEPS = 100
BATCH = 8


def schedule(step):
    return LR


def main():
    for step in range(STEPS):
        print(f"step:{step} lr:{schedule(step)}")


if __name__ == "__main__":
    main()
"""
R1 = """import math

LR = 0.003
STEPS = 80
BATCH = 8
WARMUP = 10


def schedule(step):
    if step < WARMUP:
        return LR * (step + 1) / WARMUP
    return LR


def main():
    for step in range(STEPS):
        print(f"step:{step} lr:{schedule(step)}")


if __name__ == "__main__":
    main()
"""
HELPER = "def helper():\n    return 42\n"


class TwoRecordTrack:
    """A minimal real Track: record 0, record 1 (which adds a helper file), record 2 without code."""

    name = "tiny"
    target_val_loss = 3.28
    script_name = SCRIPT

    def records(self) -> list[RecordInfo]:
        return [RecordInfo(0, "base", "baseline", 10.0), RecordInfo(1, "warmup", "LR warmup and fewer steps", 8.0),
                RecordInfo(2, "future", "not released", None, has_code=False)]

    def record(self, number: int) -> RecordInfo:
        for info in self.records():
            if info.number == number:
                return info
        raise TrackError(f"no record {number}")

    def record_files(self, number: int) -> dict[str, str]:
        if number == 0:
            return {SCRIPT: R0}
        if number == 1:
            return {SCRIPT: R1, "helper.py": HELPER}
        raise TrackError(f"record {number} has no code")

    def hint(self, number: int, level: int) -> str | None:
        if number == 0 and level == 2:
            return "Warm the learning rate up over 10 steps, then raise it.\n```python\nLR = 0.003\n```"
        return None


def prompt_with(script_text: str, companions: dict[str, str] | None = None) -> list[dict[str, str]]:
    ctx = prompts.PromptContext(track="tiny", record=0, target_val_loss=3.28, script_path=SCRIPT,
                                script_text=script_text, companion_files=companions or {})
    return prompts.build_messages(ctx)


def apply_answer(text: str, files: dict[str, str]) -> dict[str, str]:
    parsed = edits.parse_edits(text, SCRIPT)
    return edits.apply_to_files(files, parsed.hunks)


async def test_oracle_reproduces_the_next_record_exactly() -> None:
    oracle = OracleProvider(TwoRecordTrack(), 0, chunk_chars=50)
    assert oracle.offline and "offline oracle" in oracle.label and "record 1" in oracle.label
    deltas: list[str] = []
    result = await oracle.complete(prompt_with(R0), on_delta=deltas.append)
    assert len(deltas) > 3 and "".join(deltas) == result.text
    assert result.cost_usd == 0 and result.finish_reason == "stop"
    parsed = edits.parse_edits(result.text, SCRIPT)
    assert "Warm the learning rate up" in parsed.rationale and "record 1" in parsed.rationale
    assert len(parsed.hunks) >= 3  # LR/STEPS, WARMUP, schedule body, helper.py
    assert apply_answer(result.text, {SCRIPT: R0}) == {SCRIPT: R1, "helper.py": HELPER}


async def test_oracle_proposes_only_what_is_left() -> None:
    new_schedule = "    if step < WARMUP:\n        return LR * (step + 1) / WARMUP\n    return LR\n"
    partly = R0.replace("    return LR\n", new_schedule)  # the schedule is done, the constants are not
    assert partly != R0
    oracle = OracleProvider(TwoRecordTrack(), 0)
    full = edits.parse_edits((await oracle.complete(prompt_with(R0))).text, SCRIPT)
    rest = edits.parse_edits((await oracle.complete(prompt_with(partly))).text, SCRIPT)
    assert len(rest.hunks) < len(full.hunks)
    assert not any("schedule" in h.search or "WARMUP" in h.search for h in rest.hunks)
    text = (await oracle.complete(prompt_with(partly))).text
    assert apply_answer(text, {SCRIPT: partly}) == {SCRIPT: R1, "helper.py": HELPER}


async def test_oracle_with_nothing_left_says_it_is_exhausted() -> None:
    oracle = OracleProvider(TwoRecordTrack(), 0)
    with pytest.raises(ProviderExhausted, match="nothing left to propose: the files already match record 1"):
        await oracle.complete(prompt_with(R1, {"helper.py": HELPER}))


async def test_oracle_current_files_hook_wins_over_messages() -> None:
    oracle = OracleProvider(TwoRecordTrack(), 0, current_files=lambda: {SCRIPT: R1, "helper.py": HELPER})
    with pytest.raises(ProviderExhausted):
        await oracle.complete(prompt_with(R0))


async def test_oracle_reads_the_files_from_the_last_message_that_has_them() -> None:
    messages = prompt_with(R0) + [{"role": "assistant", "content": "bad"}, prompts.retry_message("try again")]
    text = (await OracleProvider(TwoRecordTrack(), 0).complete(messages)).text
    assert apply_answer(text, {SCRIPT: R0})[SCRIPT] == R1


async def test_oracle_at_the_end_of_the_ladder() -> None:
    oracle = OracleProvider(TwoRecordTrack(), 1)  # record 2 exists but has no code
    assert "record 2" in oracle.label
    with pytest.raises(ProviderError, match="cannot read record 2"):
        await oracle.complete(prompt_with(R1))
    last = OracleProvider(TwoRecordTrack(), 2)
    assert "no later record" in last.label
    with pytest.raises(ProviderError, match="last record"):
        await last.complete([])


# -- replay ----------------------------------------------------------------------------------------------


async def test_replay_answers_in_order_then_says_it_ran_out() -> None:
    replay = ReplayProvider(["first answer", "second"], chunk_chars=4)
    deltas: list[str] = []
    assert (await replay.complete(MESSAGES, on_delta=deltas.append)).text == "first answer"
    assert deltas == ["firs", "t an", "swer"] and replay.offline and replay.remaining == 1
    assert (await replay.complete(MESSAGES)).text == "second"
    with pytest.raises(ProviderError, match="no recorded answer left"):
        await replay.complete(MESSAGES)


async def test_replay_from_a_recorded_event_log(tmp_path: Path) -> None:
    with EventLog(tmp_path / "s1") as log:
        log.append(sc.SuggestionRequested(suggestion_id="s1"))
        log.append(sc.SuggestionReceived(suggestion_id="s1", raw_text="answer one", hunks=[]))
        log.append(sc.SuggestionFailed(suggestion_id="s2", error="boom"))
        log.append(sc.SuggestionReceived(suggestion_id="s3", raw_text="answer two", hunks=[]))
    events = read_events(tmp_path / "s1" / "events.jsonl").events
    replay = ReplayProvider.from_events(events)
    assert [a.text for a in replay.answers] == ["answer one", "answer two"] and "2 recorded answers" in replay.label


async def test_error_event_inside_the_stream(server: OpenAIServer) -> None:
    server.script([raw_sse(['{"error": {"message": "model overloaded, try later"}}'])])
    message = await fails(provider_for(server))
    assert "model overloaded" in message and "reported an error" in message
