"""Review gaps: an edited hunk's @@ header gives the script's line numbers, the 80-column footer keeps help and quit
while hunks wait for decisions, and the loss projection's edge cases (too few points, past its horizon)."""

from __future__ import annotations

import difflib
import math
from pathlib import Path

import pytest
from textual.widgets import TextArea

from copilot.core.edits import Hunk
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session.schema import HunkDecision
from copilot.ui.app import CopilotApp
from copilot.ui.view import Preview
from copilot.ui.widgets.hunk_card import HunkCard, card_lines
from copilot.ui.widgets.loss_chart import PROJECTION_HORIZON, project_time_to_target
from tests.support.ui import FakeClock, ask_for_suggestion, footer_line, live_session, screen_text, wait_until


def headers(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("@@")]


def whole_file_headers(old: str, new: str) -> list[str]:
    """The @@ headers of a plain unified diff of the whole script: the line numbers a human would check against."""
    return headers(list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=3)))


SCRIPT = "".join(f"line_{n} = {n}\n" for n in range(1, 81))  # line N of the script reads "line_N = N"


def script_lines(first: int, last: int) -> str:
    return "".join(f"line_{n} = {n}\n" for n in range(first, last + 1))


@pytest.mark.parametrize(
    ("replacement", "expected"),
    [
        # one line changed deep in a 10-line SEARCH (lines 33..42): the change is at line 37
        (script_lines(33, 36) + "line_37 = 370\n" + script_lines(38, 42), "@@ -34,7 +34,7 @@"),
        # the edit turns line 37 into three lines: the new side is two lines longer
        (script_lines(33, 36) + "a = 1\nb = 2\nc = 3\n" + script_lines(38, 42), "@@ -34,7 +34,9 @@"),
        # the edit drops lines 37 and 38
        (script_lines(33, 36) + script_lines(39, 42), "@@ -34,8 +34,6 @@"),
    ],
    ids=["same-length", "grows", "shrinks"],
)
def test_edited_hunk_header_gives_the_scripts_line_numbers(replacement: str, expected: str) -> None:
    """A card showing the human's edit of a hunk that matches at line 33 heads its diff with the lines of the
    change in the script (what a whole-file diff says), not with the hunk's own 1-based numbers."""
    search = script_lines(33, 42)
    assert SCRIPT.count(search) == 1
    hunk = Hunk(index=0, path="train_gpt.py", search=search, replace=search.replace("= 37\n", "= 99\n"))
    decision = HunkDecision(0, "edit", edited_replace=replacement)
    preview = Preview(lines=[" " + line for line in search.splitlines()], first_line=33)
    lines = card_lines(hunk, decision, preview)
    assert headers(lines) == [expected]
    assert headers(lines) == whole_file_headers(SCRIPT, SCRIPT.replace(search, replacement))
    assert "+line_37 = 370" in lines or "-line_37 = 37" in lines  # the edit is what the card shows


def test_edited_hunk_header_at_a_short_match_deep_in_the_file() -> None:
    """A 4-line SEARCH at line 37, edited: headed @@ -37,4 +37,4 @@ (or +37,5 when a line is added), never
    @@ -1,4 +1,4 @@."""
    search = script_lines(37, 40)
    hunk = Hunk(index=0, path="train_gpt.py", search=search, replace=search)
    preview = Preview(lines=[" " + line for line in search.splitlines()], first_line=37)
    same = card_lines(hunk, HunkDecision(0, "edit", edited_replace=search.replace("= 38\n", "= 0\n")), preview)
    grown = card_lines(hunk, HunkDecision(0, "edit", edited_replace=search.replace("= 38\n", "= 38\nextra = 1\n")),
                       preview)
    assert headers(same) == ["@@ -37,4 +37,4 @@"]
    assert headers(grown) == ["@@ -37,4 +37,5 @@"]


async def test_editing_a_hunk_in_the_app_heads_its_card_with_the_scripts_lines(tmp_path: Path) -> None:
    """In a live session, `e` on the oracle's third hunk (DECAY, deep in the script) and an edit that adds a line:
    the card's @@ header says where that is in the working copy's script."""
    app = CopilotApp(live_session(tmp_path), clock=FakeClock())
    async with app.run_test(size=(100, 30)) as pilot:
        hunks = await ask_for_suggestion(pilot)
        view = app.state.current_suggestion
        assert view is not None
        target = next(h for h in hunks if "DECAY" in h.search)
        await wait_until(pilot, lambda: (view.id, target.index) in app.ui.previews
                         and app.ui.script_text != "", what="the hunk's preview and the script")
        script = app.ui.script_text
        old = target.search.splitlines()
        all_lines = script.splitlines()
        starts = [i + 1 for i in range(len(all_lines)) if all_lines[i:i + len(old)] == old]
        assert len(starts) == 1 and starts[0] > 1  # found once, not at the top of the file
        first = starts[0]
        position = [h.index for h in hunks].index(target.index)
        for _ in range(position):
            await pilot.press("down")
        await wait_until(pilot, lambda: app.ui.selected_hunk == position and isinstance(app.focused, HunkCard)
                         and app.focused.hunk.index == target.index, what="the DECAY hunk selected")
        await pilot.press("e")
        await wait_until(pilot, lambda: app.screen.query("#edit-area"), what="the edit dialog")
        area = app.screen.query_one("#edit-area", TextArea)
        edited = target.replace.replace("DECAY = 0.94", "DECAY = 0.9") + "EXTRA = 1\n"
        area.load_text(edited)
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: any(d.action == "edit" for d in app.ui.staged.values()),
                         what="the edit staged")
        card = app.screen.query_one(f".hunk-{target.index}", HunkCard)
        want = f"@@ -{first},{len(old)} +{first},{len(edited.splitlines())} @@"
        await wait_until(pilot, lambda: headers(list(card.lines)) == [want],
                         what=f"the card headed {want} (it has {headers(list(card.lines))})")
        await wait_until(pilot, lambda: want in screen_text(app), what="the header on screen")
        await app.close_and_exit(False)


