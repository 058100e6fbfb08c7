"""`pose-perception radar ...`: skeletons from radar frame files, and training / evaluation of the network.

Training and evaluation data are SYNTHETIC (radar simulator driven by the pybullet_data mocap clips).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pose_perception.evaluation.cli import radar_mars
from pose_perception.core.keypoints import COCO_BODY_17_NAMES


class FramesFileError(ValueError):
    """A FRAMES.npz that does not follow the documented layout."""


def register(subparsers) -> None:
    parser = subparsers.add_parser("radar", help=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="radar_command", required=True)

    est = sub.add_parser("estimate", help="COCO body 17 skeletons for every frame of a FRAMES.npz")
    est.add_argument(
        "--frames",
        required=True,
        metavar="FRAMES.npz",
        help="stamps (T,) float64 s and points_0000... (N_i, 5) float32 x, y, z, velocity, intensity "
        "in the radar frame (REP-103)",
    )
    est.add_argument("--out", required=True, metavar="OUT.json")
    est.add_argument(
        "--weights",
        default=None,
        help="network weights (.pt), or 'mars' for the shipped weights trained on "
        "the real TI IWR1443 (MARS); default: the simulator-trained ones",
    )
    est.add_argument(
        "--window",
        type=int,
        default=4,
        help="newest frames clustered into people (the network adds its weights' context frames)",
    )
    est.add_argument("--radar-height", type=float, default=1.0, help="radar mounting height above the floor (m)")
    est.add_argument("--axes", choices=("rep103", "ti"), default="rep103", help="axes of the points in the file")
    est.add_argument("--device", default="auto")
    est.set_defaults(func=run_estimate)

    trn = sub.add_parser("train", help="simulate SYNTHETIC training data from the training clips and train the network")
    trn.add_argument(
        "--out",
        default=None,
        help="weights path (.pt; a .json with the recipe is written next to it); "
        "default: the packaged pose_perception/data/radar/radar_pose_net.pt",
    )
    trn.add_argument("--sequences", type=int, default=None, help="simulated 2 s sequences (default 500)")
    trn.add_argument("--epochs", type=int, default=None, help="default 20")
    trn.add_argument(
        "--frames-per-sequence",
        type=int,
        default=None,
        help="frames simulated per sequence (default 40); fewer frames and more sequences give more "
        "independent samples for the same simulation time",
    )
    trn.add_argument(
        "--orientation-prob",
        type=float,
        default=None,
        help="fraction of sequences with the whole body turned to a random 3D orientation / tumbling "
        "(pose-space augmentation; default: DatasetConfig)",
    )
    trn.add_argument(
        "--speed-range",
        type=float,
        nargs=2,
        default=None,
        metavar=("MIN", "MAX"),
        help="clip playback speed range (default: DatasetConfig)",
    )
    trn.add_argument(
        "--balance-sources",
        action="store_true",
        help="the five walker/* clips together as likely as one top-level clip (less walking)",
    )
    trn.add_argument("--seed", type=int, default=0)
    trn.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    trn.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    trn.add_argument("--cache", default=None, metavar="DATA.npz", help="reuse / store the simulated data set here")
    trn.add_argument("--widths", type=int, nargs="+", default=None, help="per-point MLP widths (default 48 96 192)")
    trn.add_argument(
        "--num-points", type=int, default=None, help="points per person the network takes (default: NetConfig)"
    )
    trn.add_argument(
        "--context-frames",
        type=int,
        default=None,
        help="radar frames the network sees: the newest 4 are clustered, older ones add temporal context "
        "(default: NetConfig)",
    )
    trn.add_argument(
        "--time-slots",
        type=float,
        nargs="*",
        default=None,
        metavar="AGE_S",
        help="upper point ages (s) of the network's pooling slots; none: one pool (default: NetConfig)",
    )
    trn.add_argument("--quick", action="store_true", help="tiny run (20 sequences, 2 epochs) to check the set-up")
    radar_mars.add_train_arguments(trn)
    trn.set_defaults(func=run_train)

    ev = sub.add_parser("eval", help="MPJPE and PCK@10cm per held-out clip (SYNTHETIC) through the whole pipeline")
    ev.add_argument(
        "--weights", default=None, help=".pt file, 'simulator' or 'mars' (default: simulator; with --mars: mars)"
    )
    ev.add_argument("--sequences", type=int, default=12, help="simulated 2 s sequences per clip")
    ev.add_argument("--clips", nargs="*", default=None, help="default: every held-out clip")
    ev.add_argument("--seed", type=int, default=1000)
    ev.add_argument("--threads", type=int, default=1)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--no-smoothing", action="store_true", help="evaluate without the per-person One-Euro filter")
    ev.add_argument(
        "--refine",
        action="store_true",
        help="also fit a capsule body to each person's newest points after the network (radar/fitting.py)",
    )
    ev.add_argument("--json", metavar="OUT.json", help="also write the results as JSON")
    ev.add_argument(
        "--error-split",
        action="store_true",
        help="instead: where the error comes from per clip (clustering, centre, heading, limbs)",
    )
    radar_mars.add_arguments(ev)
    ev.set_defaults(func=run_eval)


def read_frames_npz(path: str | Path) -> tuple[np.ndarray, list[np.ndarray]]:
    """FRAMES.npz -> stamps (T,) float64 and T arrays (N_i, 5). Raises FramesFileError with what is wrong."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise FramesFileError(f"cannot read frames file '{path}': {exc}") from exc
    if "stamps" not in data.files:
        raise FramesFileError(f"frames file '{path}' has no 'stamps' array (T,) float64 seconds; has {data.files}")
    stamps = np.asarray(data["stamps"], np.float64).ravel()
    frames = []
    for i in range(len(stamps)):
        key = f"points_{i:04d}"
        if key not in data.files:
            raise FramesFileError(f"frames file '{path}' has {len(stamps)} stamps but no '{key}'")
        pts = data[key]
        if pts.ndim != 2 or pts.shape[1] != 5:
            raise FramesFileError(f"'{key}' in '{path}' must be (N, 5) x, y, z, velocity, intensity; got {pts.shape}")
        frames.append(pts)
    return stamps, frames


