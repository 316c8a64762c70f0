"""export: a fixture session full of planted secrets, names, hosts and paths; the archive must hold none of them,
must still compare to the same numbers, and its git bundle must clone back."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from copilot.core.research.compare import summarize_session
from copilot.core.errors import SessionNotFoundError
from copilot.core.research.export import ARCHIVE_ROOT, Scrubber, export_sessions, participant_hash
from copilot.core.session import schema as s
from copilot.core.session.events import read_events
from tests.support.eventlog_builder import SessionBuilder, git, make_workspace

KEY = "sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX1234abcd"
BEARER = "eyJhbGciOiJIUzI1NiJ9.payload.sig123"
EMAIL = "alice.smith@uni.example.edu"
HOST = "alice-laptop.corp.example"
USER = "asmith"
PARTICIPANT = "alice.smith"
AUTHOR = "Alice Smith"
LAB_PATH = "/data/alice_lab/fineweb"
GH_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4"

# Must not appear anywhere in the anonymised archive (events, manifest, every git object).
PLANTED = [KEY, "sk-proj", BEARER, EMAIL, "uni.example.edu", HOST, "alice-laptop", USER, PARTICIPANT, AUTHOR,
           "Alice", "alice_lab", "/home/", GH_TOKEN, "hunter2"]


def build_fixture_session(root: Path, name: str = "alice.smith-2026-01-05") -> Path:
    session = root / name
    commits = make_workspace(
        session,
        [
            ({"train_gpt.py": "lr = 1e-3\nsteps = 100\n"}, "Seed from record 3\n\nRecord: 3\n", {}),
            ({"train_gpt.py": f"lr = 1e-2\nsteps = 100\n# contact {EMAIL}\nKEY = '{KEY}'\n"},
             f"Apply suggestion s1\n\nSuggestion: s1\nProvenance: ai+human-edit\nSigned-off-by: {AUTHOR} <{EMAIL}>\n",
             {"GIT_AUTHOR_NAME": AUTHOR, "GIT_AUTHOR_EMAIL": EMAIL,
              "GIT_COMMITTER_NAME": AUTHOR, "GIT_COMMITTER_EMAIL": EMAIL,
              "GIT_AUTHOR_DATE": "2026-01-05T10:00:00+0100", "GIT_COMMITTER_DATE": "2026-01-05T10:00:00+0100"}),
        ],
        notes={1: f"run r1 by {PARTICIPANT} on {HOST}: val 1.28 (token {GH_TOKEN})"},
    )
    ws = session / "workspace"
    (ws / "train_gpt.py").write_text("lr = 1e-3\nsteps = 100\n", encoding="utf-8")
    git(ws, "commit", "-qam", f"Undo: Apply suggestion s1\n\nReverts: {commits[1]}\n")
    commits.append(git(ws, "rev-parse", "HEAD").strip())
    git(ws, "tag", "-a", "best", commits[1], "-m", f"best run, tagged by {AUTHOR}",
        env={"GIT_COMMITTER_NAME": AUTHOR, "GIT_COMMITTER_EMAIL": EMAIL})
    home_ws = f"/home/{USER}/speedcopilot/sessions/{name}/workspace"

    b = SessionBuilder(session, participant=PARTICIPANT, record=3, record_time_s=100.0, next_record_time_s=60.0,
                       host={"hostname": HOST, "platform": "Linux-6.1-x86_64", "cpu": "AMD EPYC", "python": "3.11"},
                       workspace=home_ws, study={"name": "pilot", "participant": PARTICIPANT, "position": 0})
    sid = b.suggestion(hunks=1, raw_text=f"Use Muon.\n```\nlr = 1e-2\n```\nI found your key {KEY} in the env",
                       rationale=f"As discussed with {AUTHOR}, Muon helps.")
    b.decide(sid, 0, "edit", edited_replace="lr = 1e-2  # per alice.smith\n",
             feedback=f"mail me at {EMAIL}", seconds=7.0)
    b.feedback(sid, f"logs are in {LAB_PATH}/run1 and /home/{USER}/notes.txt")
    b.commit(sid, sha=commits[1], parent=commits[0], provenance="ai+human-edit",
             message=f"Apply suggestion s1 ({AUTHOR})")
    b.run(commits[1], final_val_loss=1.28, time_to_target_ms=80_000,
          command=[f"/home/{USER}/.venv/bin/python", "train_gpt.py"])
    b.commit(None, sha=commits[2], parent=commits[1], provenance="human", message="Undo")
    b.emit(s.SuggestionFailed(suggestion_id="s2", error=f"401 from server: Authorization: Bearer {BEARER}",
                              prompt_tokens=0, completion_tokens=0, cost_usd=0.0))
    b.note(f"ssh -l {USER} {HOST} password: hunter2; short host alice-laptop; pasted api_key={KEY}")
    b.end()
    # lines EventLog itself refuses to write (secret-named keys), as an older or buggy writer might have
    with open(session / "events.jsonl", "a", encoding="utf-8") as handle:
        last = b.log._seq
        handle.write(json.dumps({"v": 1, "seq": last + 1, "t": b.clock.now + 1, "type": "note", "text": "cfg",
                                 "provider_config": {"api_key": KEY, "Authorization": f"Bearer {BEARER}",
                                                     "base_url": "http://127.0.0.1:8000/v1"}}) + "\n")
        handle.write(json.dumps({"v": 1, "seq": last + 2, "t": b.clock.now + 2, "type": "note",
                                 "openai_api_key": KEY, "text": f"by {AUTHOR} from {session}"}) + "\n")
    return session


def extract(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            assert member.uname == "" and member.gname == "" and member.mtime == 0
            assert not member.name.startswith("/") and ".." not in member.name
        tar.extractall(dest, filter="data")
    return dest / ARCHIVE_ROOT


def all_git_objects(bundle: Path, dest: Path) -> str:
    """Every object in the bundle (commits, tags, trees, blobs, notes), as text."""
    repo = dest / "objects.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "fetch", "-q", str(bundle), "refs/*:refs/*"], check=True)
    out = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch-all-objects", "--batch"],
                         check=True, capture_output=True)
    return out.stdout.decode("utf-8", errors="replace")


def test_anonymised_export_removes_everything_planted(tmp_path: Path) -> None:
    session = build_fixture_session(tmp_path / "sessions")
    original = summarize_session(session)
    report = export_sessions([session], tmp_path / "out" / "export.tar.gz", anonymize=True, salt="s3cret-salt")
    assert report.exported == 1 and report.anonymized and not report.salt_random
    assert report.sessions[0].bundle and report.sessions[0].events == len(read_events(session / "events.jsonl").events)
    for category in ("secrets", "secret_fields", "emails", "paths", "hosts", "users", "participants", "names",
                     "git_identities", "git_messages", "git_files"):
        assert report.scrubbed.get(category, 0) > 0, category

    root = extract(report.out_path, tmp_path / "x")
    hashed = participant_hash(PARTICIPANT, "s3cret-salt")
    exported = root / "sessions" / f"{hashed}-2026-01-05"
    assert exported.is_dir()
    texts = {p: p.read_text(encoding="utf-8") for p in root.rglob("*") if p.is_file() and p.suffix != ".bundle"}
    texts[exported / "git-objects"] = all_git_objects(exported / "workspace.bundle", tmp_path)
    for path, text in texts.items():
        for planted in PLANTED + [str(tmp_path)]:
            assert planted not in text, f"{planted!r} left in {path.name}"

    events = read_events(exported / "events.jsonl")
    assert events.problems == []
    started = events.events[0]
    assert started.get("participant") == hashed and started.get("study")["participant"] == hashed
    assert started.get("host") == {"hostname": "<host>", "platform": "Linux-6.1-x86_64", "cpu": "AMD EPYC",
                                   "python": "3.11"}
    assert started.get("workspace") == "<workspace>"
    run = next(e for e in events.events if e.type == "run_started")
    assert run.get("command") == ["~/.venv/bin/python", "train_gpt.py"]
    notes = [e for e in events.events if e.type == "note"]
    assert notes[0].get("text") == "feedback on s1: logs are in <path>/run1 and ~/notes.txt"
    note = notes[1]
    assert "ssh -l <user> <host>" in note.get("text") and "password: <secret>" in note.get("text")
    cfg = notes[2]
    assert cfg.get("provider_config") == {"base_url": "http://127.0.0.1:8000/v1"}
    # code fields keep their code
    received = next(e for e in events.events if e.type == "suggestion_received")
    assert received.get("hunks")[0]["replace"] == "lr = 0e-2\n"
    assert "```\nlr = 1e-2\n```" in received.get("raw_text") and "<secret>" in received.get("raw_text")
    decided = next(e for e in events.events if e.type == "suggestion_decided")
    assert decided.body.decisions[0].edited_replace == f"lr = 1e-2  # per {hashed}\n"
    assert decided.body.decisions[0].feedback == "mail me at <email>"

    # the research numbers survive the rewrite
    row = summarize_session(exported)
    for column in ("fsr", "best_time_to_target_s", "suggestions", "suggestions_failed", "hunks_edited",
                   "median_decision_time_s", "runs", "cost_usd", "wall_time_s", "significant_commits"):
        assert getattr(row, column) == getattr(original, column), column
    assert row.participant == hashed and row.fsr == pytest.approx(0.5)


def test_bundle_clones_back_with_mapped_commit_ids(tmp_path: Path) -> None:
    session = build_fixture_session(tmp_path / "sessions")
    report = export_sessions([session], tmp_path / "export.tar.gz", salt="x")
    root = extract(report.out_path, tmp_path / "x")
    exported = next((root / "sessions").iterdir())
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(exported / "workspace.bundle"), str(clone)], check=True)
    assert (clone / "train_gpt.py").read_text(encoding="utf-8") == "lr = 1e-3\nsteps = 100\n"
    log = git(clone, "log", "--all", "--format=%H|%P|%an|%ae|%cn|%ce|%ai|%s")
    rows = [line.split("|") for line in log.splitlines()]
    assert len(rows) == 3
    assert {(r[2], r[3], r[4], r[5]) for r in rows} == {("anonymous", "", "anonymous", "")}
    assert all(r[6].endswith("+0000") for r in rows)
    # commit times are kept (the planted +0100 commit was 09:00 UTC)
    assert any(r[6].startswith("2026-01-05 09:00:00") for r in rows)
    new_ids = {r[0] for r in rows}
    events = read_events(exported / "events.jsonl").events
    for event in events:
        if event.type == "commit_created":
            assert event.get("sha") in new_ids
            assert event.get("parent") in new_ids
        if event.type == "run_started":
            assert event.get("commit") in new_ids
    # the revert's trailer names the new id of the reverted commit
    undo = git(clone, "log", "-1", "--format=%B", "main")
    reverted = next(e.get("sha") for e in events if e.type == "commit_created" and e.get("provenance") != "human")
    assert f"Reverts: {reverted}" in undo
    # tags and run notes travel too
    assert git(clone, "rev-parse", "best^{commit}").strip() == reverted
    assert "tagged by anonymous" in git(clone, "tag", "-n1", "best")
    git(clone, "fetch", "-q", str(exported / "workspace.bundle"), "refs/notes/*:refs/notes/*")
    note = git(clone, "notes", "--ref", "refs/notes/runs", "show", reverted)
    assert note.startswith(f"run r1 by {participant_hash(PARTICIPANT, 'x')} on <host>: val 1.28 (token <secret>)")
    assert "KEY = '<secret>'" in git(clone, "show", f"{reverted}:train_gpt.py")


def test_plain_export_keeps_identities_but_never_secrets(tmp_path: Path) -> None:
    session = build_fixture_session(tmp_path / "sessions")
    report = export_sessions([session], tmp_path / "plain.tar.gz", anonymize=False)
    assert not report.anonymized
    root = extract(report.out_path, tmp_path / "x")
    exported = root / "sessions" / session.name
    text = (exported / "events.jsonl").read_text(encoding="utf-8")
    objects = all_git_objects(exported / "workspace.bundle", tmp_path)
    for planted in (PARTICIPANT, HOST, EMAIL):
        assert planted in text
    assert AUTHOR in objects and EMAIL in objects
    for secret in (KEY, BEARER, GH_TOKEN, "hunter2"):
        assert secret not in text and secret not in objects
    started = read_events(exported / "events.jsonl").events[0]
    assert started.get("participant") == PARTICIPANT
    # untouched commits keep their ids; the one that held a key gets a new one
    seed, with_key = git(session / "workspace", "log", "--format=%H", "--reverse", "best").split()
    repo = tmp_path / "objects.git"  # filled by all_git_objects above
    assert subprocess.run(["git", "-C", str(repo), "cat-file", "-e", seed]).returncode == 0
    assert subprocess.run(["git", "-C", str(repo), "cat-file", "-e", with_key], capture_output=True).returncode != 0


def test_participant_hash_stable_and_salted(tmp_path: Path) -> None:
    sessions = tmp_path / "sessions"
    for name in ("s1", "s2"):
        SessionBuilder(sessions / name, participant="P07").end()
    SessionBuilder(sessions / "s3", participant="P08").end()
    report = export_sessions(sorted(sessions.iterdir()), tmp_path / "a.tar.gz", salt="one")
    root = extract(report.out_path, tmp_path / "a")
    ids = [read_events(root / "sessions" / n / "events.jsonl").events[0].get("participant") for n in ("s1", "s2", "s3")]
    assert ids[0] == ids[1] == participant_hash("P07", "one") != ids[2]
    assert all(s.problems == ["no workspace git repository: exported without a bundle"] for s in report.sessions)
    random_salt = export_sessions([sessions / "s1"], tmp_path / "b.tar.gz")
    assert random_salt.salt_random
    other = extract(random_salt.out_path, tmp_path / "b")
    assert read_events(other / "sessions" / "s1" / "events.jsonl").events[0].get("participant") != ids[0]
    manifest = json.loads((other / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["participant_salt"] == "random, not stored" and manifest["sessions"][0]["bundle"] is False


def test_nothing_to_export(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SessionNotFoundError, match="no session to export"):
        export_sessions([tmp_path / "empty"], tmp_path / "x.tar.gz")
    assert not (tmp_path / "x.tar.gz").exists()


def test_scrubber_rules() -> None:
    s = Scrubber(anonymize=True, salt="k", participants={"P1x"}, hosts={"gpu-box"}, users={"jdoe"})
    s.compile()
    assert s.text("Authorization: Bearer abc.def.ghijkl") == "Authorization: <secret>"
    assert s.text('{"OPENAI_API_KEY": "sk-abcdefgh-ijklmnopqrst"}') == '{"OPENAI_API_KEY": "<secret>"}'
    assert s.text("export HF_TOKEN=hf_" + "a" * 30) == "export HF_TOKEN=<secret>"
    assert s.text("key AKIAABCDEFGHIJKLMNOP ok") == "key <secret> ok"
    assert s.text("see /home/jdoe/x/y.py and C:\\Users\\jdoe\\z.txt") == "see ~/x/y.py and ~\\z.txt"
    assert s.text("cd /scratch/lab/run7 && ls") == "cd <path>/run7 && ls"
    assert s.text("x = (a)/b/c; 3/4; https://example.org/a/b") == "x = (a)/b/c; 3/4; https://example.org/a/b"
    assert s.text("open('/scratch/lab/f.bin')", code=True) == "open('/scratch/lab/f.bin')"
    assert s.text("P1x on GPU-BOX as jdoe") == f"{participant_hash('P1x', 'k')} on <host> as <user>"
    assert s.text("P1xy jdoes") == "P1xy jdoes"  # whole words only
    assert s.text("q @ k.T and a@b.c are code; mail a.b@ex.org") == "q @ k.T and a@b.c are code; mail <email>"
    assert s.mapping({"prompt_tokens": 5, "x_token": "t", "Api_Key": "k", "nested": [{"password": "p"}]}) == {
        "prompt_tokens": 5, "nested": [{}]}
    plain = Scrubber(anonymize=False)
    plain.compile()
    assert plain.text("jdoe@ex.org sk-abcdefgh-ijklmnopqrstu /home/jdoe") == "jdoe@ex.org <secret> /home/jdoe"


def test_runner_url_names_no_machine_after_anonymising() -> None:
    s = Scrubber(anonymize=True, salt="k", participants=set(), hosts=set(), users=set())
    s.compile()
    assert s.mapping({"runner_url": "ssh://me@gpu-box:22/home/me/runs"}) == {"runner_url": "<runner>"}
