"""Golden tests for the log parser: one table row per upstream era (lines built from FACTS.md §1.3, §1.6,
§1.7, §2.9 format strings), garbage, chunk splitting, carriage returns, NaN/inf."""

from __future__ import annotations

import math
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copilot.core.runs import logparse as lp
from copilot.core.runs.logparse import LogParser, fold_cr, is_bad_loss, parse_line, parse_peak_memory
from copilot.core.runs.metrics import MetricPoint

P = MetricPoint


def _current_val(step: int, steps: int, loss: float, t_ms: float) -> str:
    return f"step:{step}/{steps} val_loss:{loss:.4f} train_time:{t_ms:.0f}ms step_avg:{t_ms / max(step, 1):.2f}ms"


def _current_train(step: int, steps: int, t_ms: float) -> str:
    return f"step:{step + 1}/{steps} train_time:{t_ms:.0f}ms step_avg:{t_ms / (step + 1):.2f}ms"


def _track3_val(step: int, steps: int, loss: float, t_s: float, avg_s: float) -> str:
    return f"step:{step}/{steps} val_loss:{loss:.5f} train_time:{t_s:.3f}s step_avg:{1000 * avg_s:.2f}ms"


def _template_train(step: int, steps: int, loss: float) -> str:
    return f"step {step + 1:4d}/{steps} | train loss {loss:.6f} | norm {0.8123:.4f} | lr {1.8e-3:.2e} | ({215.31:.2f} ms | {2435000:.0f} tok/s)"


GOLDEN: list[tuple[str, MetricPoint | None]] = [
    # current train_gpt.py (record 89 tail, FACTS §1.7)
    ("step:1390/1390 train_time:79448ms step_avg:57.16ms", P(1390, 1390, None, None, 79448.0, 57.16)),
    ("step:1390/1390 val_loss:3.2775 train_time:79532ms step_avg:57.22ms", P(1390, 1390, 3.2775, None, 79532.0, 57.22)),
    (_current_val(0, 1285, 10.8258, 0), P(0, 1285, 10.8258, None, 0.0, 0.0)),
    (_current_train(249, 1285, 14305.4), P(250, 1285, None, None, 14305.0, 57.22)),
    # record-4 era: train_loss on train lines, nan step_avg in the untimed grace period
    ("step:6200/6200 val_loss:3.2785 train_time:1339067ms step_avg:216.33ms", P(6200, 6200, 3.2785, None, 1339067.0, 216.33)),
    ("step:3/6200 train_loss:10.4312 train_time:0ms step_avg:nanms", P(3, 6200, None, 10.4312, 0.0, math.nan)),
    ("step:0/6200 val_loss:10.8258 train_time:0ms step_avg:nanms", P(0, 6200, 10.8258, None, 0.0, math.nan)),
    ("step:11/6200 train_loss:7.9876 train_time:216ms step_avg:216.00ms", P(11, 6200, None, 7.9876, 216.0, 216.0)),
    # track 3: seconds and 5-decimal val loss
    (_track3_val(3250, 3250, 3.27812, 812.345, 0.24995), P(3250, 3250, 3.27812, None, 812345.0, 249.95)),
    ("step:126/3250 train_time:31.494s step_avg:249.95ms", P(126, 3250, None, None, 31494.0, 249.95)),
    # llm.c-derived template of LS record 1
    (_template_train(0, 24576, 10.987654), P(1, 24576, None, 10.987654, None, None)),
    ("step:0/24576 val_loss:10.9876 train_time:0ms", P(0, 24576, 10.9876, None, 0.0, None)),
    # llm.c's console line
    ("step 12/100: train loss 3.123000 norm 1.0000 (12.30 ms, 1000 tok/s)", P(12, 100, None, 3.123, None, None)),
    # llm.c-format logs of records 1 and 2
    ("s:0 trl:10.987654", P(0, None, None, 10.987654, None, None)),
    ("s:9536 tel:3.2603", P(9536, None, 3.2603, None, None, None)),
    ("s:250 trl:4.1234 lr:0.000600 norm:0.45", P(250, None, None, 4.1234, None, None)),
    # torchrun prefixes and other prefixes
    ("[rank0]:step:10/100 val_loss:3.5000 train_time:100ms step_avg:10.00ms", P(10, 100, 3.5, None, 100.0, 10.0)),
    ("[default0]:step:11/100 train_time:110ms step_avg:10.00ms", P(11, 100, None, None, 110.0, 10.0)),
    ("2026-11-26 17:15:00 INFO step:11/100 train_loss:4.2 train_time:110ms", P(11, 100, None, 4.2, 110.0, None)),
    # extra or reordered keys
    ("step:10/100 train_time:100ms step_avg:10.00ms lr:0.1", P(10, 100, None, None, 100.0, 10.0)),
    ("step:10/100 lr:0.1 train_loss:2.5 train_time:1.5s", P(10, 100, None, 2.5, 1500.0, None)),
    ("step:5/10 val_loss:3.0000 train_time:5ms (best so far)", P(5, 10, 3.0, None, 5.0, None)),
    # carriage-return folded progress
    ("step:1/9 train_time:5ms step_avg:5.00ms\rstep:2/9 train_time:9ms step_avg:4.50ms", P(2, 9, None, None, 9.0, 4.5)),
    ("step:3/9 train_time:12ms step_avg:4.00ms\r", P(3, 9, None, None, 12.0, 4.0)),
    # garbage: code of the header, banners, near-misses
    ('    print0(f"step:{step}/{train_steps} val_loss:{val_loss:.4f} train_time:{training_time_ms:.0f}ms")', None),
    ("        for step in range(train_steps + 1):", None),
    ("Running PyTorch 2.10.0+cu128 compiled for CUDA 12.8", None),
    ("=" * 100, None),
    ("|   0  NVIDIA H100 80GB HBM3          On  |   00000000:61:00.0 Off |                    0 |", None),
    ("Compiling model and warming up kernels (~7 minutes on first execution)", None),
    ("Sampling steps [1, 2, 3] for warmup", None),
    ("mystep:5/10 val_loss:3.0", None),
    ("step:5/10", None),
    ("step:5/10 val_loss:abc train_time:5ms", None),
    ("step:x/10 val_loss:3.0", None),
    ("val loss 3.2804", None),
    ("s:5 eval:0.2931", None),
    ("args: trl:5", None),
    ("final 20 iters avg: 120.500ms", None),
    ("peak memory allocated: 30220 MiB reserved: 38672 MiB", None),
    ("", None),
    ("\r\r", None),
]


