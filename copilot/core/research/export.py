"""Shareable archives of sessions: rewritten event logs plus each workspace as a git bundle, optionally anonymised.

Archive layout (.tar.gz, member times 0, no owner names):

    speedcopilot-export/manifest.json
    speedcopilot-export/sessions/<id>/events.jsonl
    speedcopilot-export/sessions/<id>/workspace.bundle      (`git clone <bundle>` gives the workspace back)

Secrets are removed in every mode (DESIGN §4: never in exports): `sk-…`/`ghp_…`/`hf_…`/AWS keys, Bearer and
Authorization values, `api_key = …` style assignments, private key blocks, and any event field whose name is
secret-like (api_key, authorization, password, *_token, …).

With `anonymize=True` also:
- participant ids become `p-<first 12 hex of sha256(salt:id)>` (stable within one export, or across exports
  that pass the same salt; a random salt is used and not stored when none is given);
- host names, user names (from home paths, the exporting account and git authors), git author names, emails,
  home folders (→ `~`), the session/workspace folders (→ `<session>`, `<workspace>`) are replaced;
  other absolute paths in prose fields become `<path>/<basename>`. Code-carrying fields (hunks' search/replace,
  edited_replace, raw_text) and file contents in the bundle get every rule except the generic absolute-path
  rule, so code still applies and runs;
- the workspace history is rebuilt commit by commit with author and committer "anonymous" (times kept,
  time zones set to +0000), scrubbed messages, file contents and git notes; commit ids in events and in
  messages (e.g. `Reverts:` trailers) are mapped to the new ids.
"""

from __future__ import annotations

import getpass
import hashlib
import io
import json
import os
import re
import secrets
import socket
import subprocess
import tarfile
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from copilot.core.errors import SessionNotFoundError, SpeedcopilotError
from copilot.core.session.events import EVENTS_FILE, Event, read_events

ARCHIVE_ROOT = "speedcopilot-export"
EXPORT_FORMAT_VERSION = 1
WORKSPACE_DIR = "workspace"
ANONYMOUS = "anonymous"

# Fields whose strings are code: scrubbed without the generic absolute-path rule.
CODE_FIELDS = frozenset({"search", "replace", "edited_replace", "raw_text", "diff", "patch", "code", "script"})
# Fields dropped outright (compared lower-case); plus any name ending in one of _SECRET_SUFFIXES.
SECRET_FIELDS = frozenset(
    {"api_key", "apikey", "authorization", "auth", "password", "passwd", "secret", "token", "access_token",
     "refresh_token", "bearer", "x-api-key", "client_secret", "auth_token", "session_token", "cookie"}
)
_SECRET_SUFFIXES = ("_api_key", "_apikey", "_secret", "_password", "_token")
# Identity fields: value replaced by a placeholder (schema kept) when anonymising.
_IDENTITY_FIELDS = {
    "hostname": "<host>", "host_name": "<host>", "fqdn": "<host>", "node": "<host>",
    "user": "<user>", "username": "<user>", "login": "<user>", "home": "~",
    "email": "<email>", "author": ANONYMOUS, "author_name": ANONYMOUS, "author_email": "<email>",
    "committer": ANONYMOUS, "workspace": "<workspace>", "session_dir": "<session>", "cwd": "<path>",
    "runner_url": "<runner>",  # ssh://user@host/path names a machine and an account
}
# Account names that identify nobody (and are common words): never replaced as user names.
_GENERIC_ACCOUNTS = frozenset(
    {"root", "user", "users", "admin", "ubuntu", "debian", "test", "tests", "dev", "runner", "ec2-user",
     "jovyan", "nobody", "guest", "speedcopilot", "anonymous", "home", "data", "localhost", "git", "main"}
)


