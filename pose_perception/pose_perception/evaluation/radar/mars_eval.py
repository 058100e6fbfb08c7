"""REAL evaluation on recorded MARS radar (TI IWR1443 + Kinect V2): the whole pipeline (clutter map,
clustering, tracking, network) frame by frame, and a fixed-template baseline, on the 12 COCO limb joints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pose_perception.core.keypoints import LIMB_12, pelvis
from pose_perception.evaluation.radar.mars import MarsRecording, radar_height_from_skeletons
from pose_perception.radar.pipeline import RadarPipelineConfig, RadarPosePipeline

MATCH_RADIUS_M = 1.0  # an estimate whose pelvis is this close (horizontally) to the Kinect pelvis is the subject


def joint_metrics(pred_m: np.ndarray, gt_m: np.ndarray) -> dict[str, float]:
    """pred_m, gt_m (F, J, 3) -> MPJPE (cm), PCK@10cm, per-coordinate mean absolute error (cm; x, y, z and
    their mean, as MARS reports it) over all frames and joints."""
    if len(pred_m) == 0:
        nan = float("nan")
        return {"mpjpe_cm": nan, "pck10": nan, "mae_cm": nan, "mae_x_cm": nan, "mae_y_cm": nan, "mae_z_cm": nan}
    d = pred_m - gt_m
    e = np.linalg.norm(d, axis=-1)
    mae = np.abs(d).reshape(-1, 3).mean(0) * 100
    return {
        "mpjpe_cm": float(e.mean() * 100),
        "pck10": float(np.mean(e < 0.10)),
        "mae_cm": float(mae.mean()),
        "mae_x_cm": float(mae[0]),
        "mae_y_cm": float(mae[1]),
        "mae_z_cm": float(mae[2]),
    }


def cloud_median(points: np.ndarray) -> np.ndarray | None:
    """(N, 5) -> (3,) median position, None for an empty frame."""
    return np.median(points[:, :3], axis=0) if len(points) else None


def fit_template(recordings: list[MarsRecording]) -> np.ndarray:
    """The baseline: the mean COCO-17 pose relative to each frame's point median, (17, 3) m, over recordings."""
    offsets = [gt - cloud_median(p) for rec in recordings for p, gt in zip(rec.frames, rec.coco17_m) if len(p)]
    if not offsets:
        raise ValueError("no frame with radar points to fit the template on")
    return np.mean(offsets, axis=0).astype(np.float32)


def template_predictions(template_m: np.ndarray, recording: MarsRecording) -> np.ndarray:
    """(T, 17, 3): the template at each frame's point median (the previous frame's for an empty frame)."""
    out, centre = np.zeros((len(recording), 17, 3), np.float32), np.zeros(3)
    for k, p in enumerate(recording.frames):
        m = cloud_median(p)
        centre = centre if m is None else m
        out[k] = template_m + centre
    return out


@dataclass
class PipelineRun:
    """people_per_frame (T,) int; pred_m (T, 17, 3) NaN where no estimate matched the subject."""

    people_per_frame: np.ndarray
    pred_m: np.ndarray


def run_pipeline(
    recording: MarsRecording, config: RadarPipelineConfig, regressor=None, radar_height_m: float | None = None
) -> PipelineRun:
    """Runs a fresh pipeline over the recording's frames in order (gaps between takes: the tracker coasts and
    ends tracks as it would live). The estimate whose pelvis is nearest the Kinect pelvis (within
    MATCH_RADIUS_M) is the subject's."""
    h = radar_height_from_skeletons(recording.kinect_m) if radar_height_m is None else radar_height_m
    if regressor is not None:
        regressor.radar_height_m = h
    from dataclasses import replace

    pipe = RadarPosePipeline(replace(config, radar_height_m=h), regressor=regressor)
    if regressor is None:
        pipe.regressor.radar_height_m = h
    people = np.zeros(len(recording), np.int64)
    pred = np.full((len(recording), 17, 3), np.nan, np.float32)
    for k, (stamp, pts, gt) in enumerate(zip(recording.stamps_s, recording.frames, recording.coco17_m)):
        humans = pipe.process(float(stamp), pts)
        people[k] = len(humans)
        if humans:
            d = [np.linalg.norm(pelvis(h_.keypoints_3d[:17])[:2] - pelvis(gt)[:2]) for h_ in humans]
            i = int(np.argmin(d))
            if d[i] <= MATCH_RADIUS_M:
                pred[k] = humans[i].keypoints_3d[:17]
    return PipelineRun(people, pred)


