"""Pure helpers behind the UI widgets: downsampling, projection fit, diff lines, log folding, themes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from copilot.core.errors import ConfigError
from copilot.core.runs.metrics import MetricPoint
from copilot.core.session.projection import SessionState
from copilot.ui.themes import load_theme_file, load_themes, theme_from_mapping
from copilot.ui.widgets.diff_view import diff_stats, hunk_diff_lines, line_kind, text_diff_lines
from copilot.ui.widgets.history_tree import run_summary
from copilot.ui.widgets.log_tail import LogBuffers, fold_cr, read_tail
from copilot.ui.widgets.loss_chart import downsample, project_time_to_target
from copilot.ui.widgets.run_table import RunTable, run_row
from tests.support.ui import sample_events, wait_until


def test_downsample_bounds_points_keeps_ends_and_spikes() -> None:
    xs = [float(i) for i in range(10_000)]
    ys = [1.0] * 10_000
    ys[5_123] = 9.0  # a loss spike must survive
    out_x, out_y = downsample(xs, ys, 200)
    assert len(out_x) <= 201
    assert out_x[0] == 0.0 and out_x[-1] == 9_999.0
    assert 9.0 in out_y
    assert out_x == sorted(out_x)


def test_downsample_leaves_short_series_alone() -> None:
    assert downsample([1.0, 2.0], [3.0, 4.0], 100) == ([1.0, 2.0], [3.0, 4.0])


def test_projection_of_a_power_law_curve_finds_the_crossing() -> None:
    # loss = 10 * t^-0.5 reaches 2.0 at t = 25 (ms units are arbitrary here)
    points = [MetricPoint(step=i, val_loss=10 * t ** -0.5, train_time_ms=t) for i, t in enumerate([1.0, 4.0, 9.0])]
    projected = project_time_to_target(points, 2.0)
    assert projected is not None and math.isclose(projected, 25.0, rel_tol=1e-6)


@pytest.mark.parametrize(
    "losses",
    [[5.0], [5.0, 5.5, 6.0], [3.0, 1.5]],  # too few points, rising curve, already below target
)
def test_projection_refuses_when_it_cannot_say(losses: list[float]) -> None:
    points = [MetricPoint(step=i, val_loss=v, train_time_ms=100.0 * (i + 1)) for i, v in enumerate(losses)]
    assert project_time_to_target(points, 2.0) is None


def test_hunk_diff_lines_and_kinds() -> None:
    lines = hunk_diff_lines("a = 1\nb = 2\n", "a = 1\nb = 3\n")
    assert lines[0].startswith("@@")
    assert "-b = 2" in lines and "+b = 3" in lines and " a = 1" in lines
    assert diff_stats(lines) == (1, 1)
    assert [line_kind(x) for x in ("+++ b", "--- a", "@@ -1 +1 @@", "+x", "-y", " z")] == [
        "header", "header", "hunk", "added", "removed", "context"]
    full = text_diff_lines("x\n", "y\n", "start", "head")
    assert full[:2] == ["--- start", "+++ head"] and diff_stats(full) == (1, 1)


def test_fold_cr_shows_what_a_terminal_shows() -> None:
    assert fold_cr("10%\r50%\r100%") == "100%"
    assert fold_cr("done\r") == "done"
    assert fold_cr("plain") == "plain"


def test_log_buffers_bound_lines_and_hand_out_pending_once() -> None:
    buffers = LogBuffers(max_lines=100)
    for i in range(250):
        buffers.append("r1", f"line {i}\n")
    buffers.append("r2", "other")
    assert buffers.lines("r1")[0] == "line 150" and len(buffers.lines("r1")) == 100
    pending = buffers.take_pending("r1")
    assert pending[-1] == "line 249" and len(pending) == 100
    assert buffers.take_pending("r1") == [] and buffers.take_pending("r2") == []  # others dropped
    assert buffers.total == 251


def test_log_buffers_keep_what_a_terminal_shows_of_a_progress_line() -> None:
    buffers = LogBuffers()
    buffers.append("r1", "step 1/3\rstep 2/3\rstep 3/3\r\n")
    assert buffers.lines("r1") == ["step 3/3"] and buffers.take_pending("r1") == ["step 3/3"]


def test_a_burst_reaches_the_pane_in_batches_oldest_first_with_every_kept_line() -> None:
    buffers = LogBuffers(max_lines=100)
    for i in range(230):
        buffers.append("r1", f"line {i}")
    batches = []
    while buffers.has_pending():
        batches.append(buffers.take_pending("r1", limit=40))
    assert [len(b) for b in batches] == [40, 40, 20]  # the 100 kept lines, 40 a flush
    assert [line for b in batches for line in b] == [f"line {i}" for i in range(130, 230)]
    buffers.append("r1", "late")
    buffers.append("r2", "other")
    assert buffers.take_pending("r2", limit=40) == ["other"] and not buffers.has_pending()  # r1's dropped


def test_read_tail_reads_only_the_end(tmp_path: Path) -> None:
    path = tmp_path / "output.log"
    path.write_text("".join(f"step {i}\r step {i} done\n" for i in range(50_000)))
    tail = read_tail(path, max_bytes=10_000, max_lines=50)
    assert len(tail) == 50 and tail[-1] == " step 49999 done"
    assert read_tail(tmp_path / "missing.log") == []


def test_run_row_and_history_summary_from_projection() -> None:
    state = SessionState.from_events(sample_events(live_run=True))
    done, live = state.runs["r1"], state.runs["r2"]
    row = run_row(done, state.record_time_s)
    assert row[:4] == ("r1", "aaaaaaa", "reached_target", "20/20")
    assert row[6] == "1.5s" and row[7] == "8.3× faster (cat.)"  # 12.5 s catalogue record time / 1.5 s
    assert run_row(live, state.record_time_s)[2] == "running"
    assert "r1: ✓ target in 1.5s" in run_summary([done]) and "r2: running" in run_summary([live])


async def test_a_row_drawn_before_the_table_measured_its_columns_is_redrawn_at_the_measured_widths() -> None:
    """The run table's columns are measured when its queue runs empty; a row drawn before that (a loaded machine,
    a frame between the flush and Idle) was kept at the header's widths: "reache" for "reached_target"."""
    from textual.app import App, ComposeResult

    class TableApp(App):
        def compose(self) -> ComposeResult:
            yield RunTable()

    state = SessionState.from_events(sample_events(live_run=True))
    app = TableApp()
    async with app.run_test(size=(120, 8)) as pilot:
        table = app.query_one(RunTable)
        await wait_until(pilot, lambda: table.size.width > 0 and len(table.columns) == 8, what="the table mounted")
        table.sync(list(state.runs.values()), state.record_time_s)
        early = table.render_line(1).text  # drawn in the same turn as the rows were added: nothing measured yet
        assert "reached_target" not in early
        await wait_until(pilot, lambda: not table._require_update_dimensions, what="the columns measured")
        assert "reached_target" in table.render_line(1).text and "bbbbbbb" in table.render_line(2).text