# --------------------------------------------------------------------------------------------------
# Text scrubbing
# --------------------------------------------------------------------------------------------------
_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), "<secret>"),
    (re.compile(r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)(?:(?:bearer|basic|token)\s+)?[^\s,;'\"]+"),
     r"\1<secret>"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1<secret>"),
    (re.compile(r"(?i)\b([\w-]*api[_-]?key[\"']?\s*[:=]\s*[\"']?)[^\s\"',;)]+"), r"\1<secret>"),
    (re.compile(r"(?i)\b((?:password|passwd|client_secret)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;)]+"), r"\1<secret>"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "<secret>"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"), "<secret>"),
    (re.compile(r"\bhf_[A-Za-z0-9]{20,}"), "<secret>"),
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "<secret>"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"), "<secret>"),
]
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_HOME = re.compile(r"(?:/home|/Users)/([A-Za-z0-9._-]+)|(?<![\w.-])/root(?=/|\b)|[A-Za-z]:\\Users\\([^\\\s\"']+)")
# An absolute POSIX path of two or more parts that starts a token (after a space, quote, '=', '(', ...).
_ABS_PATH = re.compile(r"(?<![^\s'\"`=:(\[{,<>])/(?:[\w.@+~-]+/)+([\w.@+~-]*)")
_WIN_PATH = re.compile(r"\b[A-Za-z]:\\(?:[^\\\s\"'<>|]+\\)+([^\\\s\"'<>|]*)")
_SHA = re.compile(r"\b[0-9a-f]{40}\b")
_HEX = re.compile(r"[0-9a-f]+")


def participant_hash(participant: str, salt: str) -> str:
    return "p-" + hashlib.sha256(f"{salt}:{participant}".encode("utf-8")).hexdigest()[:12]


@dataclass
class Scrubber:
    """Rewrites strings; counts what it replaced by category in `counts`."""

    anonymize: bool = True
    salt: str = ""
    participants: set[str] = field(default_factory=set)
    hosts: set[str] = field(default_factory=set)
    users: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # people's names (git authors)
    literal_paths: dict[str, str] = field(default_factory=dict)  # absolute path -> placeholder
    sha_map: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self._literal_rules: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str], str]] = []

    def compile(self) -> None:
        """Build the literal rules from the collected names (call after filling the sets)."""
        rules: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str], str]] = []
        for path, placeholder in sorted(self.literal_paths.items(), key=lambda kv: -len(kv[0])):
            rules.append((re.compile(re.escape(path.rstrip("/")) + r"(?![\w.-])"), _const(placeholder), "paths"))
        for name in sorted(self.names, key=len, reverse=True):
            rules.append((_word(name), _const(ANONYMOUS), "names"))
        for pid in sorted(self.participants, key=len, reverse=True):
            rules.append((_word(pid), _const(participant_hash(pid, self.salt)), "participants"))
        for host in sorted(self.hosts, key=len, reverse=True):
            rules.append((_word(host, ignore_case=True), _const("<host>"), "hosts"))
        for user in sorted(self.users, key=len, reverse=True):
            rules.append((_word(user), _const("<user>"), "users"))
        self._literal_rules = rules

    # -- strings --------------------------------------------------------------------------------
    def text(self, value: str, code: bool = False) -> str:
        value = self._secrets(value)
        if self.sha_map:
            value = _SHA.sub(lambda m: self.sha_map.get(m.group(0), m.group(0)), value)
        if not self.anonymize:
            return value
        value = self._sub(_EMAIL, "<email>", value, "emails")
        for pattern, replace, category in self._literal_rules:
            if category == "paths":
                value = self._sub(pattern, replace, value, category)
        value = self._sub(_HOME, "~", value, "paths")
        if not code:
            value = self._sub(_ABS_PATH, lambda m: f"<path>/{m.group(1)}", value, "paths")
            value = self._sub(_WIN_PATH, lambda m: f"<path>\\{m.group(1)}", value, "paths")
        for pattern, replace, category in self._literal_rules:
            if category != "paths":
                value = self._sub(pattern, replace, value, category)
        return value

    def _secrets(self, value: str) -> str:
        for pattern, replacement in _SECRET_PATTERNS:
            value = self._sub(pattern, replacement, value, "secrets")
        return value

    def _sub(self, pattern: re.Pattern[str], replacement: Any, value: str, category: str) -> str:
        new, n = pattern.subn(replacement, value)
        if n:
            self.counts[category] += n
        return new

    def map_commit_id(self, value: str) -> str | None:
        """The new id of an old commit id, full or abbreviated (7+ hex digits, unambiguous); else None."""
        if not self.sha_map or not 7 <= len(value) <= 40 or not _HEX.fullmatch(value):
            return None
        if value in self.sha_map:
            return self.sha_map[value]
        hits = [new for old, new in self.sha_map.items() if old.startswith(value)]
        return hits[0][: len(value)] if len(hits) == 1 else None

    # -- event data -----------------------------------------------------------------------------
    def value(self, value: Any, key: str | None = None, code: bool = False) -> Any:
        if isinstance(value, str):
            mapped = self.map_commit_id(value)
            return mapped if mapped is not None else self.text(value, code=code)
        if isinstance(value, dict):
            return self.mapping(value, code)
        if isinstance(value, list):
            return [self.value(item, key, code) for item in value]
        return value

    def mapping(self, data: dict[str, Any], code: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, inner in data.items():
            lower = str(key).lower()
            if lower in SECRET_FIELDS or lower.endswith(_SECRET_SUFFIXES):
                self.counts["secret_fields"] += 1
                continue
            if self.anonymize and lower == "participant" and isinstance(inner, str) and inner:
                out[key] = participant_hash(inner, self.salt)
                self.counts["participants"] += 1
                continue
            if self.anonymize and lower in _IDENTITY_FIELDS and isinstance(inner, str) and inner:
                out[key] = _IDENTITY_FIELDS[lower]
                self.counts["hosts" if _IDENTITY_FIELDS[lower] == "<host>" else "identity_fields"] += 1
                continue
            out[key] = self.value(inner, key, code or lower in CODE_FIELDS)
        return out


def _const(text: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: text


def _word(literal: str, ignore_case: bool = False) -> re.Pattern[str]:
    return re.compile(r"(?<![\w])" + re.escape(literal) + r"(?![\w])", re.I if ignore_case else 0)


# --------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------
@dataclass
class SessionExport:
    source: str  # the session folder's name on this machine (not written to the archive when anonymised)
    archived_as: str
    events: int
    bundle: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class ExportReport:
    out_path: Path
    anonymized: bool
    salt_random: bool
    sessions: list[SessionExport]
    scrubbed: dict[str, int]  # category -> number of replacements
    problems: list[str]

    @property
    def exported(self) -> int:
        return len(self.sessions)


def export_sessions(
    session_dirs: Iterable[Path],
    out_path: Path,
    anonymize: bool = True,
    salt: str | None = None,
) -> ExportReport:
    """Write a .tar.gz of the given sessions (events + workspace bundle each). See the module docstring for
    what is scrubbed. Raises SessionNotFoundError when none of the folders holds a session log."""
    dirs = [Path(d) for d in session_dirs]
    problems: list[str] = []
    found: list[Path] = []
    for d in dirs:
        if (d / EVENTS_FILE).is_file():
            found.append(d)
        else:
            problems.append(f"{d.name}: no {EVENTS_FILE}, skipped")
    if not found:
        raise SessionNotFoundError(
            "no session to export: none of the given folders holds an events.jsonl "
            "(list sessions with `speedcopilot sessions`)"
        )
    salt_random = salt is None
    scrubber = Scrubber(anonymize=anonymize, salt=salt if salt is not None else secrets.token_hex(16))
    logs = {d: read_events(d / EVENTS_FILE) for d in found}
    if anonymize:
        _collect_identities(scrubber, logs)
    scrubber.compile()

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(prefix="speedcopilot-export-") as tmp, tarfile.open(partial, "w:gz") as tar:
            exports: list[SessionExport] = []
            for index, session_dir in enumerate(found):
                name = _archive_name(scrubber, session_dir.name, index, {e.archived_as for e in exports})
                result = logs[session_dir]
                exports.append(_export_one(tar, Path(tmp), index, name, session_dir, result.events,
                                           result.problems, scrubber))
            scrubbed = dict(sorted(scrubber.counts.items()))
            _add_bytes(tar, f"{ARCHIVE_ROOT}/manifest.json", _manifest(exports, scrubbed, anonymize, salt_random))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out_path)
    return ExportReport(
        out_path=out_path,
        anonymized=anonymize,
        salt_random=salt_random,
        sessions=exports,
        scrubbed=scrubbed,
        problems=problems,
    )


def _export_one(
    tar: tarfile.TarFile,
    tmp: Path,
    index: int,
    name: str,
    session_dir: Path,
    events: list[Event],
    problems: list[str],
    scrubber: Scrubber,
) -> SessionExport:
    report = SessionExport(source=session_dir.name, archived_as=name, events=len(events), bundle=False,
                           problems=[scrubber.text(p) for p in problems])
    bundle = tmp / f"{index}.bundle"
    scrubber.sha_map = _export_workspace(session_dir / WORKSPACE_DIR, bundle, scrubber, tmp / f"{index}.git",
                                         report.problems)
    lines = [_rewrite_event(scrubber, e) for e in events]
    scrubber.sha_map = {}
    prefix = f"{ARCHIVE_ROOT}/sessions/{name}"
    _add_bytes(tar, f"{prefix}/{EVENTS_FILE}", "".join(line + "\n" for line in lines).encode("utf-8"))
    if bundle.exists():
        _add_bytes(tar, f"{prefix}/workspace.bundle", bundle.read_bytes())
        report.bundle = True
    return report


def _manifest(exports: list[SessionExport], scrubbed: dict[str, int], anonymize: bool, salt_random: bool) -> bytes:
    manifest = {
        "format": EXPORT_FORMAT_VERSION,
        "anonymized": anonymize,
        "participant_salt": None if not anonymize else ("random, not stored" if salt_random else "provided"),
        "sessions": [
            {"id": s.archived_as, "events": s.events, "bundle": s.bundle, "problems": s.problems} for s in exports
        ],
        "scrubbed": scrubbed,
    }
    return (json.dumps(manifest, indent=2) + "\n").encode("utf-8")


def _collect_identities(scrubber: Scrubber, logs: dict[Path, Any]) -> None:
    """Gather the literal names to replace: participants, hosts, users, git authors, session paths."""
    try:
        scrubber.users.add(getpass.getuser())
    except (KeyError, OSError):
        pass
    scrubber.hosts.add(socket.gethostname())
    home = os.path.expanduser("~")
    if home not in ("", "/", "~"):
        scrubber.literal_paths[home] = "~"
    for session_dir, result in logs.items():
        scrubber.literal_paths[str(session_dir.resolve())] = "<session>"
        scrubber.literal_paths[str(session_dir.absolute())] = "<session>"
        for event in result.events:
            _collect_from_value(scrubber, event.data)
        raw = (session_dir / EVENTS_FILE).read_text(encoding="utf-8", errors="replace")
        for match in _HOME.finditer(raw):
            scrubber.users.add(match.group(1) or match.group(2) or "")
        for name, email in _git_identities(session_dir / WORKSPACE_DIR):
            scrubber.names.add(name)
            local = email.split("@", 1)[0]
            scrubber.users.add(local)
    for group in (scrubber.hosts, scrubber.users, scrubber.names):
        for item in list(group):
            if len(item) < 3 or item.lower() in _GENERIC_ACCOUNTS:
                group.discard(item)
    scrubber.hosts |= {h.split(".", 1)[0] for h in scrubber.hosts if len(h.split(".", 1)[0]) >= 3}
    scrubber.hosts = {h for h in scrubber.hosts if h.lower() not in _GENERIC_ACCOUNTS}
    scrubber.participants = {p for p in scrubber.participants if len(p) >= 2}


def _collect_from_value(scrubber: Scrubber, value: Any) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            lower = str(key).lower()
            if isinstance(inner, str) and inner:
                if lower == "participant":
                    scrubber.participants.add(inner)
                elif lower in ("hostname", "host_name", "fqdn", "node"):
                    scrubber.hosts.add(inner)
                elif lower in ("user", "username", "login"):
                    scrubber.users.add(inner)
                elif lower == "workspace" and inner.startswith("/"):
                    scrubber.literal_paths[inner] = "<workspace>"
            else:
                _collect_from_value(scrubber, inner)
    elif isinstance(value, list):
        for inner in value:
            _collect_from_value(scrubber, inner)


def _archive_name(scrubber: Scrubber, name: str, index: int, used: set[str]) -> str:
    clean = re.sub(r"[^\w.-]+", "_", scrubber.text(name)).strip("._") or f"session-{index + 1}"
    return f"{clean}-{index + 1}" if clean in used else clean


def _rewrite_event(scrubber: Scrubber, event: Event) -> str:
    """The event through its typed body (unknown fields kept in `extra`), every value scrubbed."""
    data = scrubber.mapping(event.data if event.type == "metric" else event.body.to_dict())
    return Event(seq=event.seq, t=event.t, type=event.type, data=data).to_json()


def _add_bytes(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    tar.addfile(info, io.BytesIO(payload))


# --------------------------------------------------------------------------------------------------
# Git: rebuild the workspace history with scrubbed identities, messages, contents and notes
# --------------------------------------------------------------------------------------------------
class _Git:
    """Runs git with no user or system configuration (so nothing of the exporting account leaks in)."""

    def __init__(self, repo: Path, env: dict[str, str] | None = None) -> None:
        self.repo = repo
        self.env = {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            **(env or {}),
        }

    def run(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
        done = subprocess.run(
            ["git", *args], cwd=self.repo, input=input, capture_output=True,
            env={**self.env, **(env or {})}, check=False,
        )
        if done.returncode != 0:
            raise SpeedcopilotError(
                f"git {' '.join(args[:2])} failed in {self.repo.name}: {done.stderr.decode(errors='replace').strip()}"
            )
        return done.stdout

    def text(self, *args: str, **kwargs: Any) -> str:
        return self.run(*args, **kwargs).decode("utf-8", errors="replace")


def _is_repo(path: Path) -> bool:
    return (path / ".git").exists() or (path / "HEAD").is_file() and (path / "objects").is_dir()


def _git_identities(workspace: Path) -> set[tuple[str, str]]:
    if not _is_repo(workspace):
        return set()
    try:
        out = _Git(workspace).text("log", "--all", "--format=%an%x00%ae%x00%cn%x00%ce")
    except SpeedcopilotError:
        return set()
    identities: set[tuple[str, str]] = set()
    for line in out.splitlines():
        parts = line.split("\x00")
        if len(parts) == 4:
            identities.add((parts[0], parts[1]))
            identities.add((parts[2], parts[3]))
    return identities


def _export_workspace(
    workspace: Path, bundle: Path, scrubber: Scrubber, scratch: Path, problems: list[str]
) -> dict[str, str]:
    """Write the rebuilt workspace history to `bundle`; returns old commit id -> new commit id."""
    if not _is_repo(workspace):
        problems.append("no workspace git repository: exported without a bundle")
        return {}
    try:
        return _rebuild_and_bundle(_Git(workspace), bundle, scrubber, scratch)
    except SpeedcopilotError as exc:
        problems.append(f"workspace not bundled: {scrubber.text(str(exc))}")
        bundle.unlink(missing_ok=True)
        return {}


def _rebuild_and_bundle(src: _Git, bundle: Path, scrubber: Scrubber, scratch: Path) -> dict[str, str]:
    refs = [line.split(" ", 2) for line in src.text("for-each-ref", "--format=%(objectname) %(objecttype) %(refname)",
                                                     "refs/heads", "refs/tags", "refs/notes").splitlines() if line]
    history_refs = [r for r in refs if not r[2].startswith("refs/notes/")]
    if not history_refs:
        raise SpeedcopilotError("the workspace has no commits")
    subprocess.run(["git", "init", "-q", "--bare", str(scratch)], check=True, capture_output=True,
                   env={**src.env})
    dst = _Git(scratch)
    sha_map: dict[str, str] = {}
    scrubber.sha_map = sha_map  # filled as commits are rebuilt: messages may name ancestors ("Reverts: <id>")
    tips = sorted({_peel(src, sha) for sha, _kind, _ref in history_refs})
    order = src.text("rev-list", "--topo-order", "--reverse", *tips).split()
    blob_map: dict[str, str] = {}
    for old in order:
        sha_map[old] = _rebuild_commit(src, dst, old, sha_map, blob_map, scrubber)
    for sha, kind, ref in history_refs:
        if kind == "tag":
            _rebuild_tag(src, dst, sha, ref, sha_map, scrubber)
        elif sha in sha_map:
            dst.run("update-ref", ref, sha_map[sha])
    for _sha, _kind, ref in refs:
        if ref.startswith("refs/notes/"):
            _rebuild_notes(src, dst, ref, sha_map, scrubber)
    head = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], cwd=src.repo, capture_output=True, text=True,
                          env=src.env).stdout.strip()
    if head and any(ref == head for _s, _k, ref in history_refs):
        dst.run("symbolic-ref", "HEAD", head)
    dst.run("bundle", "create", str(bundle), "--all")
    return sha_map


def _peel(src: _Git, sha: str) -> str:
    return src.text("rev-parse", f"{sha}^{{commit}}").strip()


def _rebuild_commit(
    src: _Git, dst: _Git, old: str, sha_map: dict[str, str], blob_map: dict[str, str], scrubber: Scrubber
) -> str:
    headers, message = _split_object(src.run("cat-file", "commit", old))
    entries = src.run("ls-tree", "-r", "-z", "--full-tree", old).split(b"\x00")
    index_lines: list[bytes] = []
    for entry in entries:
        if not entry:
            continue
        meta, path = entry.split(b"\t", 1)
        mode, kind, sha = meta.decode().split(" ")
        if kind == "blob":
            if sha not in blob_map:
                blob_map[sha] = _copy_blob(src, dst, sha, scrubber)
            sha = blob_map[sha]
        index_lines.append(f"{mode} {sha}\t".encode() + path + b"\x00")
    index_file = dst.repo / "export-index"
    index_file.unlink(missing_ok=True)
    env = {"GIT_INDEX_FILE": str(index_file)}
    dst.run("update-index", "-z", "--add", "--index-info", input=b"".join(index_lines), env=env)
    tree = dst.text("write-tree", env=env).strip() if index_lines else dst.text(
        "mktree", input=b"").strip()
    parents: list[str] = []
    for value in headers.get("parent", []):
        parents += ["-p", sha_map.get(value, value)]
    ident_env = _identity_env(headers, scrubber)
    text = message.decode("utf-8", errors="replace")
    new_message = scrubber.text(text)
    if new_message != text:
        scrubber.counts["git_messages"] += 1
    return dst.text("commit-tree", tree, *parents, "-F", "-", input=new_message.encode("utf-8"),
                    env=ident_env).strip()


def _copy_blob(src: _Git, dst: _Git, sha: str, scrubber: Scrubber) -> str:
    content = src.run("cat-file", "blob", sha)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        new_content = content  # binary: kept as is
    else:
        new_text = scrubber.text(text, code=True)
        if new_text != text:
            scrubber.counts["git_files"] += 1
        new_content = new_text.encode("utf-8")
    return dst.text("hash-object", "-w", "--stdin", input=new_content).strip()


_IDENT = re.compile(r"^(?P<name>.*?) <(?P<email>[^>]*)> (?P<when>\d+) (?P<tz>[+-]\d{4})$")


def _identity_env(headers: dict[str, list[str]], scrubber: Scrubber) -> dict[str, str]:
    env: dict[str, str] = {}
    for role, prefix in (("author", "GIT_AUTHOR"), ("committer", "GIT_COMMITTER")):
        match = _IDENT.match(headers.get(role, [""])[0])
        if match is None:
            env.update({f"{prefix}_NAME": ANONYMOUS, f"{prefix}_EMAIL": "", f"{prefix}_DATE": "@0 +0000"})
            continue
        if scrubber.anonymize:
            if (match["name"], match["email"]) != (ANONYMOUS, ""):
                scrubber.counts["git_identities"] += 1
            env.update({f"{prefix}_NAME": ANONYMOUS, f"{prefix}_EMAIL": "",
                        f"{prefix}_DATE": f"@{match['when']} +0000"})
        else:
            env.update({f"{prefix}_NAME": match["name"], f"{prefix}_EMAIL": match["email"],
                        f"{prefix}_DATE": f"@{match['when']} {match['tz']}"})
    return env


def _split_object(raw: bytes) -> tuple[dict[str, list[str]], bytes]:
    head, _sep, message = raw.partition(b"\n\n")
    headers: dict[str, list[str]] = {}
    last: str | None = None
    for line in head.decode("utf-8", errors="replace").split("\n"):
        if line.startswith(" ") and last is not None:
            continue  # continuation of a multi-line header (gpgsig): signatures are dropped
        key, _space, value = line.partition(" ")
        headers.setdefault(key, []).append(value)
        last = key
    return headers, message


def _rebuild_tag(src: _Git, dst: _Git, sha: str, ref: str, sha_map: dict[str, str], scrubber: Scrubber) -> None:
    headers, message = _split_object(src.run("cat-file", "tag", sha))
    target = sha_map.get(_peel(src, sha))
    if target is None:
        return
    name = ref.removeprefix("refs/tags/")
    text = message.decode("utf-8", errors="replace").split("-----BEGIN PGP SIGNATURE-----")[0]
    tagger = _identity_env({"committer": headers.get("tagger", [""])}, scrubber)
    dst.run("tag", "-a", name, target, "-F", "-", input=scrubber.text(text).encode("utf-8"), env=tagger)


def _rebuild_notes(src: _Git, dst: _Git, ref: str, sha_map: dict[str, str], scrubber: Scrubber) -> None:
    env = {"GIT_AUTHOR_NAME": ANONYMOUS, "GIT_AUTHOR_EMAIL": "", "GIT_AUTHOR_DATE": "@0 +0000",
           "GIT_COMMITTER_NAME": ANONYMOUS, "GIT_COMMITTER_EMAIL": "", "GIT_COMMITTER_DATE": "@0 +0000"}
    for line in src.text("notes", "--ref", ref, "list").splitlines():
        note_blob, _space, annotated = line.partition(" ")
        target = sha_map.get(annotated.strip())
        if target is None:
            continue
        text = src.text("cat-file", "blob", note_blob)
        dst.run("notes", "--ref", ref, "add", "-f", "-F", "-", target,
                input=scrubber.text(text).encode("utf-8"), env=env)