def _same(actual: MetricPoint | None, expected: MetricPoint | None) -> bool:
    if actual is None or expected is None:
        return actual is expected
    for name in ("step", "total_steps", "val_loss", "train_loss", "train_time_ms", "step_avg_ms"):
        a, e = getattr(actual, name), getattr(expected, name)
        if isinstance(e, float) and math.isnan(e):
            if not (isinstance(a, float) and math.isnan(a)):
                return False
        elif a != e and not (isinstance(a, float) and isinstance(e, float) and math.isclose(a, e)):
            return False
    return True


@pytest.mark.parametrize(("line", "expected"), GOLDEN, ids=[repr(line)[:50] for line, _ in GOLDEN])
def test_golden_line(line: str, expected: MetricPoint | None) -> None:
    actual = parse_line(line)
    assert _same(actual, expected), f"{line!r}: got {actual}, expected {expected}"


def test_seconds_convert_exactly_enough() -> None:
    point = parse_line("step:1/2 val_loss:3.12345 train_time:12.345s step_avg:12345.00ms")
    assert point is not None and point.train_time_ms == 12345.0


@pytest.mark.parametrize(
    ("line", "field", "check"),
    [
        ("step:10/100 val_loss:nan train_time:100ms step_avg:10.00ms", "val_loss", math.isnan),
        ("step:11/100 train_loss:inf train_time:110ms step_avg:10.00ms", "train_loss", math.isinf),
        ("step:11/100 train_loss:-inf train_time:110ms", "train_loss", math.isinf),
        ("s:12 trl:nan", "train_loss", math.isnan),
        ("s:12 tel:inf", "val_loss", math.isinf),
        ("step   13/100 | train loss nan | norm nan | lr 1.0e-03 | (1.00 ms | 1 tok/s)", "train_loss", math.isnan),
    ],
)
def test_non_finite_losses_parse_and_count_as_bad(line: str, field: str, check) -> None:
    point = parse_line(line)
    assert point is not None and check(getattr(point, field))
    assert is_bad_loss(point)


