"""Tracks: ladders of records. `build_track` picks and builds one by name."""

from __future__ import annotations

from pathlib import Path

from copilot.core.errors import TrackError
from copilot.core.tracks.base import RecordInfo, Track

TRACK_NAMES = ("micro", "nanogpt")


def build_track(name: str, *, data_dir: Path | None = None, cache_dir: Path | None = None,
                hints_dir: Path | None = None) -> Track:
    """Build a track by name; "auto" = nanogpt when CUDA GPUs and synced records exist, else micro."""
    if name == "auto":
        name = auto_track_name(cache_dir)
    if name == "micro":
        from copilot.core.tracks.micro import MicroTrack

        return MicroTrack(data_dir=data_dir)
    if name == "nanogpt":
        from copilot.core.tracks.nanogpt import NanoGPTTrack

        return NanoGPTTrack(cache_dir=cache_dir, hints_dir=hints_dir, data_dir=data_dir)
    raise TrackError(f"unknown track {name!r}; choose one of: {', '.join(TRACK_NAMES)}")


def auto_track_name(cache_dir: Path | None = None) -> str:
    from copilot.core.tracks.nanogpt import NanoGPTTrack, detect_gpus

    if detect_gpus() and NanoGPTTrack(cache_dir=cache_dir).is_synced():
        return "nanogpt"
    return "micro"


__all__ = ["RecordInfo", "Track", "TRACK_NAMES", "build_track", "auto_track_name"]
