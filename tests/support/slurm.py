"""A real SLURM cluster for tests: munged, slurmctld and slurmd on this machine, one node, a temp folder.

Usage: a test module imports the session fixture (`from tests.support.slurm import slurm_cluster  # noqa`)
and asks for `slurm_cluster`; `cluster.env` is the environment the SLURM tools need (SLURM_CONF), so
`SlurmRunner(cluster.url(...), tool_env=cluster.env)`; `cluster.tool(...)` runs sinfo/squeue/... by hand.
Everything lives in one temp folder (slurm.conf, munge key and socket, state, spool, logs, pid files); at the
end every job is cancelled and the three daemons are stopped and waited for.

It skips, saying why, when the packages are missing (Debian: apt-get install -y slurm-wlm munge), when not
root, or when a daemon does not come up (the reason quotes the daemon's log).

Quirks found on the Debian 12 / slurm-wlm 22.05.8 container this was written on:
- No systemd: the packages install but start nothing; the daemons run here in the foreground (-D / -F)
  as children of the test process, and nothing touches /etc/slurm, /etc/munge or /run/munge.
- munged refuses a key readable by others and warns when the socket folder is not executable by all: the key
  is 0400 and the folder 0755. slurm finds the private socket through `AuthInfo=socket=…` (both auth/munge
  and cred/munge read it); the client tools find it because they read the same slurm.conf via SLURM_CONF.
- The node is named `localnode` (slurmd -N), with NodeHostname = this machine's short hostname and
  NodeAddr=127.0.0.1, and the controller is `SlurmctldHost=<hostname>(127.0.0.1)`: slurmctld insists that
  its own hostname is the SlurmctldHost, but with explicit addresses nothing has to resolve the hostname.
- Both daemons run as root (SlurmUser=SlurmdUser=root), with proctrack/linuxproc and task/none: no cgroups,
  which a container does not delegate. So memory limits (mem=) are bookkeeping only, not enforced.
- `SlurmdParameters=config_overrides`: the node is declared with CPUs=2 and RealMemory=2048 whatever the
  hardware, so the pending-job tests behave the same on any machine (a job with cpus=2 fills the node).
- No accounting storage: `sacct` answers "Slurm accounting storage is disabled"; state comes from scontrol
  and the run's own files. Finished jobs stay visible to scontrol for MinJobAge (300 s).
- The mpi/pmix plugins log load errors at start-up (no PMIx library); harmless with MpiDefault=none.
- With `--export=NONE` slurmd still loads root's *login* environment into the job (SLURM_GET_USER_ENV=1:
  PATH with pyenv shims, PYENV_ROOT, HOME, ...); the runner's job script clears it.
- Time limits have minute granularity and slurmctld checks them about every 30 s, so a `time=1` job is
  stopped 60-90 s after it starts. KillWait=2 keeps the TERM-to-KILL gap short.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "scontrol", "scancel", "squeue", "sinfo", "munge")
PARTITION = "debug"
NODE = "localnode"
NODE_CPUS = 2
START_DEADLINE_S = 90.0
STOP_DEADLINE_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _find(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}", f"/usr/local/sbin/{tool}") if os.access(p, os.X_OK)),
        None)


def missing_tools() -> list[str]:
    return [tool for tool in (*DAEMONS, *CLIENTS) if _find(tool) is None]


def require_slurm() -> None:
    missing = missing_tools()
    if missing:
        pytest.skip(f"SLURM not installed ({', '.join(missing)} missing; Debian: apt-get install -y slurm-wlm "
                    "munge); the SLURM runner tests need a real controller and node")
    if os.geteuid() != 0:
        pytest.skip("the test SLURM cluster runs slurmctld and slurmd as root (SlurmUser=root); run as root")


def _tail(path: Path, lines: int = 6) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _slurm_conf(d: Path, ctld_port: int, slurmd_port: int, cpus: int = NODE_CPUS) -> str:
    host = socket.gethostname().split(".")[0]
    return f"""\