async def test_footer_at_80_columns_keeps_help_and_quit_while_hunks_wait(tmp_path: Path) -> None:
    """A live co-pilot session at 80×24 with a suggestion's hunks waiting for decisions: the footer shows the hunk
    keys and still the way to help (?) and out (q)."""
    app = CopilotApp(live_session(tmp_path), clock=FakeClock())
    async with app.run_test(size=(80, 24)) as pilot:
        await ask_for_suggestion(pilot)
        view = app.state.current_suggestion
        assert view is not None and view.undecided
        await wait_until(pilot, lambda: "a Accept" in footer_line(app), what="the hunk keys in the footer")
        await wait_until(pilot, lambda: "? Help" in footer_line(app) and "q Quit" in footer_line(app),
                         what=f"help and quit in the footer (it reads {footer_line(app)!r})")
        await app.close_and_exit(False)


def val_points(times_ms: list[float], losses: list[float]) -> list[MetricPoint]:
    return [MetricPoint(step=i + 1, val_loss=v, train_time_ms=t) for i, (t, v) in enumerate(zip(times_ms, losses))]


def test_projection_needs_three_val_points() -> None:
    """Two val points of a steeply falling curve are not a trend: no projection; a third point gives one."""
    times, losses = [100.0, 200.0, 300.0], [8.0, 4.0, 8.0 * 3.0 ** -1.0]  # loss = 800 / t
    assert project_time_to_target(val_points(times[:2], losses[:2]), 2.0) is None
    # the same two points among train-only lines are still two
    mixed = val_points(times[:2], losses[:2]) + [MetricPoint(step=9, train_loss=1.0, train_time_ms=250.0)]
    assert project_time_to_target(mixed, 2.0) is None
    projected = project_time_to_target(val_points(times, losses), 2.0)
    assert projected is not None and math.isclose(projected, 400.0, rel_tol=1e-6)


def test_projection_past_the_horizon_is_refused_not_capped() -> None:
    """A slowly falling curve whose power-law crossing lies far past 3× the time so far gets no projection (None,
    as documented: refused, not clamped to the horizon); one just inside the horizon is projected as fitted."""
    assert PROJECTION_HORIZON == 3.0
    # loss = 4 * t^-0.01: reaching 2.0 takes t = 2^100 ms, far beyond 3 × 300 ms
    slow = val_points([100.0, 200.0, 300.0], [4.0 * t ** -0.01 for t in (100.0, 200.0, 300.0)])
    assert project_time_to_target(slow, 2.0) is None
    # loss = 10 * t^-0.5 reaches the target at t = 100 / target^2: just inside (890 ms) and just past (910 ms) 900
    times = [100.0, 200.0, 300.0]
    curve = val_points(times, [10.0 * t ** -0.5 for t in times])
    inside = project_time_to_target(curve, 10.0 / math.sqrt(890.0))
    assert inside is not None and math.isclose(inside, 890.0, rel_tol=1e-6)
    assert project_time_to_target(curve, 10.0 / math.sqrt(910.0)) is None
    # whatever the target, an answer never lies past the horizon
    for target in (2.0, 1.0, 0.5, 0.34, 0.33, 0.1):
        answer = project_time_to_target(curve, target)
        assert answer is None or answer <= PROJECTION_HORIZON * times[-1] * (1 + 1e-9)


def test_ordinary_falling_curve_gets_a_sensible_projection() -> None:
    """A curve falling like a real run (last four val points of six) is projected past the last point, inside the
    horizon, where its power-law fit crosses the target."""
    times = [100.0 * k for k in range(1, 7)]
    losses = [6.0 * t ** -0.3 for t in times]
    target = 6.0 * 1200.0 ** -0.3  # the curve reaches it at 1200 ms: twice the time so far
    projected = project_time_to_target(val_points(times, losses), target)
    assert projected is not None and math.isclose(projected, 1200.0, rel_tol=1e-6)
    assert times[-1] < projected <= PROJECTION_HORIZON * times[-1]
