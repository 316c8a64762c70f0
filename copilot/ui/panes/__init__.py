"""The panes of the main screen. Each renders itself from the View in a StateUpdated message (view.py)."""
