"""The app's key map: one table feeds the bindings, the footer, the help screen and the command palette."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class KeyAction:
    keys: str  # comma-separated Textual key names
    action: str  # app action name (without "action_")
    description: str  # short, for the footer
    group: str  # help screen section
    help: str  # longer text for help and the palette
    show: bool = True  # shown in the footer
    palette: bool = True  # offered in the command palette
    priority: bool = False  # checked before the focused widget (a replay's space and arrows)


KEYMAP: tuple[KeyAction, ...] = (
    KeyAction("s", "suggest", "Suggest", "Suggestion", "Ask the model for a suggestion (optional instruction)"),
    KeyAction("a", "accept", "Accept", "Suggestion", "Accept the selected hunk"),
    KeyAction("x", "reject", "Reject", "Suggestion", "Reject the selected hunk"),
    KeyAction("e", "edit_hunk", "Edit", "Suggestion", "Edit the selected hunk's replacement before it lands"),
    KeyAction("f", "feedback", "Why", "Suggestion", "Reject the selected hunk with feedback for the model"),
    KeyAction("A", "accept_all", "All", "Suggestion", "Accept every undecided hunk", show=False),
    KeyAction("X", "reject_all", "None", "Suggestion", "Reject every undecided hunk", show=False),
    KeyAction("j", "next_hunk", "Next hunk", "Suggestion", "Select the next hunk", show=False),
    KeyAction("k", "prev_hunk", "Prev hunk", "Suggestion", "Select the previous hunk", show=False),
    KeyAction("c", "apply", "Apply", "Suggestion",
              "Apply the decisions: accepted and edited hunks become one commit (also enter on a hunk)"),
    KeyAction("g", "goto_hunk", "Go to lines", "Script", "Show the script lines the selected hunk touches",
              show=False),
    KeyAction("d", "toggle_diff", "Diff", "Script", "Toggle the script and its diff against the starting record",
              show=False),
    KeyAction("E,ctrl+e", "external_edit", "$EDITOR", "Script", "Edit the working copy in $EDITOR, then commit it",
              show=False),
    KeyAction("W", "check_edits", "Check edits", "Script",
              "Look for uncommitted edits to the working copy and offer to commit them", show=False),
    KeyAction("r", "run", "Run", "Runs", "Train the current commit"),
    KeyAction("K", "cancel_run", "Cancel run", "Runs", "Cancel the selected run (ctrl+c in the runs pane)",
              show=False),
    KeyAction("B", "measure_baseline", "Baseline", "Runs",
              "Time records N and N+1 on this machine, so FSR and 'vs record' compare like with like", show=False),
    KeyAction("p", "pin_run", "Pin", "Runs", "Pin or unpin the selected run on the loss chart", show=False),
    KeyAction("u", "undo", "Undo", "History", "Undo the last commit (a revert commit; nothing is lost)",
              show=False),
    KeyAction("b", "checkout", "Branch", "History", "Check out the selected commit on a new branch", show=False),
    KeyAction("n", "note", "Note", "Session", "Add a note to the session log", show=False),
    KeyAction("t", "cycle_theme", "Theme", "Session", "Switch to the next colour theme", show=False),
    KeyAction("1", "pane('suggestion')", "Suggestion", "Panes", "Show the suggestion pane", show=False),
    KeyAction("2", "pane('script')", "Script", "Panes", "Show the script pane", show=False),
    KeyAction("3", "pane('runs')", "Runs", "Panes", "Show the runs pane", show=False),
    KeyAction("4", "pane('chart')", "Chart", "Panes", "Show the loss chart", show=False),
    KeyAction("5", "pane('history')", "History", "Panes", "Show the attempt history", show=False),
    KeyAction("P", "agent_pause", "Pause agent", "Agent", "Autonomous mode: pause or resume the agent"),
    KeyAction("T", "take_over", "Take over", "Agent",
              "Autonomous mode: stop the agent and continue the session yourself (co-pilot mode)"),
    KeyAction("H", "hand_back", "Hand back", "Agent",
              "After a take-over: give the session back to the agent, which goes on with its search"),
    KeyAction("space", "toggle_pause", "Play/pause", "Replay", "Replay: play or pause", priority=True),
    KeyAction("n", "next_decision", "Next", "Replay", "Replay: jump to the next suggestion, decision or commit",
              priority=True),
    KeyAction("N", "previous_decision", "Prev", "Replay", "Replay: jump back to the previous decision",
              priority=True),
    KeyAction("left", "seek(-1)", "−10s", "Replay", "Replay: 10 seconds of the session back", priority=True),
    KeyAction("right", "seek(1)", "+10s", "Replay", "Replay: 10 seconds of the session on", priority=True),
    KeyAction("g", "goto", "Go to", "Replay", "Replay: jump to a typed time", priority=True, show=False),
    KeyAction("plus,equals_sign", "faster", "Faster", "Replay", "Replay: twice as fast", priority=True, show=False),
    KeyAction("minus,underscore", "slower", "Slower", "Replay", "Replay: half as fast", priority=True,
              show=False),
    KeyAction("question_mark", "help", "Help", "Session", "Show the key bindings"),
    KeyAction("q", "quit_session", "Quit", "Session", "Quit (asks what to do with live runs)"),
)


def app_bindings() -> list[Binding]:
    return [Binding(k.keys, k.action, k.description, show=k.show, priority=k.priority) for k in KEYMAP]


def display_key(keys: str) -> str:
    names = {"question_mark": "?", "ctrl+e": "ctrl+e", "enter": "enter", "equals_sign": "=", "underscore": "_",
             "plus": "+", "minus": "-", "left": "←", "right": "→"}
    return " / ".join(names.get(k, k) for k in keys.split(","))


EXTRA_KEYS: tuple[tuple[str, str, str], ...] = (
    ("Suggestion", "enter", "Apply the decisions (on a focused hunk)"),
    ("Runs", "ctrl+c", "Cancel the selected run (in the runs pane)"),
    ("Runs", "space", "Pin the selected run on the chart (in the runs table)"),
    ("History", "enter", "Check out the selected commit (in the history tree)"),
    ("Session", "ctrl+p", "Command palette: every action by name"),
    ("Session", "tab / shift+tab", "Move focus between panes and hunks"),
)