def run_estimate(args) -> int:
    from pose_perception.radar.pipeline import RadarPipelineConfig, RadarPosePipeline
    from pose_perception.radar.points import RadarInputError, to_rep103

    try:
        stamps, frames = read_frames_npz(args.frames)
    except FramesFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    pipe = RadarPosePipeline(
        RadarPipelineConfig(
            window_frames=args.window, weights_path=args.weights, device=args.device, radar_height_m=args.radar_height
        )
    )
    out_frames = []
    for stamp, pts in zip(stamps, frames):
        try:
            humans = pipe.process(float(stamp), to_rep103(pts, args.axes))
        except RadarInputError as exc:
            print(f"warning: frame at {stamp:.3f} s skipped: {exc}", file=sys.stderr)
            humans = []
        out_frames.append(
            {
                "stamp": float(stamp),
                "humans": [
                    {
                        "id": h.track_id,
                        "keypoints_3d": np.round(h.keypoints_3d[:17].astype(float), 4).tolist(),
                        "confidence": np.round(h.confidence[:17].astype(float), 4).tolist(),
                    }
                    for h in humans
                ],
            }
        )
    result = {"layout": "coco_body_17", "keypoint_names": list(COCO_BODY_17_NAMES), "frames": out_frames}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result))
    n = sum(len(f["humans"]) for f in out_frames)
    print(f"{len(out_frames)} frames, {n} person-estimates -> {args.out}")
    return 0