def summarise(pred_m: np.ndarray, gt_m: np.ndarray, people_per_frame: np.ndarray | None = None) -> dict[str, float]:
    """Metrics over LIMB_12 of the frames with an estimate, plus the fraction of frames with one, and the
    people-per-frame statistics when given."""
    limbs = list(LIMB_12)
    hit = np.all(np.isfinite(pred_m[:, limbs]), axis=(1, 2))
    out = joint_metrics(pred_m[hit][:, limbs], gt_m[hit][:, limbs])
    if hit.any():
        # Diagnostic, not a result: the error left after removing one constant offset (3,) for the whole subject,
        # i.e. what a per-session Kinect-to-radar alignment would leave (the offset differs between subjects).
        d = pred_m[hit][:, limbs] - gt_m[hit][:, limbs]
        offset = d.reshape(-1, 3).mean(0)
        out["offset_cm"] = [round(float(v) * 100, 2) for v in offset]
        out["mpjpe_offset_removed_cm"] = float(np.linalg.norm(d - offset, axis=-1).mean() * 100)
    out["frames"] = int(len(pred_m))
    out["matched"] = float(np.mean(hit)) if len(hit) else float("nan")
    if people_per_frame is not None:
        out["one_person"] = float(np.mean(people_per_frame == 1))
        out["people_mean"] = float(np.mean(people_per_frame))
        out["people_max"] = int(people_per_frame.max()) if len(people_per_frame) else 0
        out["no_person"] = float(np.mean(people_per_frame == 0))
    return out


def ghost_candidates(
    stamps_s: np.ndarray, frames, pelvis_xy_m, config: RadarPipelineConfig
) -> list[tuple[bool, float, float, float, float]]:
    """Evidence for the multipath-ghost rule (clustering.is_multipath_ghost): the front end with the ghost rules
    off, frame by frame; for every cluster other than the largest: (a person: bool, its range-normalised point
    deficit n_largest / (n * (r / r_largest)^2), its height extent m, how much farther than the largest it is (m),
    n_largest / n).
    pelvis_xy_m: per frame (P, 2) true pelvis positions; a cluster within 0.8 m of one that no larger cluster
    already claims is a person, any other a ghost (or a second piece of a body)."""
    from dataclasses import replace

    from pose_perception.evaluation.radar.mars_training import front_end

    off = replace(config, cluster=replace(config.cluster, ghost_range_ratio=np.inf, ghost_compact_ratio=np.inf))
    out = []
    for k, clusters, inputs in front_end(stamps_s, frames, off, 4):
        if len(clusters) < 2:
            continue
        truth = np.asarray(pelvis_xy_m[k], np.float64).reshape(-1, 2)
        claimed = set()
        owner = []
        for c in clusters:
            d = np.linalg.norm(truth - c.centroid_m[:2], axis=1)
            i = int(np.argmin(d)) if len(d) else -1
            person = i >= 0 and d[i] < 0.8 and i not in claimed
            claimed.add(i)
            owner.append(person)
        big = clusters[0]
        r0, n0 = float(np.hypot(*big.centroid_m[:2])), len(big.indices)
        for c, person, (pts, _, _) in zip(clusters[1:], owner[1:], inputs[1:]):
            r = float(np.hypot(*c.centroid_m[:2]))
            out.append(
                (person, n0 / (len(c.indices) * (r / r0) ** 2), float(np.ptp(pts[:, 2])), r - r0, n0 / len(c.indices))
            )
    return out
