"""Metric points parsed from training logs; shared by runs, tracks, the UI chart and compare."""

from __future__ import annotations

from typing import Any, NamedTuple


class MetricPoint(NamedTuple):
    """One parsed log line: a validation line (val_loss set) or a training line.

    A named tuple, not a dataclass: the parser makes one per metric line, and a frozen dataclass's __init__ was
    a quarter of a metric line's parsing cost. (Unlike a plain tuple of numbers, a named tuple stays tracked by
    the garbage collector; the app freezes long-lived objects out of full collections, ui/collector.py.)"""

    step: int
    total_steps: int | None = None
    val_loss: float | None = None
    train_loss: float | None = None
    train_time_ms: float | None = None
    step_avg_ms: float | None = None

    @property
    def is_val(self) -> bool:
        return self.val_loss is not None

    def to_event_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self._asdict().items() if v is not None}

    @classmethod
    def from_event_fields(cls, data: dict[str, Any]) -> "MetricPoint":
        return cls(
            step=int(data["step"]),
            total_steps=data.get("total_steps"),
            val_loss=data.get("val_loss"),
            train_loss=data.get("train_loss"),
            train_time_ms=data.get("train_time_ms"),
            step_avg_ms=data.get("step_avg_ms"),
        )


def time_to_target_ms(points: list[MetricPoint], target: float) -> float | None:
    """Training time of the first validation point at or below the target, or None."""
    for point in points:
        if point.val_loss is not None and point.val_loss <= target and point.train_time_ms is not None:
            return point.train_time_ms
    return None
