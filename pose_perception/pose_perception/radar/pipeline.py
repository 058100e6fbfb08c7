"""Radar frames in, tracked people with COCO body 17 skeletons out: validation, static-clutter suppression,
accumulation, clustering, tracking and the point-set network, as one object the node and the CLI call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from pose_perception.core.filters import OneEuroFilter
from pose_perception.core.keypoints import BODY, COCO_WHOLEBODY_133
from pose_perception.core.types import HumanPose, Source
from pose_perception.core.frames import body_frame
from pose_perception.radar.clustering import (
    ClusterConfig,
    Cluster,
    StaticClutterMap,
    cluster_people,
    merge_fragments_and_ghosts,
)
from pose_perception.radar.fitting import FitConfig, refine_skeletons
from pose_perception.radar.network import RadarPoseRegressor
from pose_perception.radar.points import FrameAccumulator, StampOrderError, validate_points
from pose_perception.radar.tracking import MultiTargetTracker, TrackerConfig


# Older points this far (horizontally, m) from a person's centroid are that person's temporal context: a body
# lying down reaches ~0.9 m from its centre, and a person moving at 1 m/s goes 0.5 m in 0.5 s.
CONTEXT_RADIUS_M = 1.4


@dataclass(frozen=True)
class RadarPipelineConfig:
    """window_frames: the newest frames clustered into people; the network also sees the older frames its
    weights were trained with (NetConfig.context_frames) as context; max_window_s: no frame older than this is
    used (s); max_points: larger frames are refused;
    coast_half_life_s: how fast the confidence of a person who gives no points (standing still) decays.
    radar_height_m is used when the pipeline builds its own regressor; a given regressor keeps its own."""

    window_frames: int = 4
    max_window_s: float = 0.6  # covers weights with 12 context frames at 20 Hz (the oldest is 0.55 s old)
    max_points: int = 10000
    suppress_clutter: bool = True
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    coast_half_life_s: float = 0.5
    smoothing: bool = True  # One-Euro filter per person on the joints (radar skeletons jitter frame to frame)
    smooth_min_cutoff_hz: float = 2.0
    smooth_beta: float = 1.0
    weights_path: str | None = None
    device: str = "auto"
    radar_height_m: float = 1.0  # mounting height of the radar above the floor
    # Model-based refinement of the network's skeletons (radar/fitting.py); off: it did not lower the error
    # (docs/radar.md).
    refine: FitConfig | None = None
    # Points outside the antenna's field of view are multipath ghosts (a real TI IWR1443 reports them at up to
    # 90 degrees; docs/radar.md, REAL). None: no gate (sensors with a wider view).
    fov_azimuth_deg: float | None = 60.0
    fov_elevation_deg: float | None = 35.0


def gate_field_of_view(points: np.ndarray, config: RadarPipelineConfig) -> np.ndarray:
    """(N, 5) REP-103 points -> the rows inside the configured azimuth / elevation field of view."""
    if len(points) == 0 or (config.fov_azimuth_deg is None and config.fov_elevation_deg is None):
        return points
    xy = np.hypot(points[:, 0], points[:, 1])
    keep = np.ones(len(points), bool)
    if config.fov_azimuth_deg is not None:
        keep &= np.abs(np.degrees(np.arctan2(points[:, 1], points[:, 0]))) <= config.fov_azimuth_deg
    if config.fov_elevation_deg is not None:
        keep &= np.abs(np.degrees(np.arctan2(points[:, 2], xy))) <= config.fov_elevation_deg
    return points[keep]


def people_from_cloud(
    points: np.ndarray,
    age_s: np.ndarray,
    config: ClusterConfig,
    frames_back: np.ndarray | None = None,
    cluster_frames: int | None = None,
    context_radius_m: float = CONTEXT_RADIUS_M,
) -> tuple[list[Cluster], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Accumulated (M, 5) points, their age (M,) s and frame index (M,) (0 = newest) -> clusters and the network
    inputs (points, age, centroid) of each. Training uses this same function, so the network sees what the
    pipeline gives it.

    Only the newest `cluster_frames` frames are clustered (all when None): older points smear a moving person
    along its path. Each older point within context_radius_m (horizontally) of a cluster's centroid joins the
    network input of the nearest cluster: temporal context (where the limbs were, their radial velocities)
    without changing the clusters, the centroids or the tracking.
    """
    recent = (
        np.ones(len(points), bool) if frames_back is None or cluster_frames is None else frames_back < cluster_frames
    )
    recent_idx = np.flatnonzero(recent)
    recent_pts = points[recent_idx]
    clusters = merge_fragments_and_ghosts(recent_pts, cluster_people(recent_pts, config), config)
    clusters = [replace(c, indices=recent_idx[c.indices]) for c in clusters]
    members = [c.indices for c in clusters]
    older = np.flatnonzero(~recent)
    if clusters and len(older):
        centres = np.array([c.centroid_m[:2] for c in clusters])
        d = np.linalg.norm(points[older, None, :2] - centres[None], axis=-1)
        nearest = np.argmin(d, axis=1)
        near = d[np.arange(len(older)), nearest] <= context_radius_m
        members = [np.concatenate([older[near & (nearest == i)], m]) for i, m in enumerate(members)]
    return clusters, [(points[m], age_s[m], c.centroid_m) for c, m in zip(clusters, members)]


