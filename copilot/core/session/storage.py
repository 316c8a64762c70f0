"""The disk under a sessions folder: checked before a command starts, and its faults told in one line.

A command that writes sessions checks up front that its folder exists (or creates it), is a folder, takes a
write and has room for the next writes; a command that only reads checks that it is a folder. Once a session
runs, a write the disk refuses (full, read-only, failing) becomes a StorageError that says what happened and
what to do; nothing already on disk is removed, and a run in progress keeps training.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from copilot.core.errors import StorageError

# The disk, not the program, refused: full (or over quota), read-only, or failing.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
DEFAULT_MIN_FREE_MB = 16.0  # a micro session's workspace, log and run output fit many times over
_PROBE = ".speedcopilot-write-probe"
_GIT_FAULTS = {"No space left on device": errno.ENOSPC, "Read-only file system": errno.EROFS,
               "Disk quota exceeded": errno.EDQUOT, "Input/output error": errno.EIO}


def is_storage_fault(exc: BaseException) -> bool:
    """An OSError the disk caused (full, read-only, I/O error), or a git command that failed for that reason."""
    return fault_errno(exc) is not None


def fault_errno(exc: BaseException) -> int | None:
    if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
        return exc.errno
    stderr = str(getattr(exc, "stderr", "") or "")
    if type(exc).__name__ == "GitCommandError" and stderr:
        for text, number in _GIT_FAULTS.items():
            if text in stderr:
                return number
    return None


def describe_fault(number: int | None) -> str:
    """'No space left on device (ENOSPC)' for an errno."""
    if number is None:
        return "a write failed"
    return f"{os.strerror(number)} ({errno.errorcode.get(number, number)})"


def storage_error(exc: BaseException, what: str, then: str) -> StorageError:
    """'<what>: <the disk's reason>; <then>' as one line."""
    number = fault_errno(exc)
    reason = describe_fault(number) if number is not None else (getattr(exc, "strerror", None) or str(exc))
    where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in what else ""
    return StorageError(f"{what}{where}: {reason}; {then}")


def check_sessions_dir(path: Path, *, write: bool, min_free_mb: float = DEFAULT_MIN_FREE_MB) -> None:
    """Raise StorageError with one line unless `path` can serve as a sessions folder: for `write`, one that takes
    a write (or can be created) on a disk with `min_free_mb` free."""
    if path.exists() and not path.is_dir():
        raise StorageError(f"the sessions folder {path} is a file, not a folder; pass --session-dir with a folder "
                           "(or set SPEEDCOPILOT_SESSION_DIR)")
    if not write:
        if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
            raise StorageError(f"the sessions folder {path} cannot be read (permission denied); check its owner "
                               "and mode, or pass --session-dir")
        return
    if path.is_dir():
        _probe_write(path)
        where = path
    else:
        where = _creatable_from(path)
    free_mb = free_megabytes(where)
    if free_mb is not None and free_mb < min_free_mb:
        raise StorageError(
            f"only {free_mb:.1f} MiB free on the disk of the sessions folder {path}; a session needs at least "
            f"{min_free_mb:g} MiB for its log, workspace and run output: free space, or pass --session-dir on "
            "another disk (the threshold is the min_free_mb setting)"
        )


def _creatable_from(path: Path) -> Path:
    """The nearest existing folder above a sessions folder that does not exist yet, if the folder can be made
    there (nothing is created: a command that only needs an existing session must not leave folders behind)."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise StorageError(f"cannot create the sessions folder {path}: {ancestor} is a file; pass --session-dir "
                           "with a folder")
    if _read_only(ancestor):
        raise StorageError(f"cannot create the sessions folder {path}: {describe_fault(errno.EROFS)} at "
                           f"{ancestor}; pass --session-dir with a folder on a writable disk")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise StorageError(f"cannot create the sessions folder {path}: {ancestor} is not writable (permission "
                           "denied); pass --session-dir with a folder you can write to")
    return ancestor


def _read_only(folder: Path) -> bool:
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def free_megabytes(path: Path) -> float | None:
    try:
        stat = os.statvfs(path)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize / (1024 * 1024)


def _probe_write(folder: Path) -> None:
    """Create, write, sync and remove a small file: the only honest test of "writable" (root passes access())."""
    probe = folder / f"{_PROBE}-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"speedcopilot\n")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        fix = {errno.EROFS: "the disk is mounted read-only", errno.ENOSPC: "free space on that disk",
               errno.EDQUOT: "free space within your quota"}.get(exc.errno, "check the folder's permissions")
        raise StorageError(f"the sessions folder {folder} is not writable: {_reason(exc)}; {fix}, or pass "
                           "--session-dir with another folder") from None
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def _reason(exc: OSError) -> str:
    if exc.errno in STORAGE_ERRNOS:
        return describe_fault(exc.errno)
    return exc.strerror or str(exc)
