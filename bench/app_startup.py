"""Time from `speedcopilot start` to the app's first frame, in a real terminal (tmux); torch must stay out.

Run by hand: python bench/app_startup.py [--runs 5]. Needs tmux. Uses a small micro corpus in a temp folder and
the offline oracle, so nothing is downloaded. The app writes its first-frame time and whether torch is in
sys.modules to $SPEEDCOPILOT_UI_DIAGNOSTICS; the terminal's own view is cross-checked with capture-pane.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


# What `speedcopilot start` would do if it handed run_app a factory instead of a built session.
FACTORY_LAUNCHER = (
    "import sys; from copilot.cli import build_parser; from copilot.ui.app import run_app; "
    "args = build_parser().parse_args(['start', *sys.argv[1:]]); "
    "from copilot.cli.start import open_session; "
    "sys.exit(run_app(lambda: open_session(args)[1]))"
)


def one_start(tmp: Path, data: Path, index: int, factory: bool = False) -> dict:
    diag = tmp / f"diag-{index}.json"
    sock = tmp / f"tmux-{index}.sock"
    env = (f"env SPEEDCOPILOT_DATA_DIR={data} SPEEDCOPILOT_UI_DIAGNOSTICS={diag} HOME={tmp} "
           f"XDG_CONFIG_HOME={tmp}/config PATH={Path(sys.executable).parent}:{os.environ['PATH']}")
    flags = f"--record 0 --track micro --provider oracle --session-dir {tmp}/sessions"
    if factory:
        command = f"{env} {sys.executable} -c \"{FACTORY_LAUNCHER}\" {flags}"
    else:
        command = f"{env} speedcopilot start {flags}"
    t0 = time.time()
    subprocess.run(["tmux", "-S", str(sock), "new-session", "-d", "-x", "120", "-y", "40", command], check=True)
    seen_t = None
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "-S", str(sock), "capture-pane", "-p"], capture_output=True,
                                    text=True).stdout
            if seen_t is None and ("offline oracle" in screen or "opening the session" in screen):
                seen_t = time.time()
            if seen_t is not None and diag.exists() and "offline oracle" in screen:
                break  # first frame seen and the session is open
            time.sleep(0.01)
        info = json.loads(diag.read_text())
        subprocess.run(["tmux", "-S", str(sock), "send-keys", "q"])
        exit_diag = Path(str(diag) + ".exit")
        deadline = time.monotonic() + 10
        while not exit_diag.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        at_exit = json.loads(exit_diag.read_text())
    finally:
        subprocess.run(["tmux", "-S", str(sock), "kill-server"], capture_output=True)
    return {"first_frame_s": info["first_frame_t"] - t0, "ui_s": info["first_frame_t"] - info["app_init_t"], "visible_s": (seen_t or float("nan")) - t0,
            "torch_imported": info["torch_imported"] or at_exit["torch_imported"],
            "modules": at_exit["modules"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--factory", action="store_true",
                        help="launch like `speedcopilot start` but hand run_app a session factory")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is needed for this benchmark", file=sys.stderr)
        return 2
    from copilot.core.tracks.microdata import prepare_micro_data

    load_before = f"{os.getloadavg()[0]:.2f}"
    with tempfile.TemporaryDirectory(prefix="sc-startup-") as name:
        tmp = Path(name)
        prepare_micro_data(tmp / "data", size="small")
        results = [one_start(tmp, tmp / "data", i, args.factory) for i in range(args.runs)]
    for r in results:
        print(f"first frame {r['first_frame_s']:.3f}s (app constructed → first frame {r['ui_s']:.3f}s)  visible in tmux {r['visible_s']:.3f}s  "
              f"torch imported: {r['torch_imported']}  modules: {r['modules']}")
    first = [r["first_frame_s"] for r in results]
    ui = [r["ui_s"] for r in results]
    print(f"load average before/after: {load_before} / {os.getloadavg()[0]:.2f}")
    print(f"median first frame {statistics.median(first):.3f}s (min {min(first):.3f}, max {max(first):.3f}); "
          f"median of the UI part {statistics.median(ui):.3f}s; "
          f"torch imported in any run: {any(r['torch_imported'] for r in results)}")
    return 0 if statistics.median(first) < 1.0 and not any(r["torch_imported"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