def _commit_id() -> str:
    try:
        root = Path(__file__).resolve().parents[3]
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--", "pose_perception"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run_train(args) -> int:
    if args.mars is not None:
        return radar_mars.run_train(args)
    from dataclasses import asdict, replace

    import torch

    from pose_perception.core.machine import machine_description
    from pose_perception.evaluation.radar import simulator as sim
    from pose_perception.evaluation.radar import training
    from pose_perception.radar.network import DEFAULT_WEIGHTS, NetConfig, pick_device, save_weights

    torch.set_num_threads(args.threads)
    data_cfg, train_cfg = training.default_configs(args.quick)
    if args.sequences:
        data_cfg = replace(data_cfg, sequences=args.sequences)
    if args.epochs:
        train_cfg = replace(train_cfg, epochs=args.epochs)
    if args.frames_per_sequence:
        data_cfg = replace(data_cfg, frames_per_sequence=args.frames_per_sequence)
    if args.orientation_prob is not None:
        data_cfg = replace(data_cfg, orientation_prob=args.orientation_prob)
    if args.balance_sources:
        data_cfg = replace(data_cfg, balance_sources=True)
    if args.speed_range is not None:
        data_cfg = replace(data_cfg, speed_range=tuple(args.speed_range))
    device = str(pick_device(args.device))
    train_cfg = replace(train_cfg, seed=args.seed, threads=args.threads, device=device)
    data_cfg = replace(data_cfg, seed=args.seed)
    net_cfg = (
        NetConfig()
        if not args.widths
        else replace(NetConfig(), widths=tuple(args.widths), head_width=max(args.widths[-1], NetConfig().head_width))
    )
    if args.num_points:
        net_cfg = replace(net_cfg, num_points=args.num_points)
    if args.context_frames:
        net_cfg = replace(net_cfg, context_frames=args.context_frames)
    if args.time_slots is not None:
        net_cfg = replace(net_cfg, time_slots_s=tuple(args.time_slots))
    print(f"machine: {machine_description()}")
    print(f"training clips (SYNTHETIC radar from mocap): {', '.join(sim.TRAIN_CLIPS)}")
    commit = _commit_id()  # the code that trains, before anyone edits the tree during a long run
    t0 = time.time()
    cache = Path(args.cache) if args.cache else None
    if cache and cache.is_file():
        blob = np.load(cache)
        data = {k[6:]: blob[k] for k in blob.files if k.startswith("train_")}
        val = {k[4:]: blob[k] for k in blob.files if k.startswith("val_")}
        print(f"data set from {cache}: {len(data['features'])} train / {len(val['features'])} val samples")
    else:
        data = training.generate_dataset(sim.TRAIN_CLIPS, data_cfg, net_cfg)
        # Validation: other sequences of the training clips (held-out clips are only for `radar eval`).
        val = training.generate_dataset(
            sim.TRAIN_CLIPS,
            replace(data_cfg, sequences=max(4, data_cfg.sequences // 10), seed=data_cfg.seed + 7919),
            net_cfg,
            log=None,
        )
        if cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(
                cache, **{f"train_{k}": v for k, v in data.items()}, **{f"val_{k}": v for k, v in val.items()}
            )
    sim_s = time.time() - t0
    print(f"simulated {len(data['features'])} train / {len(val['features'])} val samples in {sim_s:.0f} s")
    net, info = training.train_network(data, val, train_cfg, net_cfg)
    out = Path(args.out) if args.out else DEFAULT_WEIGHTS
    meta = {
        "description": "RadarPoseNet (PointNet) radar points -> COCO body 17, trained on SYNTHETIC radar data",
        "training_command": "pose-perception radar train "
        + " ".join(sys.argv[3:] if sys.argv[1:3] == ["radar", "train"] else []),
        "commit": commit,
        "machine": machine_description(),
        "train_clips": list(sim.TRAIN_CLIPS),
        "data": {**asdict(data_cfg), "train_samples": len(data["features"]), "val_samples": len(val["features"])},
        "train": asdict(train_cfg),
        "net": asdict(net_cfg),
        "simulate_seconds": round(sim_s, 1),
        "train_seconds": round(info["train_seconds"], 1),
        "final_val_mpjpe_limb12_cm": round(info["history"][-1]["val_mpjpe_limb12_m"] * 100, 2),
        "data_sources": "pybullet_data humanoid.urdf and humanoid3d_* / walker mocap clips (zlib licence; "
        "DeepMimic motion data)",
    }
    save_weights(net, out, meta)
    print(f"weights -> {out} ({out.stat().st_size / 1e6:.2f} MB); recipe -> {out.with_suffix('.json')}")
    return 0


def run_eval(args) -> int:
    if args.mars is not None:
        return radar_mars.run(args)
    import torch

    from pose_perception.core.machine import machine_description
    from pose_perception.evaluation.radar import simulator as sim
    from pose_perception.radar.network import RadarPoseRegressor
    from pose_perception.evaluation.radar.training import evaluate_pipeline

    torch.set_num_threads(args.threads)
    clips = tuple(args.clips) if args.clips else sim.EVAL_CLIPS
    leaked = sorted(set(clips) & set(sim.TRAIN_CLIPS))
    if leaked:
        print(f"warning: {leaked} are training clips; their numbers are not held-out figures", file=sys.stderr)
    regressor = RadarPoseRegressor(args.weights, args.device)
    print(f"machine: {machine_description()}")
    print(f"weights: {args.weights or 'shipped'} (commit {regressor.meta.get('commit', '?')})")
    print(
        "SYNTHETIC held-out evaluation: simulated radar from mocap clips not trained on, whole pipeline"
        + (" (no smoothing)" if args.no_smoothing else "")
        + (" + model-based refinement" if args.refine else "")
    )
    t0 = time.time()
    if args.error_split:
        return _print_error_split(regressor, clips, args)
    from pose_perception.radar.fitting import FitConfig
    from pose_perception.radar.pipeline import RadarPipelineConfig

    res = evaluate_pipeline(
        regressor,
        clips,
        sequences_per_clip=args.sequences,
        seed=args.seed,
        pipeline_config=RadarPipelineConfig(
            smoothing=not args.no_smoothing, refine=FitConfig() if args.refine else None
        ),
    )
    print(f"{'clip':28s} {'MPJPE limb12 (cm)':>18s} {'PCK@10cm':>9s} {'detected':>9s} {'frames':>7s}")
    for name, r in res.items():
        print(
            f"{name:28s} {r['mpjpe_limb12_cm']:18.2f} {r['pck10_limb12']:9.3f} {r['detection_rate']:9.3f} {r['frames']:7d}"
        )
    mean_mpjpe = float(np.nanmean([r["mpjpe_limb12_cm"] for r in res.values()]))
    mean_pck = float(np.nanmean([r["pck10_limb12"] for r in res.values()]))
    print(f"{'mean over clips':28s} {mean_mpjpe:18.2f} {mean_pck:9.3f}   ({time.time() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": machine_description(),
                    "synthetic": True,
                    "clips": res,
                    "mean_mpjpe_limb12_cm": mean_mpjpe,
                    "mean_pck10": mean_pck,
                },
                indent=2,
            )
        )
    return 0


def _print_error_split(regressor, clips: tuple[str, ...], args) -> int:
    from pose_perception.evaluation.radar.training import evaluate_error_split

    t0 = time.time()
    res = evaluate_error_split(regressor, clips, sequences_per_clip=max(1, args.sequences * 2 // 3))
    print("error split (network alone on the nearest cluster, no tracker / smoothing / mirror averaging), cm:")
    print(
        f"{'clip':28s} {'1 cluster':>9s} {'split':>6s} {'missed':>6s} {'pts in':>6s} {'centre':>7s} "
        f"{'MPJPE':>6s} {'centred':>8s} {'+heading':>8s}"
    )
    for name, r in res.items():
        if "mpjpe_cm" not in r:
            print(f"{name:28s} no cluster found")
            continue
        print(
            f"{name:28s} {r['one_cluster']:9.2f} {r['split']:6.2f} {r['missed']:6.2f} {r['person_points_in_cluster']:6.2f} "
            f"{r['centroid_to_pelvis_cm']:7.1f} {r['mpjpe_cm']:6.1f} {r['centred_cm']:8.1f} {r['centred_best_yaw_cm']:8.1f}"
        )
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"synthetic": True, "error_split": res}, indent=2))
    return 0