def test_shipped_themes_load_with_chart_colours() -> None:
    themes = {t.name: t for t in load_themes()}
    assert {"speedcopilot-dark", "speedcopilot-light", "speedcopilot-high-contrast"} <= set(themes)
    assert themes["speedcopilot-light"].dark is False
    for theme in themes.values():
        assert {"chart-val", "chart-train", "chart-reference", "chart-target", "chart-projection"} <= set(
            theme.variables)


def test_user_theme_folder_overrides_and_bad_theme_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text('name = "speedcopilot-dark"\nprimary = "#ff0000"\n')
    themes = {t.name: t for t in load_themes(tmp_path)}
    assert themes["speedcopilot-dark"].primary == "#ff0000"
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n')
    with pytest.raises(ConfigError, match="primary"):
        load_theme_file(bad)
    with pytest.raises(ConfigError, match="name"):
        theme_from_mapping({"primary": "#000000"})


def test_every_key_map_entry_is_an_app_action_and_in_the_palette() -> None:
    from copilot.ui.app import CopilotApp
    from copilot.ui.keys import KEYMAP

    names = set()
    for item in KEYMAP:
        name = item.action.split("(")[0]
        assert callable(getattr(CopilotApp, f"action_{name}", None)), f"no action_{name} for key {item.keys}"
        assert item.palette and item.help
        names.add(name)
    from copilot.ui.drivers import AGENT_ACTIONS, REPLAY_ACTIONS, SESSION_ACTIONS

    always = [i for i in KEYMAP if i.action.split("(")[0] not in SESSION_ACTIONS | AGENT_ACTIONS | REPLAY_ACTIONS]
    for driver_actions in (SESSION_ACTIONS, AGENT_ACTIONS, REPLAY_ACTIONS):  # a key means one thing per driver
        items = always + [i for i in KEYMAP if i.action.split("(")[0] in driver_actions]
        keys = [k for item in items for k in item.keys.split(",")]
        assert len(keys) == len(set(keys)), f"a key is bound twice: {sorted(keys)}"
    assert {"suggest", "accept", "reject", "edit_hunk", "feedback", "accept_all", "reject_all", "apply", "run",
            "cancel_run", "undo", "checkout", "external_edit", "cycle_theme", "help", "quit_session"} <= names
