"""UI-free session engine: events, workspace, edits, providers, runs, tracks, compare.

Nothing in this package imports Textual or torch.
"""