def test_nan_step_avg_is_not_a_bad_loss() -> None:
    point = parse_line("step:3/6200 train_loss:10.4312 train_time:0ms step_avg:nanms")
    assert point is not None and not is_bad_loss(point)


def test_peak_memory_lines() -> None:
    assert parse_peak_memory("peak memory allocated: 30220 MiB reserved: 38672 MiB") == (30220, 38672)
    assert parse_peak_memory("[rank0]:peak memory allocated: 36348 MiB reserved: 52032 MiB") == (36348, 52032)
    assert parse_peak_memory("peak memory consumption: 12000 MiB") == (12000, None)
    assert parse_peak_memory("peak memory: lots") is None
    assert parse_peak_memory("step:1/2 train_time:1ms") is None


def test_fold_cr() -> None:
    assert fold_cr("a\rb\rc") == "c"
    assert fold_cr("a\rb\r") == "b"
    assert fold_cr("plain") == "plain"
    assert fold_cr("\r") == ""


def _record_log() -> tuple[str, list[MetricPoint]]:
    """A small complete log in the current format, with its expected points."""
    lines = ['import torch', '    print0(f"step:{step}/{train_steps} ...")', "=" * 100, "Running Python 3.12.3"]
    expected: list[MetricPoint] = []
    t = 0.0
    steps = 30
    for step in range(steps + 1):
        if step % 10 == 0 or step == steps:
            loss = 4.0 - step / 30
            lines.append(_current_val(step, steps, loss, t))
            expected.append(P(step, steps, round(loss, 4), None, float(round(t)), round(t / max(step, 1), 2)))
        if step == steps:
            break
        t += 57.25
        lines.append(_current_train(step, steps, t))
        expected.append(P(step + 1, steps, None, None, float(round(t)), round(t / (step + 1), 2)))
    lines.append("peak memory allocated: 30220 MiB reserved: 38672 MiB")
    return "\n".join(lines) + "\n", expected


def _assert_points(actual: list[MetricPoint], expected: list[MetricPoint]) -> None:
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert _same(a, e), (a, e)


def test_parser_whole_log() -> None:
    text, expected = _record_log()
    parser = LogParser()
    points = parser.feed(text)
    _assert_points(points, expected)
    assert parser.points == points
    assert parser.peak_memory == (30220, 38672)
    assert not parser.nan_seen
    assert parser.last_lines[-1].startswith("peak memory allocated")
    assert [p.step for p in parser.val_points] == [0, 10, 20, 30]


@pytest.mark.parametrize("seed", range(5))
def test_parser_any_chunking_gives_the_same_points(seed: int) -> None:
    text, expected = _record_log()
    rng = random.Random(seed)
    parser = LogParser()
    got: list[MetricPoint] = []
    pos = 0
    while pos < len(text):
        size = rng.choice([1, 2, 3, 7, 40, 200])
        got.extend(parser.feed(text[pos : pos + size]))
        pos += size
    _assert_points(got, expected)
    assert parser.peak_memory == (30220, 38672)


def test_partial_line_waits_for_newline_and_flush_ends_it() -> None:
    parser = LogParser()
    assert parser.feed("step:1/2 val_loss:3.5000 train_ti") == []
    assert parser.feed("me:10ms step_avg:10.00ms") == []
    points = parser.flush()
    assert len(points) == 1 and points[0].val_loss == 3.5 and points[0].train_time_ms == 10.0
    assert parser.flush() == []


