"""Time from `speedcopilot start` to its first frame in a real terminal (tmux), against a Textual hello-world.

Run by hand: python bench/app_startup.py [--runs 7]. Needs tmux. The two are started alternately in fresh tmux
servers of the same size, and timed the same way: from the launch until the terminal shows the app's first
words (capture-pane polled every 10 ms). The hello-world is a header, one Static and a footer. speedcopilot
starts on the micro track with the offline oracle from a small corpus in a temp folder, so nothing is
downloaded; its diagnostics file (SPEEDCOPILOT_UI_DIAGNOSTICS) also tells whether torch was imported, which it
must never be for the first frame. The goal (issue 17): median ratio ≤ 2×.

Both are timed with their code byte-compiled, as installs leave it: pip compiles textual when it installs it,
and `make install` compiles speedcopilot's editable source, which this bench does too before timing (where
PYTHONDONTWRITEBYTECODE is set, as on our VMs, Python would otherwise compile every module at every start).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HELLO = '''
from textual.app import App
from textual.widgets import Footer, Header, Static


class Hello(App):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self):
        yield Header()
        yield Static("hello speedrunner")
        yield Footer()


Hello().run()
'''


def _tmux(sock: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-S", str(sock), *args], capture_output=True, text=True)


def time_to_text(sock: Path, command: str, text: str, timeout_s: float = 30.0) -> float:
    """Seconds from launching `command` in a new 120×40 tmux until `text` is on its screen."""
    t0 = time.perf_counter()
    subprocess.run(["tmux", "-S", str(sock), "new-session", "-d", "-x", "120", "-y", "40", command], check=True)
    deadline = t0 + timeout_s
    while time.perf_counter() < deadline:
        if text in _tmux(sock, "capture-pane", "-p").stdout:
            return time.perf_counter() - t0
        time.sleep(0.01)
    raise SystemExit(f"{text!r} never appeared; screen:\n{_tmux(sock, 'capture-pane', '-p').stdout}")


def quit_and_wait(sock: Path, done: Path | None = None) -> None:
    _tmux(sock, "send-keys", "q")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (done is None or not done.exists()):
        if _tmux(sock, "has-session").returncode != 0:
            break
        time.sleep(0.05)
    _tmux(sock, "kill-server")


def one_hello(tmp: Path, index: int) -> float:
    script = tmp / "hello.py"
    script.write_text(HELLO)
    sock = tmp / f"hello-{index}.sock"
    seconds = time_to_text(sock, f"{sys.executable} {script}", "hello speedrunner")
    quit_and_wait(sock)
    return seconds


def one_start(tmp: Path, data: Path, index: int) -> dict:
    diag = tmp / f"diag-{index}.json"
    sock = tmp / f"start-{index}.sock"
    env = (f"env SPEEDCOPILOT_DATA_DIR={data} SPEEDCOPILOT_UI_DIAGNOSTICS={diag} HOME={tmp} "
           f"XDG_CONFIG_HOME={tmp}/config PATH={Path(sys.executable).parent}:{os.environ['PATH']}")
    command = f"{env} speedcopilot start --record 0 --track micro --provider oracle --session-dir {tmp}/sessions"
    seconds = time_to_text(sock, command, "speedcopilot")  # the header's first word: the first frame
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and "offline oracle" not in _tmux(sock, "capture-pane", "-p").stdout:
        time.sleep(0.05)  # let the session open before quitting, as a user would
    info = json.loads(diag.read_text()) if diag.exists() else {}
    exit_diag = Path(str(diag) + ".exit")
    quit_and_wait(sock, exit_diag)
    at_exit = json.loads(exit_diag.read_text()) if exit_diag.exists() else {}
    return {"seconds": seconds, "torch": bool(info.get("torch_imported") or at_exit.get("torch_imported")),
            "modules": at_exit.get("modules")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is needed for this benchmark", file=sys.stderr)
        return 2
    from copilot.core.tracks.microdata import prepare_micro_data

    import copilot

    compiled = compileall.compile_dir(str(Path(copilot.__file__).parent), quiet=1)  # what `make install` does
    print(f"speedcopilot byte-compiled: {bool(compiled)}; PYTHONDONTWRITEBYTECODE "
          f"{'set' if os.environ.get('PYTHONDONTWRITEBYTECODE') else 'unset'}")
    load_before = os.getloadavg()[0]
    hello: list[float] = []
    starts: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="sc-startup-") as name:
        tmp = Path(name)
        prepare_micro_data(tmp / "data", size="small")
        one_hello(tmp, -1)  # warm the file cache for both before timing
        one_start(tmp, tmp / "data", -1)
        for i in range(args.runs):  # interleaved, so a slow moment of the machine hits both
            hello.append(one_hello(tmp, i))
            starts.append(one_start(tmp, tmp / "data", i))
    start_s = [s["seconds"] for s in starts]
    ratios = [s / h for s, h in zip(start_s, hello)]
    for h, s, r in zip(hello, starts, ratios):
        print(f"hello-world {h:.3f}s   speedcopilot start {s['seconds']:.3f}s   ratio {r:.2f}×   "
              f"torch imported: {s['torch']}   modules at exit: {s['modules']}")
    print(f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    print(f"median: hello-world {statistics.median(hello):.3f}s, speedcopilot start {statistics.median(start_s):.3f}s, "
          f"ratio of medians {statistics.median(start_s) / statistics.median(hello):.2f}×, "
          f"median of paired ratios {statistics.median(ratios):.2f}×; "
          f"torch imported in any run: {any(s['torch'] for s in starts)}")
    ok = statistics.median(ratios) <= 2.0 and not any(s["torch"] for s in starts)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
