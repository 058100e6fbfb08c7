"""Radar pipeline speed: 3 SYNTHETIC people at 20 Hz, per stage and end to end, vs the bare network.

Frames are simulated before timing starts; only RadarPosePipeline.process is timed.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np


def add_arguments(parser) -> None:
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="radar frame rate, Hz")
    parser.add_argument("--seconds", type=float, default=15.0, help="simulated scene length")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument(
        "--refine",
        action="store_true",
        help="also run the opt-in model-based refinement (radar/fitting.py), timed as its own stage",
    )
    parser.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")


def simulate_scene(people: int, rate_hz: float, seconds: float, seed: int, with_truth: bool = False) -> list[tuple]:
    """SYNTHETIC frames of `people` persons doing held-out clips in place, spread over the field of view:
    (stamp s, points (N, 5)) per frame, and with_truth: the true joints (people, 17, 3) as a third item."""
    from pose_perception.evaluation.radar import simulator as sim

    rng = np.random.default_rng(seed)
    skeleton = sim.load_skeleton()
    clips = [sim.load_clip(n) for n in ("humanoid3d_dance_b", "humanoid3d_spinkick", "humanoid3d_spin")]
    model = sim.RadarModel()
    persons = []
    for i in range(people):
        az = np.radians(-35 + 70 * (i + 0.5) / people)
        r = 2.5 + 1.0 * (i % 2)
        persons.append(
            sim.random_person(
                rng, skeleton, [clips[i % len(clips)]], np.array([r * np.cos(az), r * np.sin(az)]), allow_mirror=False
            )
        )
    scene = sim.SimScene(persons, skeleton, model, rate_hz=rate_hz)
    times = np.arange(int(seconds * rate_hz)) / rate_hz
    return [(float(t), f[0], f[2]) if with_truth else (float(t), f[0]) for t, f in zip(times, scene.frames(times, rng))]


def run(args) -> int:
    import torch

    from pose_perception.core.machine import machine_description
    from pose_perception.radar.fitting import FitConfig
    from pose_perception.radar.pipeline import RadarPipelineConfig, RadarPosePipeline

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    print(f"machine: {machine_description()} (torch threads {args.threads}; load average {load:.1f} at start)")
    t0 = time.time()
    frames = simulate_scene(args.people, args.rate, args.seconds, args.seed, with_truth=True)
    print(
        f"simulated {len(frames)} SYNTHETIC frames of {args.people} people at {args.rate:g} Hz in {time.time() - t0:.1f} s "
        f"(not timed); {np.mean([len(p) for _, p, _ in frames]):.0f} points per frame"
    )
    pipe = RadarPosePipeline(
        RadarPipelineConfig(weights_path=args.weights, device=args.device, refine=FitConfig() if args.refine else None)
    )
    for t, p, _ in frames[:10]:  # warm-up (torch kernels, allocator)
        pipe.process(t, p)
    pipe.reset()
    stage = {}
    per_frame, estimates = [], 0
    on_person, all_people = 0, 0  # estimates within 1 m of a simulated person; frames with one per person
    for t, p, joints in frames:
        s = time.perf_counter()
        humans = pipe.process(t, p)
        per_frame.append(time.perf_counter() - s)
        estimates += len(humans)
        truth = joints[:, [11, 12], :2].mean(axis=1)
        found = [np.linalg.norm(truth - np.nanmean(h.keypoints_3d[[11, 12], :2], axis=0), axis=1) for h in humans]
        on_person += sum(int(d.min() < 1.0) for d in found)
        all_people += int(
            len(humans) == len(truth) and all(np.any(np.array(found)[:, i] < 1.0) for i in range(len(truth)))
        )
        for k, v in pipe.last_timings_s.items():
            stage.setdefault(k, []).append(v)
    total = float(np.sum(per_frame))
    # The bare network on the same batch size, for the overhead ratio.
    from pose_perception.radar.network import prepare_input

    rng = np.random.default_rng(0)
    batch = [
        (
            np.column_stack([rng.normal(0, 0.3, (90, 3)), rng.normal(0, 1, (90, 2))]).astype(np.float32),
            np.zeros(90, np.float32),
            np.array([3.0, 0.0, 0.0]),
        )
        for _ in range(args.people)
    ]
    feats = torch.from_numpy(np.stack([prepare_input(*b, pipe.regressor.num_points)[0] for b in batch])).to(
        pipe.regressor.device
    )
    masks = torch.from_numpy(np.stack([prepare_input(*b, pipe.regressor.num_points)[1] for b in batch])).to(
        pipe.regressor.device
    )
    with torch.inference_mode():
        for _ in range(5):
            pipe.regressor.net(feats, masks)
        s = time.perf_counter()
        for _ in range(50):
            pipe.regressor.net(feats, masks)
        net_s = (time.perf_counter() - s) / 50
    rate = estimates / total
    ms = np.array(per_frame) * 1000
    print(f"{'stage':16s} {'mean ms':>8s} {'p95 ms':>8s}")
    for k, v in stage.items():
        v = np.array(v) * 1000
        print(f"{k:16s} {v.mean():8.2f} {np.percentile(v, 95):8.2f}")
    print(f"{'end to end':16s} {ms.mean():8.2f} {np.percentile(ms, 95):8.2f}")
    print(
        f"bare network, batch {args.people}: {net_s * 1000:.2f} ms; pipeline / network = {ms.mean() / 1000 / net_s:.1f}x"
    )
    print(
        f"person-estimates per second: {rate:.0f} ({estimates} estimates in {total:.2f} s of processing); "
        f"frame budget at {args.rate:g} Hz: {1000 / args.rate:.0f} ms -> real-time factor {1 / args.rate / (ms.mean() / 1000):.1f}x"
    )
    print(
        f"people: {estimates} estimates in {len(frames)} frames of {args.people} SYNTHETIC people, {on_person} of them "
        f"within 1 m of a person's pelvis; every person reported (and nothing else) in {all_people / len(frames):.1%} of frames"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine_description(),
                    "load_average_at_start": load,
                    "synthetic": True,
                    "people": args.people,
                    "rate_hz": args.rate,
                    "frames": len(frames),
                    "end_to_end_ms_mean": float(ms.mean()),
                    "end_to_end_ms_p95": float(np.percentile(ms, 95)),
                    "stages_ms_mean": {k: float(np.mean(v) * 1000) for k, v in stage.items()},
                    "network_ms": net_s * 1000,
                    "person_estimates_per_s": rate,
                    "estimates": estimates,
                    "estimates_on_a_person": on_person,
                    "frames_all_people": all_people / len(frames),
                },
                indent=2,
            )
        )
    return 0
