"""The git-versioned working copy of one session: seeded from a record, one commit per accepted change.

Commits carry provenance trailers; run results are attached as git notes (refs/notes/runs) because a commit
cannot change after the fact. Undo is a revert commit; branching never moves a branch backwards, so no commit
is ever lost.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import git

from copilot.core.edits.paths import confine
from copilot.core.errors import WorkspaceError

MAIN_BRANCH = "main"
RUNS_NOTES_REF = "refs/notes/runs"
_AUTHOR = git.Actor("speedcopilot", "speedcopilot@localhost")


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    parents: tuple[str, ...]
    message: str
    trailers: dict[str, str]
    branches: tuple[str, ...]
    timestamp: int

    @property
    def parent(self) -> str | None:
        return self.parents[0] if self.parents else None

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


class Workspace:
    def __init__(self, repo: git.Repo) -> None:
        self.repo = repo
        self.path = Path(repo.working_tree_dir or ".")
        self._watch_stop: Callable[[], None] | None = None

    # -- creation ---------------------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, files: Mapping[str, str], message: str, trailers: Mapping[str, str]) -> "Workspace":
        if path.exists() and any(path.iterdir()):
            raise WorkspaceError(f"{path} already exists and is not empty; pick another session folder")
        path.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(path, initial_branch=MAIN_BRANCH)
        with repo.config_writer() as cw:
            cw.set_value("user", "name", _AUTHOR.name)
            cw.set_value("user", "email", _AUTHOR.email)
            cw.set_value("core", "autocrlf", "false")
        ws = cls(repo)
        ws._write_files(files)
        ws.repo.index.add(sorted(files))
        ws._commit(message, trailers)
        return ws

    @classmethod
    def open(cls, path: Path) -> "Workspace":
        try:
            workspace = cls(git.Repo(path))
        except (git.NoSuchPathError, git.InvalidGitRepositoryError):
            raise WorkspaceError(f"{path} is not a speedcopilot workspace (no git repository)") from None
        try:
            workspace.head_sha()
        except (ValueError, AssertionError, OSError, git.BadName, git.BadObject) as exc:
            raise WorkspaceError(
                f"the git repository of the workspace {path} is damaged: its HEAD leads to no commit "
                f"({type(exc).__name__}{': ' + str(exc) if str(exc) else ''}), e.g. after a disk error; "
                f"`git -C {path} fsck` shows what is left"
            ) from None
        return workspace

    # -- reading ----------------------------------------------------------------------------
    def head_sha(self) -> str:
        return self.repo.head.commit.hexsha

    def branch(self) -> str:
        if self.repo.head.is_detached:
            return "(detached)"
        return self.repo.active_branch.name

    def read(self, relpath: str, sha: str | None = None) -> str:
        if sha is None:
            return (self.path / relpath).read_text()
        try:
            blob = self.repo.commit(sha).tree / relpath
        except KeyError:
            raise WorkspaceError(f"{relpath} does not exist in commit {sha[:10]}") from None
        return blob.data_stream.read().decode("utf-8")

    def tracked_files(self, sha: str | None = None) -> dict[str, str]:
        tree = self.repo.commit(sha or "HEAD").tree
        return {b.path: b.data_stream.read().decode("utf-8") for b in tree.traverse() if b.type == "blob"}

    def is_dirty(self) -> bool:
        return self.repo.is_dirty(untracked_files=True)

    def dirty_diff(self) -> str:
        """Unified diff of uncommitted changes (untracked files listed by name)."""
        diff = self.repo.git.diff("HEAD")
        untracked = self.repo.untracked_files
        if untracked:
            diff += "".join(f"\n(untracked) {name}" for name in untracked)
        return diff

    def diff(self, a: str, b: str | None = None) -> str:
        return self.repo.git.diff(a, b or "HEAD")

    def commit_info(self, sha: str) -> CommitInfo:
        commit = self.repo.commit(sha)
        return self._info(commit, self._branch_heads())

    def log(self) -> list[CommitInfo]:
        """Every commit on every branch, oldest first."""
        heads = self._branch_heads()
        commits = {c.hexsha: c for c in self.repo.iter_commits("--all")}
        ordered = sorted(commits.values(), key=lambda c: (c.committed_date, c.hexsha))
        return [self._info(c, heads) for c in ordered]

    def branches(self) -> list[str]:
        return [h.name for h in self.repo.heads]

    # -- writing ----------------------------------------------------------------------------
    def require_clean(self) -> None:
        if self.is_dirty():
            raise WorkspaceError(
                f"the working copy {self.path} has uncommitted changes; commit them as a human edit "
                "(press E in the app, or `git -C <workspace> commit`) or discard them, then try again"
            )

    def commit_files(self, files: Mapping[str, str], message: str, trailers: Mapping[str, str]) -> str:
        """Write files and commit them as one change. Refuses on a dirty tree, never half-writes."""
        self.require_clean()
        targets = {name: confine(self.path, name) for name in files}  # before anything is touched
        originals = {name: path.read_text() if path.exists() else None for name, path in targets.items()}
        try:
            self._write_files(files)
            self.repo.index.add(sorted(files))
            return self._commit(message, trailers)
        except Exception:
            self._restore(originals)
            raise

    def commit_working_tree(self, message: str, trailers: Mapping[str, str]) -> str:
        """Commit whatever the human changed in the working copy (external editor)."""
        if not self.is_dirty():
            raise WorkspaceError("nothing to commit: the working copy matches the last commit")
        self.repo.git.add("--all")
        return self._commit(message, trailers)

    def revert_head(self, trailers: Mapping[str, str]) -> str:
        """Undo the last change with a new commit restoring its parent's files."""
        self.require_clean()
        head = self.repo.head.commit
        if not head.parents:
            raise WorkspaceError("nothing to undo: this is the record's starting commit")
        parent = head.parents[0]
        self.repo.git.checkout(parent.hexsha, "--", ".")
        removed = set(self.tracked_files(head.hexsha)) - set(self.tracked_files(parent.hexsha))
        for name in removed:
            self.repo.index.remove([name], working_tree=True)
        self.repo.git.add("--all")
        return self._commit(f"Undo: {head.summary}", {**trailers, "Reverts": head.hexsha})

    def branch_from(self, sha: str, name: str | None = None) -> str:
        """Check out a new branch at sha (an earlier attempt); existing branches stay where they are."""
        self.require_clean()
        name = name or self._free_branch_name()
        if name in self.branches():
            raise WorkspaceError(f"branch {name} already exists")
        self.repo.create_head(name, sha).checkout()
        return name

    def switch(self, branch: str) -> str:
        self.require_clean()
        if branch not in self.branches():
            raise WorkspaceError(f"no branch {branch}; branches: {', '.join(self.branches())}")
        self.repo.heads[branch].checkout()
        return self.head_sha()

    def add_run_note(self, sha: str, text: str) -> None:
        self.repo.git.notes("--ref", RUNS_NOTES_REF, "append", "-m", text, sha)

    def run_notes(self, sha: str) -> str:
        try:
            return self.repo.git.notes("--ref", RUNS_NOTES_REF, "show", sha)
        except git.GitCommandError:
            return ""

    # -- external edits ---------------------------------------------------------------------
    def watch(self, on_change: Callable[[Path], None]) -> Callable[[], None]:
        """Call on_change(path) when a tracked file changes on disk (watchdog); returns a stop function."""
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        workspace_root = self.path.resolve()

        stopped = threading.Event()

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if stopped.is_set():
                    return
                path = Path(str(event.src_path)).resolve()
                try:
                    inside = path.relative_to(workspace_root).parts
                except ValueError:  # a symlinked file that resolves outside the workspace
                    return
                if ".git" in inside or event.is_directory:
                    return
                if event.event_type in ("modified", "created", "moved", "deleted"):
                    on_change(path)

        observer = Observer()
        handler = _Handler()
        for folder in _folders_outside_git(workspace_root):
            # one flat watch per folder: a recursive one would also watch .git, and every object git writes
            # (each commit, each run's worktree) would wake this thread and contend for the GIL with the UI
            try:
                observer.schedule(handler, str(folder), recursive=False)
            except OSError:  # removed since the walk, or the inotify watch limit reached: not watched
                continue
        observer.daemon = True
        observer.start()

        def stop() -> None:
            """No callback after this returns; the observer winds down on a thread of its own: its stop joins
            the inotify reader, which would block the caller (the app's loop, when a driver hands over)."""
            stopped.set()
            threading.Thread(target=observer.stop, name="workspace-watch-stop", daemon=True).start()

        return stop

    # -- internals --------------------------------------------------------------------------
    def _write_files(self, files: Mapping[str, str]) -> None:
        for name, text in files.items():
            target = confine(self.path, name)  # defence in depth: the parser checked the path already
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def _restore(self, originals: Mapping[str, str | None]) -> None:
        for name, text in originals.items():
            target = confine(self.path, name)
            if text is None:
                target.unlink(missing_ok=True)
            else:
                target.write_text(text)
        self.repo.index.reset()

    def _commit(self, message: str, trailers: Mapping[str, str]) -> str:
        full = message.rstrip() + "\n"
        if trailers:
            full += "\n" + "".join(f"{k}: {v}\n" for k, v in trailers.items())
        commit = self.repo.index.commit(full, author=_AUTHOR, committer=_AUTHOR)
        self._make_durable(commit)
        return commit.hexsha

    def _make_durable(self, commit: git.Commit) -> None:
        """fsync what a commit wrote (its loose objects, the branch ref, HEAD, the index). GitPython writes them
        without: a disk error or power cut within the kernel's writeback delay would lose a commit that the
        session log (fsync'd per event) already names, and leave a branch pointing at nothing."""
        git_dir = Path(self.repo.git_dir)
        paths = [git_dir / "HEAD", git_dir / "index"]
        if not self.repo.head.is_detached:
            paths.append(git_dir / self.repo.head.ref.path)
        for sha in [commit.hexsha, commit.tree.hexsha, *(o.hexsha for o in commit.tree.traverse())]:
            loose = git_dir / "objects" / sha[:2] / sha[2:]
            if loose.exists():
                paths.append(loose)
        _fsync(paths)

    def _branch_heads(self) -> dict[str, list[str]]:
        heads: dict[str, list[str]] = {}
        for head in self.repo.heads:
            heads.setdefault(head.commit.hexsha, []).append(head.name)
        return heads

    def _info(self, commit: git.Commit, heads: dict[str, list[str]]) -> CommitInfo:
        message = commit.message if isinstance(commit.message, str) else commit.message.decode()
        return CommitInfo(
            sha=commit.hexsha,
            parents=tuple(p.hexsha for p in commit.parents),
            message=message,
            trailers=parse_trailers(message),
            branches=tuple(heads.get(commit.hexsha, [])),
            timestamp=commit.committed_date,
        )

    def _free_branch_name(self) -> str:
        existing = set(self.branches())
        n = 1
        while f"attempt-{n}" in existing:
            n += 1
        return f"attempt-{n}"


def _folders_outside_git(root: Path) -> list[Path]:
    """The workspace's folders, .git and symlinked folders (nanogpt's data link) left out; taken when the watch
    starts (a folder created later is not watched)."""
    folders, pending = [], [root]
    while pending:
        folder = pending.pop()
        folders.append(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        pending.extend(Path(e.path) for e in entries
                       if e.name != ".git" and e.is_dir(follow_symlinks=False))
    return folders


def _fsync(paths: list[Path]) -> None:
    """Sync each file, then each folder holding one (so the new names survive too)."""

    folders: dict[Path, None] = {}
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        folders[path.parent] = None
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def parse_trailers(message: str) -> dict[str, str]:
    """`Key: value` lines of the last paragraph of a commit message."""
    paragraphs = [p for p in message.strip().split("\n\n") if p.strip()]
    if len(paragraphs) < 2:
        return {}
    trailers: dict[str, str] = {}
    for line in paragraphs[-1].splitlines():
        key, sep, value = line.partition(": ")
        if not sep or " " in key:
            return {}
        trailers[key] = value.strip()
    return trailers