@dataclass
class _TrackMemory:
    joints_rel_m: np.ndarray  # (17, 3) relative to the track position
    confidence: np.ndarray  # (17,)
    stamp_s: float
    smoother: OneEuroFilter | None = None


class RadarPosePipeline:
    """process(stamp_s, points (N, 5) float32 [x, y, z, velocity, intensity] REP-103) -> list[HumanPose].

    HumanPose: source RADAR, layout coco_wholebody_133 with only body 17 filled (rest NaN, confidence 0),
    keypoints_3d in metres in the radar frame, keypoints_uv and bbox NaN, T_sensor_body at the pelvis.
    Raises RadarInputError subclasses for bad frames (the state is left untouched).
    """

    def __init__(
        self, config: RadarPipelineConfig = RadarPipelineConfig(), regressor: RadarPoseRegressor | None = None
    ):
        self.config = config
        self.regressor = regressor or RadarPoseRegressor(config.weights_path, config.device, config.radar_height_m)
        net_cfg = self.regressor.net.config
        self.accumulator = FrameAccumulator(
            max(config.window_frames, net_cfg.context_frames), max(config.max_window_s, net_cfg.context_max_age_s)
        )
        self.clutter = StaticClutterMap()
        self.tracker = MultiTargetTracker(config.tracker)
        self._memory: dict[int, _TrackMemory] = {}
        self.last_timings_s: dict[str, float] = {}  # per-stage wall time of the last process() call

    def reset(self) -> None:
        self.accumulator.reset()
        self.clutter.reset()
        self.tracker.reset()
        self._memory.clear()

    def process(self, stamp_s: float, points: np.ndarray) -> list[HumanPose]:
        t0 = time.perf_counter()
        points = validate_points(points, self.config.max_points)
        last = self.accumulator.last_stamp_s
        if not np.isfinite(stamp_s):
            raise StampOrderError(f"radar frame stamp {stamp_s} is not a finite number of seconds")
        if last is not None and stamp_s < last:
            raise StampOrderError(
                f"radar frame stamp {stamp_s:.3f} s is older than the previous {last:.3f} s; frame ignored "
                "(call reset() if the source restarted)"
            )
        points = gate_field_of_view(points, self.config)
        if self.config.suppress_clutter and len(points):
            points = points[self.clutter.filter(stamp_s, points)]
        self.accumulator.add(stamp_s, points)
        cloud, age, back = self.accumulator.stacked_frames()
        t1 = time.perf_counter()
        clusters, inputs = people_from_cloud(cloud, age, self.config.cluster, back, self.config.window_frames)
        t2 = time.perf_counter()
        tracks = self.tracker.update(
            stamp_s,
            np.array([c.centroid_m for c in clusters]).reshape(-1, 3),
            np.array([len(c.indices) for c in clusters]),
        )
        measured = [t for t in tracks if t.cluster is not None]
        t3 = time.perf_counter()
        people = [inputs[t.cluster] for t in measured]
        joints, conf = self.regressor.predict(people)
        t4 = time.perf_counter()
        self.last_timings_s = {"input+clutter": t1 - t0, "clustering": t2 - t1, "tracking": t3 - t2, "network": t4 - t3}
        if self.config.refine is not None:
            joints = refine_skeletons(
                joints, conf, [p for p, _, _ in people], [a for _, a, _ in people], self.config.refine
            )
            self.last_timings_s["refine"] = time.perf_counter() - t4
        cfg = self.config
        for t, j, c in zip(measured, joints, conf):
            old = self._memory.get(t.id)
            smoother = (
                old.smoother
                if old is not None
                else (OneEuroFilter(cfg.smooth_min_cutoff_hz, cfg.smooth_beta) if cfg.smoothing else None)
            )
            if smoother is not None:
                j = smoother(stamp_s, j).astype(np.float32)
            self._memory[t.id] = _TrackMemory(j - t.position_m, c, stamp_s, smoother)
        alive = {t.id for t in tracks}
        self._memory = {k: v for k, v in self._memory.items() if k in alive}
        humans = []
        for t in tracks:
            mem = self._memory.get(t.id)
            if mem is None:
                continue
            # A person without points this frame (standing still) keeps the last skeleton, fading out.
            fade = 0.5 ** ((stamp_s - mem.stamp_s) / self.config.coast_half_life_s)
            humans.append(self._human(t.id, mem.joints_rel_m + t.position_m, mem.confidence * fade))
        return humans

    @staticmethod
    def _human(track_id: int, joints17_m: np.ndarray, confidence17: np.ndarray) -> HumanPose:
        k = COCO_WHOLEBODY_133.num_keypoints
        kp3d = np.full((k, 3), np.nan, np.float32)
        kp3d[BODY] = joints17_m
        conf = np.zeros(k, np.float32)
        conf[BODY] = confidence17
        return HumanPose(
            track_id=int(track_id),
            score=float(np.mean(confidence17)),
            keypoints_uv=np.full((k, 2), np.nan, np.float32),
            confidence=conf,
            keypoints_3d=kp3d,
            bbox_xyxy=np.full(4, np.nan, np.float32),
            source=Source.RADAR,
            T_sensor_body=body_frame(joints17_m.astype(np.float64)),
        )
