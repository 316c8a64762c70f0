"""How long the micro track's synthetic corpus takes to write (what the first `make start` waits for).

Run by hand: `python bench/micro_data.py [--repeat 3]`. Each repeat generates the full set into a fresh temp folder
with the same generator `speedcopilot data prepare --track micro` uses.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from copilot.core.tracks.microdata import prepare_micro_data


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    timings: list[float] = []
    info = None
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            info = prepare_micro_data(Path(tmp))
            timings.append(time.perf_counter() - t0)
    assert info is not None
    print(f"micro corpus: {info.train_tokens:,} train + {info.val_tokens:,} val bytes; "
          f"best {min(timings):.2f} s, median {statistics.median(timings):.2f} s of {args.repeat}; "
          f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
