"""`pose-perception replay BAG` and `pose-perception record`: rosbag2 (.mcap / .db3) without ros2 bag."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path


def register(subparsers) -> None:
    replay = subparsers.add_parser("replay", help="play a rosbag2 (.mcap or .db3) into the running nodes")
    replay.add_argument("bag", help="bag directory or its .mcap/.db3 file")
    replay.add_argument("--remap", action="append", default=[], metavar="FROM:=TO")
    replay.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    replay.add_argument("--topics", nargs="*", help="only these topics")
    replay.set_defaults(func=run_replay)
    record = subparsers.add_parser("record", help="record the nodes' outputs to an MCAP rosbag2")
    record.add_argument("-o", "--output", default=None, help="bag directory to create (default: bags/<time>)")
    record.add_argument("--topics", nargs="*", help="TOPIC=pkg/msg/Type pairs (default: every node output)")
    record.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: Ctrl-C)")
    record.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    record.set_defaults(func=run_record)


def run_replay(args) -> int:
    from pose_perception.ros.bag import BagError, parse_remaps, replay_bag

    try:
        counts = replay_bag(args.bag, parse_remaps(args.remap), args.rate, args.topics)
    except BagError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    for topic, n in sorted(counts.items()):
        print(f"{topic:40s} {n:6d} messages")
    return 0


def run_record(args) -> int:
    from pose_perception.ros.bag import OUTPUT_TOPICS, BagError, record_bag

    topics = OUTPUT_TOPICS
    if args.topics:
        try:
            topics = dict(t.split("=", 1) for t in args.topics)
        except ValueError:
            print("record: --topics entries must look like /topic=pkg/msg/Type", file=sys.stderr)
            return 2
    out = Path(args.output or f"bags/pose_perception_{time.strftime('%Y%m%d_%H%M%S')}")
    out.parent.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        counts = record_bag(
            out,
            topics,
            args.storage,
            stop,
            args.duration,
            on_recording=lambda: print(f"recording {len(topics)} topics to {out} (Ctrl-C to stop)", flush=True),
        )
    except BagError as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 2
    for topic, n in sorted(counts.items()):
        print(f"{topic:40s} {n:6d} messages")
    print(f"bag: {out}")
    return 0
