"""Long runs: each node fed its sample stream over real DDS, RSS, latency, output rate and errors every --interval-s.

`pose-perception bench soak [--node human|objects|radar|all] [--duration-s 3600] [--interval-s 10]`: starts the node
with its shipped parameter file, feeds it (human: real photos; objects: SYNTHETIC RGB-D clip; radar: SYNTHETIC
mocap radar) at --rate Hz, writes <out>/soak_<node>.csv, a plot soak_<node>.png, and prints the verdict against the
targets: RSS growth < 50 MB after warm-up (the first minute), 0 errors, latency p95 of the last minute within 20 %
of the first minute's (medians of the intervals' p95).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from pose_perception.cli._dispatch import add_common_output
from pose_perception.core.machine import machine_description

NODES = {
    "human": ("human_pose_node", "human_pose.yaml", 15.0),
    "objects": ("object_pose_node", "object_pose.yaml", 15.0),
    "radar": ("radar_pose_node", "radar_pose.yaml", 20.0),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node", choices=(*NODES, "all"), default="all", help="which node (default all, one after another)"
    )
    parser.add_argument("--duration-s", type=float, default=3600.0, help="seconds per node (default 3600)")
    parser.add_argument("--interval-s", type=float, default=10.0, help="sampling interval (default 10)")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="warm-up excluded from RSS growth (default 60)")
    parser.add_argument("--rate", type=float, default=0.0, help="input rate in Hz (default: 15 camera, 20 radar)")
    parser.add_argument("--out", type=Path, default=Path("out/soak"), help="CSV, PNG and node logs")
    add_common_output(parser)


def soak_one(key: str, args) -> dict:
    from pose_perception.cli.up import resolve_config
    from pose_perception.evaluation.ros.node_harness import Harness, NodeProcess, harness_env

    node_name, config, default_rate = NODES[key]
    rate = args.rate or default_rate
    env = harness_env()
    params = {"device": "cpu"} if key != "human" else {}
    if key == "human":
        params["use_depth"] = False
    node = NodeProcess(node_name, params, args.out / f"{node_name}.log", env, params_file=resolve_config(config))
    harness = Harness(node_name, env)
    rows = []
    try:
        harness.feed(node_name, rate)
        deadline = time.monotonic() + 180
        while not harness.outputs:
            if time.monotonic() > deadline or node.proc.poll() is not None:
                raise RuntimeError(f"{node_name} gave no output: see {node.log_path}")
            time.sleep(0.2)
        t_start = time.time()
        t_next = t_start + args.interval_s
        while time.time() - t_start < args.duration_s:
            time.sleep(max(0.0, t_next - time.time()))
            t1 = time.time()
            window = harness.outputs_between(t1 - args.interval_s, t1)
            lat = np.array([o[1] for o in window]) * 1e3
            diag = dict(harness.diagnostics)
            rows.append(
                {
                    "t_s": t1 - t_start,
                    "rss_mb": node.rss_mb(),
                    "outputs_hz": len(window) / args.interval_s,
                    "latency_p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
                    "latency_p95_ms": float(np.percentile(lat, 95)) if lat.size else float("nan"),
                    "errors": int(diag.get("errors", 0)),
                    "level": int(diag.get("level", -1)),
                    "frames_dropped": int(diag.get("frames_dropped", 0)),
                    "frames_lost": int(diag.get("frames_lost", 0)),
                    # the machine's 1-minute load average: the latency target depends on what else runs
                    "load_avg_1min": os.getloadavg()[0],
                }
            )
            r = rows[-1]
            print(
                f"[soak] {node_name} {r['t_s']:6.0f} s  RSS {r['rss_mb']:7.1f} MB  {r['outputs_hz']:5.1f} Hz  latency p50 "
                f"{r['latency_p50_ms']:6.1f} p95 {r['latency_p95_ms']:6.1f} ms  errors {r['errors']}  level {r['level']}  "
                f"load {r['load_avg_1min']:.1f}",
                flush=True,
            )
            t_next += args.interval_s
            if node.proc.poll() is not None:
                raise RuntimeError(f"{node_name} exited during the soak: see {node.log_path}")
    finally:
        harness.close()
        node.stop()
    return summarise(node_name, rows, args)


def summarise(node_name: str, rows: list[dict], args) -> dict:
    import csv

    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / f"soak_{node_name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    t = np.array([r["t_s"] for r in rows])
    rss = np.array([r["rss_mb"] for r in rows])
    p95 = np.array([r["latency_p95_ms"] for r in rows])
    warm = t > args.warmup_s
    first_min = t <= 60.0
    summary = {
        "node": node_name,
        "duration_s": float(t[-1]),
        "samples": len(rows),
        "rss_after_warmup_mb": float(rss[warm][0]) if warm.any() else float("nan"),
        "rss_growth_after_warmup_mb": float(rss[warm].max() - rss[warm][0]) if warm.any() else float("nan"),
        "rss_end_mb": float(rss[-1]),
        "errors": rows[-1]["errors"],
        "latency_p95_first_min_ms": float(np.nanmedian(p95[first_min])) if first_min.any() else float("nan"),
        "latency_p95_last_min_ms": float(np.nanmedian(p95[t >= t[-1] - 60.0])),
        "outputs_hz_mean": float(np.mean([r["outputs_hz"] for r in rows])),
        "load_avg_mean": float(np.mean([r["load_avg_1min"] for r in rows])),
        "load_avg_max": float(np.max([r["load_avg_1min"] for r in rows])),
    }
    summary["latency_p95_change"] = summary["latency_p95_last_min_ms"] / summary["latency_p95_first_min_ms"] - 1.0
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    a.plot(t / 60, rss, "-o", ms=3)
    a.set_ylabel("RSS (MB)")
    a.set_title(f"{node_name} soak, {t[-1] / 60:.1f} min ({machine_description()})", fontsize=9)
    b.plot(t / 60, [r["latency_p50_ms"] for r in rows], "-o", ms=3, label="p50")
    b.plot(t / 60, p95, "-o", ms=3, label="p95")
    b.set_ylabel("latency (ms)")
    b.legend()
    c.plot(t / 60, [r["load_avg_1min"] for r in rows], "-", color="grey")
    c.axhline(os.cpu_count() or 1, ls="--", color="k", lw=0.8)
    c.set_ylabel("load average (1 min)")
    c.set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(args.out / f"soak_{node_name}.png", dpi=100)
    plt.close(fig)
    return summary


def run(args: argparse.Namespace) -> int:
    args.out = args.out.resolve()
    keys = list(NODES) if args.node == "all" else [args.node]
    summaries = [soak_one(k, args) for k in keys]
    print(f"\nmachine: {machine_description()}")
    for s in summaries:
        print(
            f"{s['node']}: {s['duration_s'] / 60:.1f} min, RSS {s['rss_after_warmup_mb']:.0f} MB after warm-up, growth "
            f"{s['rss_growth_after_warmup_mb']:.1f} MB (target < 50), errors {s['errors']} (target 0), latency p95 "
            f"{s['latency_p95_first_min_ms']:.1f} ms first minute -> {s['latency_p95_last_min_ms']:.1f} ms last minute "
            f"({100 * s['latency_p95_change']:+.0f} %, target within 20 %), {s['outputs_hz_mean']:.1f} outputs/s, machine load "
            f"average {s['load_avg_mean']:.1f} mean / {s['load_avg_max']:.1f} max"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(summaries, indent=2))
    return 0
