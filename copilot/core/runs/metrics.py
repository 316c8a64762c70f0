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


# The script's train time may exceed the runner's wall time by this much before its timer is doubted: the wall
# clock's ends can be coarse (SLURM's EndTime is in whole seconds, a file's mtime is the end of a write).
TIMER_SLACK_RATIO = 1.02
TIMER_SLACK_S = 0.5


def timer_runs_fast(wall_time_s: float | None, train_time_ms: float | None) -> bool:
    """True when the script claims more training time than the process lived, beyond the clocks' slack."""
    if wall_time_s is None or train_time_ms is None:
        return False
    return train_time_ms / 1000.0 > wall_time_s * TIMER_SLACK_RATIO + TIMER_SLACK_S


def time_to_target_ms(points: list[MetricPoint], target: float) -> float | None:
    """Training time of the first validation point at or below the target, or None."""
    for point in points:
        if point.val_loss is not None and point.val_loss <= target and point.train_time_ms is not None:
            return point.train_time_ms
    return None