def test_partial_line_split_inside_the_number_does_not_parse_early() -> None:
    parser = LogParser()
    assert parser.feed("step:1/2 val_loss:3.5") == []
    points = parser.feed("123 train_time:10ms\n")
    assert points[0].val_loss == 3.5123


def test_carriage_return_progress_streams_before_the_newline() -> None:
    parser = LogParser()
    lines_seen: list[str] = []
    first = parser.feed("step:1/3 train_time:5ms step_avg:5.00ms\rstep:2/3 train_time:9ms", on_line=lines_seen.append)
    assert [p.step for p in first] == [1]
    second = parser.feed(" step_avg:4.50ms\r", on_line=lines_seen.append)
    assert [p.step for p in second] == [2]
    third = parser.feed("\n", on_line=lines_seen.append)
    assert third == []
    # the folded line is what a terminal would show: the last progress segment
    assert lines_seen == ["step:2/3 train_time:9ms step_avg:4.50ms"]
    assert list(parser.last_lines) == lines_seen
    assert [p.step for p in parser.points] == [1, 2]


def test_crlf_line_endings() -> None:
    parser = LogParser()
    points = parser.feed("step:1/2 val_loss:3.0000 train_time:1ms\r\nstep:2/2 train_time:2ms\r\n")
    assert [p.step for p in points] == [1, 2]
    assert list(parser.last_lines) == ["step:1/2 val_loss:3.0000 train_time:1ms", "step:2/2 train_time:2ms"]


def test_nan_seen_on_nan_or_inf_loss() -> None:
    parser = LogParser()
    parser.feed("step:3/6200 train_loss:10.4312 train_time:0ms step_avg:nanms\n")
    assert not parser.nan_seen
    parser.feed("step:4/6200 train_loss:inf train_time:0ms step_avg:nanms\n")
    assert parser.nan_seen

    parser = LogParser()
    parser.feed("step:250/1390 val_loss:nan train_time:1ms step_avg:0.01ms\r\n")
    assert parser.nan_seen


def test_last_lines_is_bounded_and_keeps_the_tail() -> None:
    parser = LogParser(max_lines=5)
    parser.feed("".join(f"line {i}\n" for i in range(100)))
    parser.feed("\n\nTraceback (most recent call last):\n")
    assert list(parser.last_lines) == ["line 96", "line 97", "line 98", "line 99", "Traceback (most recent call last):"]
    assert parser.lines_seen == 103


def test_on_line_gets_every_nonempty_line() -> None:
    parser = LogParser()
    seen: list[str] = []
    parser.feed("a\n\nb\nstep:1/2 train_time:1ms\npartial", on_line=seen.append)
    assert seen == ["a", "b", "step:1/2 train_time:1ms"]
    parser.flush(on_line=seen.append)
    assert seen[-1] == "partial"


def test_keep_points_false_still_returns_points() -> None:
    parser = LogParser(keep_points=False)
    assert len(parser.feed("s:1 trl:3.0\ns:1 tel:3.1\n")) == 2
    assert parser.points == []


def test_older_peak_memory_line_in_a_log() -> None:
    parser = LogParser()
    parser.feed(_template_train(0, 10, 4.0) + "\nfinal 20 iters avg: 120.500ms\npeak memory consumption: 12000 MiB\n")
    assert parser.peak_memory == (12000, None)
    assert parser.points[0].train_loss == 4.0


# -- the fast paths against plain references (hypothesis) ------------------------------------------------------------
# The parser's hot path uses a regex spelled for the re engine's speed, a digit prefilter before the regexes and a
# direct match for lines starting with `step:`. Each is checked here against the plain form it replaced.

_PLAIN_STEP_COLON = re.compile(
    r"step:(\d+)/(\d+)"
    r"(?:[ \t]+val_loss:(\S+))?"
    r"(?:[ \t]+train_loss:(\S+))?"
    r"(?:[ \t]+train_time:([^\sms]+)(ms|s))?"
    r"(?:[ \t]+step_avg:([^\sms]+)(?:ms)?)?"
    r"[ \t]*$"
)


