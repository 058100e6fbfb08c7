"""`pose-perception radar eval --mars [DIR]`: REAL figures on recorded MARS radar (TI IWR1443 + Kinect V2).

Every subject with radar + Kinect is evaluated as held out: the pipeline runs with the weights given for that
subject (`--weights-for SUBJECT PATH`, e.g. weights trained on the other subject) or else `--weights` / the
shipped MARS weights ("mars": trained on both subjects, so NOT held out there), and the template baseline is
fitted on the other subjects' recordings.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


def add_arguments(ev) -> None:
    ev.add_argument(
        "--mars",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="REAL evaluation on MARS recordings instead of the simulator (default DIR: "
        "../shared/realdata/radar/mars next to the repository)",
    )
    ev.add_argument(
        "--variant",
        choices=("woutlier", "wooutlier", "both"),
        default="both",
        help="MARS: points as recorded (woutlier), with the authors' outlier removal (wooutlier), or both",
    )
    ev.add_argument("--subjects", type=int, nargs="*", default=None, help="MARS: subjects to evaluate (default: all)")
    ev.add_argument(
        "--weights-for",
        nargs=2,
        action="append",
        default=[],
        metavar=("SUBJECT", "WEIGHTS"),
        help="MARS: weights to evaluate on this subject (trained without it); repeatable",
    )
    ev.add_argument(
        "--sensor-stats",
        action="store_true",
        help="MARS: instead, print the real sensor's statistics next to the matched simulator's (sim_real.py)",
    )
    ev.add_argument(
        "--smooth-min-cutoff",
        type=float,
        default=None,
        metavar="HZ",
        help="MARS: the per-person One-Euro filter's cutoff at rest (default: RadarPipelineConfig's)",
    )
    ev.add_argument(
        "--smooth-beta",
        type=float,
        default=None,
        help="MARS: the One-Euro filter's cutoff increase per m/s (default: RadarPipelineConfig's)",
    )
    ev.add_argument(
        "--ghost-stats",
        action="store_true",
        help="MARS: instead, print the evidence for the multipath-ghost rule: REAL ghost clusters (as "
        "recorded) next to SYNTHETIC people of bench radar's 3-person scene",
    )
    ev.add_argument(
        "--radar-height",
        type=float,
        default=None,
        help="MARS: radar height above the floor (m); default: from the recording's Kinect feet",
    )


def run(args) -> int:
    from dataclasses import replace

    import torch

    from pose_perception.core.machine import machine_description
    from pose_perception.evaluation.radar import mars
    from pose_perception.evaluation.radar import mars_eval as me
    from pose_perception.radar.network import RadarModelError, RadarPoseRegressor
    from pose_perception.radar.pipeline import RadarPipelineConfig

    torch.set_num_threads(args.threads)
    root = Path(args.mars) if args.mars else mars.default_mars_dir()
    if not root.is_dir():
        print(
            f"error: MARS data not found at '{root}'. It is kept beside the repository in "
            "../shared/realdata/radar/mars; pass its location with --mars DIR",
            file=sys.stderr,
        )
        return 2
    variants = mars.VARIANTS if args.variant == "both" else (args.variant,)
    subjects = sorted({s for s, _ in mars.list_recordings(root, variants[0])})
    all_subjects = list(subjects)
    if args.subjects:
        subjects = [s for s in subjects if s in args.subjects]
    if not subjects:
        print(f"error: no radar + Kinect recordings under '{root / variants[0]}'", file=sys.stderr)
        return 2
    if args.sensor_stats:
        return _print_sensor_stats(root, subjects)
    if args.ghost_stats:
        return _print_ghost_stats(root, subjects)
    weights_for = {int(s): p for s, p in args.weights_for}
    pipe_cfg = RadarPipelineConfig(smoothing=not args.no_smoothing)
    if args.smooth_min_cutoff is not None:
        pipe_cfg = replace(pipe_cfg, smooth_min_cutoff_hz=args.smooth_min_cutoff)
    if args.smooth_beta is not None:
        pipe_cfg = replace(pipe_cfg, smooth_beta=args.smooth_beta)
    print(f"machine: {machine_description()}")
    print(f"REAL evaluation: MARS recordings in {root} (TI IWR1443, Kinect V2 skeletons), 12 COCO limb joints")
    print(
        "smoothing: "
        + (
            f"One-Euro, min cutoff {pipe_cfg.smooth_min_cutoff_hz:g} Hz, beta {pipe_cfg.smooth_beta:g}"
            if pipe_cfg.smoothing
            else "off"
        )
    )
    t0 = time.time()
    results = {}
    try:
        for s in subjects:
            weights = weights_for.get(s, args.weights or "mars")
            regressor = RadarPoseRegressor(weights, args.device)
            others = [o for o in all_subjects if o != s] or [s]
            template = me.fit_template([r for o in others for r in mars.read_subject(root, o, "wooutlier")])
            for v in variants:
                recs = mars.read_subject(root, s, v)
                runs = [me.run_pipeline(r, pipe_cfg, regressor, args.radar_height) for r in recs]
                gt = np.concatenate([r.coco17_m for r in recs])
                net = me.summarise(
                    np.concatenate([x.pred_m for x in runs]), gt, np.concatenate([x.people_per_frame for x in runs])
                )
                tmpl = me.summarise(np.concatenate([me.template_predictions(template, r) for r in recs]), gt)
                results[f"subject{s}/{v}"] = {
                    "weights": weights,
                    "weights_commit": regressor.meta.get("commit", "?"),
                    "template_from_subjects": others,
                    "pipeline": net,
                    "template": tmpl,
                }
    except (mars.MarsDataError, RadarModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"{'subject/variant':22s} {'method':9s} {'MPJPE cm':>8s} {'PCK@10':>7s} {'MAE cm':>7s} {'x':>5s} {'y':>5s} {'z':>5s} "
        f"{'matched':>7s} {'1 person':>8s} {'people':>6s} {'max':>4s}"
    )
    for key, r in results.items():
        for method in ("pipeline", "template"):
            m = r[method]
            extra = f" {m['one_person']:8.3f} {m['people_mean']:6.2f} {m['people_max']:4d}" if "one_person" in m else ""
            print(
                f"{key:22s} {method:9s} {m['mpjpe_cm']:8.2f} {m['pck10']:7.3f} {m['mae_cm']:7.2f} {m['mae_x_cm']:5.1f} "
                f"{m['mae_y_cm']:5.1f} {m['mae_z_cm']:5.1f} {m['matched']:7.3f}{extra}"
            )
    print(
        "diagnostic (not a result): one constant offset per subject removed (Kinect-to-radar alignment differs "
        "between sessions):"
    )
    for key, r in results.items():
        for method in ("pipeline", "template"):
            m = r[method]
            if "offset_cm" in m:
                print(
                    f"  {key:22s} {method:9s} offset (x, y, z) {m['offset_cm']} cm -> MPJPE {m['mpjpe_offset_removed_cm']:.2f} cm"
                )
    for key, r in results.items():
        print(
            f"  {key}: weights {r['weights']} (commit {r['weights_commit']}); template fitted on subjects "
            f"{r['template_from_subjects']}"
        )
    print(f"(MAE: per-coordinate mean absolute error in the REP-103 radar frame; {time.time() - t0:.0f} s)")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": machine_description(), "real": True, "data": str(root), "results": results}, indent=2
            )
        )
    return 0


def add_train_arguments(trn) -> None:
    trn.add_argument(
        "--mars",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="train on REAL MARS recordings (default DIR: ../shared/realdata/radar/mars next to the "
        "repository); the simulator adds --sim-sequences SYNTHETIC sequences",
    )
    trn.add_argument(
        "--train-subjects", type=int, nargs="+", default=None, help="MARS subjects to train on (default: all)"
    )
    trn.add_argument(
        "--val-subjects",
        type=int,
        nargs="*",
        default=None,
        help="MARS subjects to validate on (never trained on); none: the training error is reported",
    )
    trn.add_argument(
        "--sim-sequences",
        type=int,
        default=0,
        help="with --mars: SYNTHETIC 2 s sequences of the simulator matched to the real sensor (evaluation/radar/sim_real.py) "
        "to add (0: none)",
    )
    trn.add_argument(
        "--sim-elevation-match",
        action="store_true",
        help="with --sim-sequences: map each simulated recording's point elevations by rank onto the training "
        "subjects' real ones (sim_real.RealSensorConfig.elevation_quantiles)",
    )
    trn.add_argument(
        "--no-azimuth-flag",
        action="store_true",
        help="with --mars: without the zero-azimuth-bin point feature (NetConfig.azimuth_bin_feature)",
    )
    trn.add_argument(
        "--mirror",
        action="store_true",
        help="with --mars: add every sample mirrored left/right and average mirrored estimates at run time "
        "(off: the real recordings are not mirror-symmetric)",
    )
    trn.add_argument(
        "--no-real", action="store_true", help="with --mars: train on the simulator only, validate on MARS"
    )
    trn.add_argument(
        "--data-cache",
        default=None,
        metavar="DIR",
        help="with --mars: store / reuse the prepared REAL and SYNTHETIC samples here (keyed by everything that "
        "shapes them), so runs that differ only in training settings skip the front end and the simulation",
    )
    trn.add_argument("--aug-yaw", type=float, default=0.0, metavar="DEG", help="online augmentation: body yaw +-DEG")
    trn.add_argument(
        "--aug-shift", type=float, default=0.0, metavar="M", help="online augmentation: points and joints moved N(0, M)"
    )
    trn.add_argument(
        "--aug-scale",
        type=float,
        nargs=2,
        default=None,
        metavar=("MIN", "MAX"),
        help="online augmentation: body scale per sample (on top of the REAL samples' own x0.85-1.15)",
    )
    trn.add_argument(
        "--aug-doppler", type=float, default=0.0, help="online augmentation: radial velocity x N(1, SIGMA) per sample"
    )
    trn.add_argument(
        "--aug-intensity", type=float, default=0.0, help="online augmentation: intensity feature + N(0, SIGMA)"
    )
    trn.add_argument(
        "--init",
        default=None,
        metavar="W.pt",
        help="with --mars: fine-tune these weights (e.g. trained with --no-real on the simulator) instead of "
        "starting from random ones; the network settings come from them",
    )
    trn.add_argument(
        "--ema",
        type=float,
        default=0.0,
        metavar="DECAY",
        help="keep and save an exponential moving average of the weights (per step, e.g. 0.999; 0: off)",
    )
    trn.add_argument("--bone-loss", type=float, default=0.0, metavar="W", help="weight of the bone-length loss")
    trn.add_argument(
        "--sim-motion-subjects",
        type=int,
        nargs="*",
        default=None,
        help="with --sim-sequences: MARS subjects whose Kinect motion drives the simulator (default: 2 "
        "(Kinect only) and the training subjects; validation subjects are always left out)",
    )


def run_train(args) -> int:
    from dataclasses import asdict, replace

    import torch

    from pose_perception.evaluation.cli.radar import _commit_id
    from pose_perception.core.machine import machine_description
    from pose_perception.evaluation.radar import mars
    from pose_perception.evaluation.radar import mars_training as mt
    from pose_perception.evaluation.radar import training
    from pose_perception.radar.network import MARS_WEIGHTS, NetConfig, pick_device, save_weights
    from pose_perception.radar.pipeline import RadarPipelineConfig

    torch.set_num_threads(args.threads)
    root = Path(args.mars) if args.mars else mars.default_mars_dir()
    if not root.is_dir():
        print(f"error: MARS data not found at '{root}'; pass its location with --mars DIR", file=sys.stderr)
        return 2
    commit = _commit_id()
    available = sorted({s for s, _ in mars.list_recordings(root)})
    val_subjects = args.val_subjects or []
    train_subjects = args.train_subjects or [s for s in available if s not in val_subjects]
    if set(train_subjects) & set(val_subjects):
        print(
            f"error: subjects {sorted(set(train_subjects) & set(val_subjects))} are in both the training and "
            "the validation set",
            file=sys.stderr,
        )
        return 2
    net_cfg = replace(
        NetConfig(), intensity_log=True, azimuth_bin_feature=not args.no_azimuth_flag, mirror_symmetric=args.mirror
    )
    if args.widths:
        net_cfg = replace(net_cfg, widths=tuple(args.widths), head_width=max(args.widths[-1], NetConfig().head_width))
    if args.num_points:
        net_cfg = replace(net_cfg, num_points=args.num_points)
    if args.context_frames:
        # 10 Hz: the oldest context frame is (context_frames - 1) x 0.1 s old (+ half a frame of slack).
        net_cfg = replace(
            net_cfg,
            context_frames=args.context_frames,
            context_max_age_s=(args.context_frames - 0.5) * mars.FRAME_PERIOD_S,
        )
    if args.time_slots is not None:
        net_cfg = replace(net_cfg, time_slots_s=tuple(args.time_slots))
    init_net = None
    if args.init:
        from pose_perception.radar.network import RadarModelError, load_weights

        try:
            init_net, _ = load_weights(Path(args.init))
        except RadarModelError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        net_cfg = init_net.config  # fine-tuning keeps the architecture and the input features
    train_cfg = replace(
        training.TrainConfig(),
        epochs=args.epochs or 20,
        seed=args.seed,
        threads=args.threads,
        device=str(pick_device(args.device)),
        yaw_deg=args.aug_yaw,
        shift_m=args.aug_shift,
        scale_range=tuple(args.aug_scale) if args.aug_scale else None,
        doppler_jitter=args.aug_doppler,
        intensity_jitter=args.aug_intensity,
        bone_weight=args.bone_loss,
        ema_decay=args.ema,
    )
    # What shapes the prepared samples (not the network's widths or the training settings): the cache key.
    shape_cfg = {k: v for k, v in asdict(net_cfg).items() if k not in ("widths", "head_width", "time_slots_s")}

    def cached(kind: str, key: dict, make):
        if not args.data_cache:
            return make()
        import hashlib

        digest = hashlib.sha1(json.dumps({"kind": kind, **key, **shape_cfg}, sort_keys=True).encode()).hexdigest()
        path = Path(args.data_cache) / f"{kind}_{digest[:12]}.npz"
        if path.is_file():
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        out = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **out)
        return out

    pipe_cfg = RadarPipelineConfig()
    print(f"machine: {machine_description()}")
    t0 = time.time()
    parts, sources = [], []
    try:
        if not args.no_real:
            recs = [r for s in train_subjects for v in mars.VARIANTS for r in mars.read_subject(root, s, v)]
            parts.append(
                cached(
                    "real",
                    {"subjects": train_subjects, "mirror": args.mirror, "seed": args.seed},
                    lambda: mt.real_dataset(
                        recs, net_cfg, pipe_cfg, mt.RealDataConfig(mirror=args.mirror, seed=args.seed)
                    ),
                )
            )
            sources.append(f"REAL: MARS subjects {train_subjects} (woutlier + wooutlier, all radar splits)")
            print(f"REAL samples: {len(parts[-1]['features'])} from {len(recs)} recordings ({time.time() - t0:.0f} s)")
        if args.sim_sequences:
            from pose_perception.evaluation.radar import sim_real

            motion_subjects = sorted(
                set(args.sim_motion_subjects if args.sim_motion_subjects is not None else [2, *train_subjects])
                - set(val_subjects)
            )

            def simulate():
                motion = mars.read_kinect_motion(root, motion_subjects)
                real_all = [r for s in train_subjects for r in mars.read_subject(root, s, "woutlier")]
                sensor = sim_real.RealSensorConfig(intensity_quantiles=sim_real.intensity_quantiles(real_all))
                if args.sim_elevation_match:
                    body = [r for s in train_subjects for r in mars.read_subject(root, s, "wooutlier")]
                    sensor = replace(sensor, elevation_quantiles=sim_real.elevation_quantiles(body))
                return sim_real.matched_dataset(motion, args.sim_sequences, net_cfg, pipe_cfg, args.seed, sensor)

            key = {"motion": motion_subjects, "sequences": args.sim_sequences, "intensity_from": train_subjects}
            if args.sim_elevation_match:
                key["elevation_from"] = train_subjects
            parts.append(cached("sim", {**key, "seed": args.seed}, simulate))
            sources.append(
                f"SYNTHETIC: {args.sim_sequences} x 2 s of the simulator matched to the MARS sensor, driven "
                f"by the Kinect motion of MARS subjects {motion_subjects}"
            )
            print(f"SYNTHETIC samples: {len(parts[-1]['features'])} ({time.time() - t0:.0f} s)")
        if not parts:
            print("error: nothing to train on (--no-real without --sim-sequences)", file=sys.stderr)
            return 2
        data = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        if val_subjects:
            vrecs = [r for s in val_subjects for r in mars.read_subject(root, s, "woutlier")]
            val = cached(
                "val",
                {"subjects": val_subjects},
                lambda: mt.real_dataset(
                    vrecs, net_cfg, pipe_cfg, mt.RealDataConfig(mirror=False, scale_range=None, seed=1)
                ),
            )
        else:
            idx = np.random.default_rng(1).choice(
                len(data["features"]), min(2000, len(data["features"])), replace=False
            )
            val = {k: v[idx] for k, v in data.items()}
    except mars.MarsDataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    data_s = time.time() - t0
    print(
        f"{len(data['features'])} training samples, {len(val['features'])} validation samples "
        f"({'REAL held-out subjects ' + str(val_subjects) if val_subjects else 'training samples: not held out'})"
    )
    net, info = training.train_network(data, val, train_cfg, net_cfg, init=init_net)
    out = Path(args.out) if args.out else MARS_WEIGHTS
    meta = {
        "description": "RadarPoseNet (PointNet) radar points -> COCO body 17, trained on REAL MARS radar"
        + (" and SYNTHETIC simulator data" if args.sim_sequences else ""),
        "training_command": "pose-perception radar train "
        + " ".join(sys.argv[3:] if sys.argv[1:3] == ["radar", "train"] else []),
        "commit": commit,
        "machine": machine_description(),
        "data_sources": sources,
        "data_licence": "MARS (SizheAn/MARS): MIT licence; simulator motion: pybullet_data (zlib)",
        "train_subjects": [] if args.no_real else train_subjects,
        "val_subjects": val_subjects,
        "train_samples": len(data["features"]),
        "val_samples": len(val["features"]),
        "train": asdict(train_cfg),
        "net": asdict(net_cfg),
        "data_seconds": round(data_s, 1),
        "train_seconds": round(info["train_seconds"], 1),
        "final_val_mpjpe_limb12_cm": round(info["history"][-1]["val_mpjpe_limb12_m"] * 100, 2),
    }
    if args.init:
        init_json = Path(args.init).with_suffix(".json")
        meta["fine_tuned_from"] = {
            "weights": str(args.init),
            "recipe": json.loads(init_json.read_text()) if init_json.is_file() else None,
        }
    save_weights(net, out, meta)
    print(f"weights -> {out} ({out.stat().st_size / 1e6:.2f} MB); recipe -> {out.with_suffix('.json')}")
    return 0


def _print_ghost_stats(root: Path, subjects: list[int]) -> int:
    from pose_perception.evaluation.cli.bench_radar import simulate_scene
    from pose_perception.core.keypoints import pelvis
    from pose_perception.evaluation.radar import mars
    from pose_perception.evaluation.radar import mars_eval as me
    from pose_perception.radar.clustering import ClusterConfig
    from pose_perception.radar.pipeline import RadarPipelineConfig

    cfg = RadarPipelineConfig()
    groups = {}
    for s in subjects:
        for rec in mars.read_subject(root, s, "woutlier"):
            rows = me.ghost_candidates(rec.stamps_s, rec.frames, [pelvis(g)[None, :2] for g in rec.coco17_m], cfg)
            groups.setdefault(f"REAL MARS subjects {subjects}, as recorded: not the subject", []).extend(
                r for r in rows if not r[0]
            )
    for seed in (3, 4, 5):
        frames = simulate_scene(3, 20.0, 15.0, seed, with_truth=True)
        rows = me.ghost_candidates(
            np.array([f[0] for f in frames]),
            tuple(f[1] for f in frames),
            [f[2][:, [11, 12], :2].mean(axis=1) for f in frames],
            cfg,
        )
        groups.setdefault("SYNTHETIC bench radar scene (seeds 3-5): people", []).extend(r for r in rows if r[0])
    c = ClusterConfig()
    print("clusters other than the largest, with the ghost rules off (front end only); quartiles 5/25/50/75/95 %")
    for name, rows in groups.items():
        a = np.array([r[1:] for r in rows]).reshape(-1, 4)
        behind = a[:, 2] > c.ghost_behind_m
        by_range = behind & (a[:, 0] >= c.ghost_range_ratio)
        compact = behind & (a[:, 1] < c.ghost_min_height_m) & (a[:, 3] >= c.ghost_compact_ratio)
        print(f"{name}: {len(a)} clusters")
        print(f"  points deficit for their range: {np.round(np.percentile(a[:, 0], [5, 25, 50, 75, 95]), 2)}")
        print(f"  height extent (m):              {np.round(np.percentile(a[:, 1], [5, 25, 50, 75, 95]), 2)}")
        print(
            f"  farther than the largest by > {c.ghost_behind_m} m and deficit >= {c.ghost_range_ratio}: "
            f"{np.mean(by_range):.3f}; or lower than {c.ghost_min_height_m} m with "
            f"{c.ghost_compact_ratio}x fewer points: {np.mean(by_range | compact):.3f} (the fraction the rules drop)"
        )
    return 0


def _print_sensor_stats(root: Path, subjects: list[int]) -> int:
    from dataclasses import replace

    from pose_perception.evaluation.radar import mars, sim_real

    real = [r for s in subjects for r in mars.read_subject(root, s, "woutlier")]
    sensor = sim_real.RealSensorConfig(intensity_quantiles=sim_real.intensity_quantiles(real))
    body = [r for s in subjects for r in mars.read_subject(root, s, "wooutlier")]
    elevated = replace(sensor, elevation_quantiles=sim_real.elevation_quantiles(body))
    motion = mars.read_kinect_motion(root, [2])
    rows = {
        f"REAL MARS subjects {subjects} (as recorded)": sim_real.sensor_statistics(real),
        f"REAL MARS subjects {subjects} (outliers removed)": sim_real.sensor_statistics(body),
        "SYNTHETIC matched (sim_real, subject 2 Kinect motion)": sim_real.sensor_statistics(
            sim_real.random_sequences(motion, 30, 20, np.random.default_rng(0), sensor)
        ),
        "SYNTHETIC matched + elevations (--sim-elevation-match)": sim_real.sensor_statistics(
            sim_real.random_sequences(motion, 30, 20, np.random.default_rng(0), elevated)
        ),
        "SYNTHETIC issue-5 simulator model": None,
    }
    from pose_perception.evaluation.radar import simulator as sim
    from pose_perception.evaluation.radar.training import random_sequence

    rng = np.random.default_rng(0)
    frames = [
        f
        for _ in range(10)
        for f in random_sequence(
            rng, sim.load_skeleton(), [sim.load_clip("humanoid3d_dance_b")], 20, allow_mirror=False
        )
    ]
    rec = mars.MarsRecording(
        "sim",
        0,
        "sim",
        "synthetic",
        np.arange(len(frames)) * 0.05,
        tuple(f[0] for f in frames),
        np.zeros((len(frames), 25, 3), np.float32),
    )
    rows["SYNTHETIC issue-5 simulator model"] = sim_real.sensor_statistics([rec])
    keys = list(next(iter(rows.values())))
    print(f"{'source':55s} " + " ".join(f"{k:>16s}" for k in keys))
    for name, st in rows.items():
        print(f"{name:55s} " + " ".join(f"{st[k]:16.3f}" for k in keys))
    return 0
