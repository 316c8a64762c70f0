"""How many synced nanogpt records find their train and val shards from a session workspace (no GPU).

    python bench/data_paths.py --upstream /path/to/modded-nanogpt [--benchmark /path/to/llm-speedrunner]

Syncs the clone(s) into a temporary cache, writes small synthetic shards, then resolves every record's data
patterns statically (copilot.core.tracks.datapaths) twice: from a bare workspace with only DATA_PATH set (what
runs had before the data layout), and from a workspace prepared by NanoGPTTrack.prepare_workdir.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from copilot.core.tracks import nanogpt_sync as ns  # noqa: E402
from copilot.core.tracks.datapaths import resolve_data  # noqa: E402
from copilot.core.tracks.nanogpt import NanoGPTTrack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", type=Path, required=True, help="a clone (work tree) of modded-nanogpt")
    parser.add_argument("--benchmark", type=Path, default=None, help="a clone of llm-speedrunner")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speedcopilot-datapaths-") as tmp:
        root = Path(tmp)
        index = ns.sync_records(path=args.upstream, cache_dir=root / "cache", benchmark=args.benchmark)
        track = NanoGPTTrack(cache_dir=root / "cache", data_dir=root / "data")
        track.prepare_synthetic_data(train_tokens=1_000_000, train_shards=2)
        env = {**os.environ, **track.run_env()}
        rows = []
        for rec in index.records:
            if rec.retiming or not rec.has_code:
                continue
            script = track.record_files(rec.number)[track.script_name]
            bare = root / "bare" / rec.key
            bare.mkdir(parents=True)
            prepared = root / "prepared" / rec.key
            prepared.mkdir(parents=True)
            track.prepare_workdir(prepared)
            before = resolve_data(script, bare, env)
            after = resolve_data(script, prepared, env)
            rows.append({"number": rec.number, "code_source": rec.code_source, "bare": before.status(),
                         "prepared": after.status()})
    summary = {
        "upstream": str(args.upstream), "commit": index.commit, "benchmark": str(args.benchmark or ""),
        "records_with_code": len(rows),
        "resolve_bare_workspace": sum(r["bare"] == "ok" for r in rows),
        "resolve_prepared_workspace": sum(r["prepared"] == "ok" for r in rows),
        "failing_prepared": [r for r in rows if r["prepared"] != "ok"],
    }
    if args.json:
        print(json.dumps({"summary": summary, "records": rows}, indent=2))
    else:
        print(f"{summary['records_with_code']} records with code ({index.summary()})")
        print(f"bare workspace, DATA_PATH only: {summary['resolve_bare_workspace']} of {len(rows)} resolve")
        print(f"prepared workspace:             {summary['resolve_prepared_workspace']} of {len(rows)} resolve")
        for row in summary["failing_prepared"]:
            print(f"  record {row['number']}: {row['prepared']}")
    return 0 if summary["resolve_prepared_workspace"] else 1


if __name__ == "__main__":
    sys.exit(main())