def _reference_colon_point(match: re.Match[str]) -> MetricPoint | None:
    step, total, val, train, time_value, time_unit, avg = match.groups()
    if val is None and train is None and time_value is None:
        return None
    val_loss = None if val is None else lp._num(val)
    train_loss = None if train is None else lp._num(train)
    time_ms = None if time_value is None else lp._ms(time_value, time_unit)
    if (val is not None and val_loss is None) or (train is not None and train_loss is None):
        return None
    if time_value is not None and time_ms is None:
        return None
    avg_ms = None if avg is None else lp._num(avg)
    return MetricPoint(int(step), int(total), val_loss, train_loss, time_ms, avg_ms)


def _reference_parse(line: str) -> MetricPoint | None:
    """parse_line spelled plainly: every `step:` at a word start is tried with both regexes, in order."""
    line = fold_cr(line)
    if "step:" not in line:
        return lp._parse_step_segment(line)  # the other shapes: code the fast paths do not touch
    pos = line.find("step:")
    while pos >= 0:
        if lp._word_start(line, pos):
            match = _PLAIN_STEP_COLON.match(line, pos)
            if match is not None:
                return _reference_colon_point(match)
            match = lp._STEP_COLON_ANY.match(line, pos)
            if match is not None:
                return lp._parse_step_colon_any(match)
        pos = line.find("step:", pos + 5)
    return None


def _reference_is_bad_loss(point: MetricPoint) -> bool:
    return any(loss is not None and not math.isfinite(loss) for loss in (point.val_loss, point.train_loss))


_digits = st.text(st.sampled_from("0123456789٣"), min_size=1, max_size=5)  # ٣: a digit outside ASCII
_number = st.one_of(
    _digits,
    st.builds("{}.{}".format, _digits, _digits),
    st.sampled_from(["nan", "inf", "-inf", "-1.5", "1e-3", "abc", "", "1.2.3", "²"]),
)
_value = st.builds(str.__add__, _number, st.sampled_from(["", "ms", "s", "m", "mss", "sm", "ms.", "x"]))
_sep = st.sampled_from([" ", "\t", "  ", " \t", "", "|", ": "])
_prefix = st.sampled_from(["", "", "", "[rank0]:", "[default0]:", "mystep:", "x_", "2026-11-26 INFO ", "step:"])
_tail = st.sampled_from(["", "", " ", "\t", " (best so far)", " junk", " lr:0.1", "\r", "\rstep:1/2 train_time:3ms"])


def _field(key: str) -> st.SearchStrategy[str]:
    return st.builds(lambda sep, value: f"{sep}{key}:{value}", _sep, _value)


def _maybe(key: str) -> st.SearchStrategy[str]:
    return st.one_of(st.just(""), _field(key))


# The usual key order, each key there or not: what the fast regex is for.
_usual_line = st.builds(
    lambda prefix, step, total, val, train, time, avg, tail: f"{prefix}step:{step}/{total}{val}{train}{time}{avg}{tail}",
    _prefix, _digits, _digits, _maybe("val_loss"), _maybe("train_loss"), _maybe("train_time"), _maybe("step_avg"),
    _tail,
)
# Any keys in any order.
_any_key = st.sampled_from(["val_loss", "train_loss", "train_time", "step_avg", "lr", "norm", "x1", "val loss"])
_mixed_line = st.builds(
    lambda prefix, step, total, fields, tail: f"{prefix}step:{step}/{total}{''.join(fields)}{tail}",
    _prefix, _digits, st.one_of(_digits, st.just("x")), st.lists(_any_key.flatmap(_field), max_size=5), _tail,
)
_step_colon_line = st.one_of(_usual_line, _mixed_line)
_other_line = st.one_of(
    st.builds("step {}/{} | train loss {} | norm 1.0".format, _digits, _digits, _number),
    st.builds("s:{} {}:{}".format, _digits, st.sampled_from(["trl", "tel", "eval"]), _number),
    st.text(st.sampled_from("step:/0123456789 .\t_valoss rinmaegvtl|[]\r"), max_size=60),
    st.sampled_from(["    def forward(self, x: Tensor, step: int):", "peak memory allocated: 1 MiB reserved: 2 MiB"]),
)
_any_line = st.one_of(_step_colon_line, _other_line)
# Near misses a generator may take long to hit: each fast path's edge, written out.
_EDGE_LINES = [
    "step:1/2 train_time:5ms step_avg:abc",  # an unreadable average keeps the point
    "step:1/2 val_loss:abc train_time:5ms",  # an unreadable loss drops it
    "step:٣/٣ train_time:5ms step_avg:1.00ms",  # digits outside ASCII
    "[rank0]:step:3/9\tval_loss:3.5 \ttrain_time:1.5s step_avg:nanms \t",
    "step:1/2 train_time:5ms step_avg:1ms lr:0.1",  # the usual order, then another key
    "step: int step:1/2 train_loss:nan",
    "x_step:1/2 val_loss:3.0 step:2/2 val_loss:inf",
    "mystep:5/10 val_loss:3.0 train_time:5ms",  # `step:` inside a word, in the usual order
]


