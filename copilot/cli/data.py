"""`speedcopilot data prepare --track micro|nanogpt`."""

from __future__ import annotations

import argparse

from copilot.cli._common import console, plain, positive_int, settings_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="prepare training data")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    prep = sub.add_parser("prepare", help="write the micro corpus (offline, seconds) or download FineWeb shards")
    prep.add_argument("--track", choices=["micro", "nanogpt"], default="micro")
    prep.add_argument("--shards", type=positive_int, default=9, help="nanogpt: number of 100M-token train shards")
    prep.add_argument("--force", action="store_true", help="micro: regenerate even if present")
    prep.add_argument("--synthetic", action="store_true",
                      help="nanogpt: write small synthetic shards in the upstream format instead (offline, "
                           "seconds; for smoke tests and `doctor`, never for records)")
    prep.add_argument("--tokens", type=positive_int, default=40_000_000,
                      help="nanogpt --synthetic: tokens per train shard (default 40,000,000)")
    prep.add_argument("--train-shards", type=positive_int, default=2, help="nanogpt --synthetic: train shards (default 2)")
    prep.set_defaults(func=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    out = console()
    if args.track == "micro":
        from rich.progress import Progress

        from copilot.core.tracks.microdata import prepare_micro_data

        with Progress(console=out) as progress:
            task = progress.add_task("micro corpus", total=1.0)

            def report(message: str, fraction: float) -> None:
                progress.update(task, description=message, completed=fraction)

            info = prepare_micro_data(settings.data_dir, progress=report, force=args.force)
        out.print(f"micro data ready: {info}")
        return 0
    from copilot.core.tracks.nanogpt import NanoGPTTrack

    track = NanoGPTTrack(cache_dir=settings.cache_dir, data_dir=settings.data_dir)
    if args.synthetic:
        info = track.prepare_synthetic_data(train_tokens=args.tokens, train_shards=args.train_shards)
        out.print(plain(f"nanogpt synthetic data ready: {info}"))
        return 0
    track.prepare_data(args.shards)
    out.print(f"nanogpt data ready ({args.shards} train shards)")
    return 0