ClusterName=speedcopilot
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d / 'munge' / 'munge.socket'}
StateSaveLocation={d / 'state'}
SlurmdSpoolDir={d / 'spool'}
SlurmctldPidFile={d / 'slurmctld.pid'}
SlurmdPidFile={d / 'slurmd.pid'}
SlurmctldLogFile={d / 'slurmctld.log'}
SlurmdLogFile={d / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
KillWait=2
NodeName={NODE} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2048 State=UNKNOWN
PartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    dir: Path
    conf: Path
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    partition: str = PARTITION
    node: str = NODE
    cpus: int = NODE_CPUS

    def url(self, partition: str | None = None, **options: object) -> str:
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"slurm://{self.partition if partition is None else partition}" + (f"?{query}" if query else "")

    def tool(self, *argv: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, timeout=timeout_s,
                              check=False, stdin=subprocess.DEVNULL)

    def node_state(self) -> str:
        out = self.tool("sinfo", "-h", "-n", self.node, "-o", "%t")
        return out.stdout.strip() if out.returncode == 0 else ""

    def job_ids(self) -> list[str]:
        out = self.tool("squeue", "-h", "-o", "%i")
        return out.stdout.split() if out.returncode == 0 else []

    def cancel_all(self, deadline_s: float = STOP_DEADLINE_S) -> None:
        """Cancel every job and wait until the queue is empty (no job of a test outlives the test)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            jobs = self.job_ids()
            if not jobs:
                return
            self.tool("scancel", "--full", "--signal=KILL", *jobs)
            self.tool("scancel", *jobs)
            time.sleep(0.2)

    # -- life cycle ------------------------------------------------------------------------------------
    @classmethod
    def start(cls, base: Path, cpus: int = NODE_CPUS) -> "SlurmCluster":
        """`cpus`: what the node declares (config_overrides), whatever the hardware (bench/parallel_search.py)."""
        require_slurm()
        last = ""
        for _ in range(3):  # a free port can be taken between choosing and binding it
            d = base / f"cluster{_}"
            cluster = cls._start_once(d, cpus)
            if isinstance(cluster, cls):
                return cluster
            last = cluster
        pytest.skip(f"the test SLURM cluster did not start: {last}")

    @classmethod
    def _start_once(cls, d: Path, cpus: int = NODE_CPUS) -> "SlurmCluster | str":
        for sub in ("munge", "state", "spool"):
            (d / sub).mkdir(parents=True)
        d.chmod(0o755)
        (d / "munge").chmod(0o755)
        key = d / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        conf = d / "slurm.conf"
        conf.write_text(_slurm_conf(d, _free_port(), _free_port(), cpus))
        cluster = cls(dir=d, conf=conf, env={**os.environ, "SLURM_CONF": str(conf)}, cpus=cpus)
        try:
            return cluster._boot()
        except _BootError as exc:
            cluster.stop()
            return str(exc)

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.dir / f"{name}.out", "wb") as out:
            self.procs[name] = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                                stderr=subprocess.STDOUT)

    def _boot(self) -> "SlurmCluster":
        m = self.dir / "munge"
        self._spawn("munged", [_find("munged") or "munged", "-F", "--force", f"--socket={m / 'munge.socket'}",
                               f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                               f"--seed-file={m / 'munged.seed'}", f"--log-file={m / 'munged.log'}"])
        self._wait("munged", lambda: self.tool("munge", "-n", "-S", str(m / "munge.socket")).returncode == 0)
        self._spawn("slurmctld", [_find("slurmctld") or "slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait("slurmctld", lambda: self.tool("scontrol", "ping").stdout.count("UP") > 0)
        self._spawn("slurmd", [_find("slurmd") or "slurmd", "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait("slurmd", lambda: self.node_state() == "idle")
        return self

    def _wait(self, name: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise _BootError(f"{name} exited with status {proc.returncode}: {_tail(self.dir / f'{name}.out')}")
            try:
                if ready():
                    return
            except (OSError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.1)
        log = self.dir / f"{name}.log" if name != "munged" else self.dir / f"{name}.out"
        raise _BootError(f"{name} was not ready after {START_DEADLINE_S:.0f}s: {_tail(log)} "
                         f"(node state {self.node_state()!r})")

    def stop(self) -> None:
        if "slurmd" in self.procs and self.procs["slurmd"].poll() is None:
            self.cancel_all()
        for name in reversed(DAEMONS):  # slurmd, slurmctld, then munged
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=STOP_DEADLINE_S / 2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class _BootError(Exception):
    pass


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlurmCluster]:
    cluster = SlurmCluster.start(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        cluster.stop()
