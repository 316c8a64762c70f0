"""A real OpenSSH server for tests: 127.0.0.1, a free port, throw-away host and user keys, the current user.

Usage: `with SshServer.start(tmp_path) as server: ... server.url(path), server.client_options`.
Tests call `require_sshd()` first: it skips with a clear reason when openssh-server is missing.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/usr/bin/sshd")


def find_sshd() -> str | None:
    found = shutil.which("sshd")
    if found:
        return found
    return next((c for c in SSHD_CANDIDATES if os.access(c, os.X_OK)), None)


def require_sshd() -> str:
    sshd = find_sshd()
    if sshd is None:
        pytest.skip("sshd not installed (Debian: apt-get install -y openssh-server); SSH runner tests need a real one")
    for tool in ("ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed (Debian: apt-get install -y openssh-client)")
    return sshd


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)


@dataclass
class SshServer:
    dir: Path
    port: int
    user: str
    proc: subprocess.Popen[bytes]
    client_key: Path

    @classmethod
    def start(cls, base: Path, sshd: str | None = None) -> "SshServer":
        sshd = sshd or require_sshd()
        d = base / "sshd"
        d.mkdir(parents=True)
        _keygen(d / "host_key")
        _keygen(d / "client_key")
        shutil.copy(d / "client_key.pub", d / "authorized_keys")
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)  # Debian's privilege-separation folder
        last_error = ""
        for _ in range(3):
            port = _free_port()
            (d / "sshd_config").write_text(
                f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\nPidFile {d / 'sshd.pid'}\n"
                f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin yes\nStrictModes no\nUsePAM no\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
                "LogLevel ERROR\nMaxStartups 50\nMaxSessions 50\n"
            )
            proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(d / "sshd_config")], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "wb"))
            server = cls(d, port, getpass.getuser(), proc, d / "client_key")
            if server._wait_ready(10.0):
                return server
            last_error = (d / "sshd.log").read_text(errors="replace")
            server.stop()
        raise RuntimeError(f"sshd did not start: {last_error}")

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                    if sock.recv(4).startswith(b"SSH-"):
                        return True
            except OSError:
                time.sleep(0.05)
        return False

    @property
    def client_options(self) -> list[str]:
        return [
            "-F", "/dev/null", "-i", str(self.client_key), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={self.dir / 'known_hosts'}", "-o", "StrictHostKeyChecking=accept-new",
            "-o", "LogLevel=ERROR",
        ]

    def url(self, path: Path | str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> "SshServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