def _assert_regexes_agree(line: str) -> None:
    pos = line.find("step:")
    while pos >= 0:
        fast, plain = lp._STEP_COLON_FAST.match(line, pos), _PLAIN_STEP_COLON.match(line, pos)
        assert (fast is None) == (plain is None), (line, pos)
        if fast is not None and plain is not None:
            assert (fast.groups(), fast.end()) == (plain.groups(), plain.end()), (line, pos)
        pos = line.find("step:", pos + 1)


def _fed_points(lines: list[str], chunk: int) -> list[MetricPoint]:
    text = "".join(line + "\n" for line in lines)
    parser = LogParser()
    points: list[MetricPoint] = []
    for pos in range(0, len(text), chunk):
        points.extend(parser.feed(text[pos : pos + chunk]))
    return points


@settings(max_examples=1500, deadline=None)
@given(_step_colon_line, st.sampled_from(["", "\n"]))
def test_fast_regex_matches_like_its_plain_spelling(line: str, newline: str) -> None:
    _assert_regexes_agree(line + newline)  # `$` also matches before a final newline


@settings(max_examples=1500, deadline=None)
@given(_any_line)
def test_parse_line_matches_the_plain_reference(line: str) -> None:
    assert repr(parse_line(line)) == repr(_reference_parse(line))


@settings(max_examples=300, deadline=None)
@given(st.lists(_any_line, max_size=30), st.integers(min_value=1, max_value=200))
def test_fed_lines_give_the_points_of_the_plain_reference(lines: list[str], chunk: int) -> None:
    """The hot loop's direct match of `step:` lines gives what the plain per-line reference gives."""
    lines = [line.replace("\r", "") for line in lines]  # \r-folded lines take the other path, tested above
    expected = [p for p in map(_reference_parse, lines) if p is not None]
    assert [repr(p) for p in _fed_points(lines, chunk)] == [repr(p) for p in expected]


@pytest.mark.parametrize("line", _EDGE_LINES)
def test_edge_lines_parse_like_the_plain_reference(line: str) -> None:
    _assert_regexes_agree(line)
    expected = _reference_parse(line)
    assert repr(parse_line(line)) == repr(expected)
    assert [repr(p) for p in _fed_points([line], 64)] == ([] if expected is None else [repr(expected)])


@settings(max_examples=300, deadline=None)
@given(st.lists(_any_line, max_size=30))
def test_nan_seen_matches_the_plain_reference(lines: list[str]) -> None:
    parser = LogParser()
    parser.feed("".join(line.replace("\r", "") + "\n" for line in lines))
    expected = [p for p in (_reference_parse(line.replace("\r", "")) for line in lines) if p is not None]
    assert parser.nan_seen == any(map(_reference_is_bad_loss, expected))


_loss = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))


@given(_loss, _loss)
def test_is_bad_loss_matches_the_plain_reference(val_loss: float | None, train_loss: float | None) -> None:
    point = MetricPoint(1, 2, val_loss, train_loss, None, None)
    assert is_bad_loss(point) is _reference_is_bad_loss(point)
