"""Training samples from REAL recorded radar (MARS: TI IWR1443 + Kinect V2 skeletons) for RadarPoseNet.

Each frame goes through the pipeline's own front end (field-of-view gate, static clutter map, accumulation,
clustering: `front_end`), so the network is trained on exactly what the node gives it; the cluster nearest the
Kinect pelvis is the subject, and its target is the Kinect skeleton mapped to COCO 17 in the person frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from pose_perception.core.keypoints import COCO_BODY_17_MIRROR, pelvis
from pose_perception.radar.clustering import Cluster, StaticClutterMap
from pose_perception.evaluation.radar.mars import MarsRecording, radar_height_from_skeletons
from pose_perception.radar.network import NetConfig, person_frame, prepare_input
from pose_perception.radar.pipeline import RadarPipelineConfig, gate_field_of_view, people_from_cloud
from pose_perception.radar.points import FrameAccumulator

MATCH_RADIUS_M = 1.0  # a cluster whose centroid is this close (horizontally) to the Kinect pelvis is the subject


@dataclass(frozen=True)
class RealDataConfig:
    """mirror: add every sample mirrored left/right (off: the recorded points sit ~0.15 m to the radar's left of
    the Kinect body in both MARS sessions, and mirroring teaches the network to cancel that);
    scale_range: random body scale per sample (other subjects' sizes): about the cluster centroid
    horizontally and about the floor vertically;
    draws: random point subsets per frame when a person has more points than the network takes."""

    mirror: bool = False
    scale_range: tuple[float, float] | None = (0.85, 1.15)
    draws: int = 1
    seed: int = 0


def front_end(
    stamps_s: np.ndarray,
    frames: tuple[np.ndarray, ...],
    config: RadarPipelineConfig,
    context_frames: int,
    context_max_age_s: float = 0.0,
) -> Iterator[tuple[int, list[Cluster], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]]:
    """The pipeline's steps before tracking, frame by frame: yields (frame index, clusters, network inputs)."""
    clutter = StaticClutterMap()
    acc = FrameAccumulator(max(config.window_frames, context_frames), max(config.max_window_s, context_max_age_s))
    for k, (stamp, pts) in enumerate(zip(stamps_s, frames)):
        pts = gate_field_of_view(pts, config)
        if config.suppress_clutter and len(pts):
            pts = pts[clutter.filter(float(stamp), pts)]
        acc.add(float(stamp), pts)
        cloud, age, back = acc.stacked_frames()
        clusters, inputs = people_from_cloud(cloud, age, config.cluster, back, config.window_frames)
        yield k, clusters, inputs


def mirror_samples(features: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Person-frame samples mirrored left/right: features (S, N, F) y -> -y, joints (S, 17, 3) y -> -y with the
    left and right joints swapped."""
    f = features.copy()
    f[..., 1] = -f[..., 1]
    j = joints[:, list(COCO_BODY_17_MIRROR)].copy()
    j[..., 1] = -j[..., 1]
    return f, j


def real_dataset(
    recordings: list[MarsRecording],
    net_config: NetConfig = NetConfig(),
    pipeline_config: RadarPipelineConfig = RadarPipelineConfig(),
    config: RealDataConfig = RealDataConfig(),
    radar_height_m: float | None = None,
) -> dict[str, np.ndarray]:
    """REAL training samples: features (S, N, 8) float32, mask (S, N) bool, joints (S, 17, 3) float32 in the
    person frame relative to the cluster centroid (what the network predicts)."""
    rng = np.random.default_rng(config.seed)
    feats, masks, targets = [], [], []
    for rec in recordings:
        h = radar_height_from_skeletons(rec.kinect_m) if radar_height_m is None else radar_height_m
        gt_all = rec.coco17_m
        for k, clusters, inputs in front_end(
            rec.stamps_s, rec.frames, pipeline_config, net_config.context_frames, net_config.context_max_age_s
        ):
            if not clusters:
                continue
            gt = gt_all[k]
            d = [np.linalg.norm(c.centroid_m[:2] - pelvis(gt)[:2]) for c in clusters]
            i = int(np.argmin(d))
            if d[i] > MATCH_RADIUS_M:
                continue
            p, a, c = inputs[i]
            target = ((gt - c) @ person_frame(c)).astype(np.float32)
            for _ in range(config.draws):
                f, m = prepare_input(
                    p,
                    a,
                    c,
                    net_config.num_points,
                    rng,
                    radar_height_m=h,
                    intensity_log=net_config.intensity_log,
                    azimuth_bin_feature=net_config.azimuth_bin_feature,
                )
                t = target
                if config.scale_range is not None:
                    s = np.float32(rng.uniform(*config.scale_range))
                    f = f.copy()
                    f[:, :3] *= s
                    f[:, 7] *= s  # the centroid's height above the floor: a smaller body stands lower
                    t = t * s
                feats.append(f)
                masks.append(m)
                targets.append(t)
    if not feats:
        raise ValueError("no training sample: no cluster near the Kinect pelvis in any frame")
    out = {"features": np.stack(feats), "mask": np.stack(masks), "joints": np.stack(targets).astype(np.float32)}
    if config.mirror:
        f, j = mirror_samples(out["features"], out["joints"])
        out = {
            "features": np.concatenate([out["features"], f]),
            "mask": np.concatenate([out["mask"], out["mask"]]),
            "joints": np.concatenate([out["joints"], j]),
        }
    return out
