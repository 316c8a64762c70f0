"""Errors a user can cause. Each message says what happened and what to do next."""

from __future__ import annotations


class SpeedcopilotError(Exception):
    """Base class for errors shown to the user as a message (no traceback without --debug)."""


class ConfigError(SpeedcopilotError):
    """A configuration file or value is invalid."""


class SessionLockedError(SpeedcopilotError):
    """Another process already writes this session."""


class SessionNotFoundError(SpeedcopilotError):
    """No session with that id in the sessions folder."""


class WorkspaceError(SpeedcopilotError):
    """The git workspace is in a state we refuse to touch (dirty tree, missing repo, ...)."""


class EditParseError(SpeedcopilotError):
    """Model output holds no usable edit blocks, or malformed ones."""


class EditApplyError(SpeedcopilotError):
    """An edit block does not apply to the current script (missing or ambiguous match)."""


class ProviderError(SpeedcopilotError):
    """The LLM endpoint failed: auth, rate limit, server error, timeout, bad response."""


class ProviderExhausted(ProviderError):
    """The provider has nothing (more) to propose: the offline oracle once its known change is applied."""


class RunError(SpeedcopilotError):
    """A training run could not be started, attached or cancelled."""


class TrackError(SpeedcopilotError):
    """Unknown track or record, missing data, unsynced upstream records."""


class StorageError(SpeedcopilotError):
    """The disk refused a write the session needs (full, read-only, failing), or the sessions folder is unusable."""
