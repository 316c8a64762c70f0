"""How much faster or slower than the record: the one wording every screen and report uses.

A module of its own so that the run table and the chart can import it without the baselines store (its
imports cost the app's first frame ~35 ms)."""

from __future__ import annotations


def speedup_text(reference_s: float | None, achieved_s: float | None) -> str:
    """'1.7× faster' / '1.3× slower' than the reference time, 'same as record' within 0.5 %, or '—'."""
    if not reference_s or achieved_s is None or achieved_s <= 0 or reference_s <= 0:
        return "—"
    ratio = reference_s / achieved_s
    if abs(ratio - 1) < 0.005:
        return "same as record"
    factor = ratio if ratio > 1 else 1 / ratio
    shown = f"{factor:.1f}" if factor < 10 else f"{factor:.0f}"
    if shown == "1.0":
        shown = f"{factor:.2f}"
    return f"{shown}× {'faster' if ratio > 1 else 'slower'}"
