"""SYNTHETIC body sequences along real motion: DeepMimic mocap clips posed onto anny, frame after frame.

Loading and retargeting are evaluation/human/synthetic.py's (load_mocap_clip, mocap_pose); this adds time: a clip at a rate.
"""

from __future__ import annotations


from pose_perception.human.body_model import MODEL_KEYPOINT_NAMES

# Upright clips of pybullet_data/data/motions used by `eval mesh` (a subset of synthetic.MOCAP_CLIPS).
DEFAULT_CLIPS = ("walk", "run", "jump", "dance_a", "kick", "punch")


def clip_bodies(poser, clip: str, rate_hz: float, count: int, phenotype: dict[str, float], first: int = 0):
    """[(stamp_s, vertices (V, 3), keypoints (23, 3) MODEL_KEYPOINT_NAMES), ...]: count frames of the clip from
    frame `first` (indices at rate_hz), posed by poser (a synthetic.AnnyPoser: anny's own full forward pass), in
    anny's world frame (z up, feet on z = 0), keeping the clip's heading. Raises synthetic.SyntheticDataError."""
    from pose_perception.evaluation.human.synthetic import load_mocap_clip, mocap_pose

    frames = load_mocap_clip(clip)
    stride = max(1, int(round(1.0 / (rate_hz * frames[0, 0]))))  # column 0: the frame duration in seconds
    picked = frames[::stride][first : first + count]
    rest = poser.pose().keypoints_133
    out = []
    for k, frame in enumerate(picked):
        body = poser.pose(mocap_pose(frame, rest, face_forward=False), phenotype)
        out.append((k / rate_hz, body.vertices, body.keypoints_133[: len(MODEL_KEYPOINT_NAMES)]))
    return out


def clip_length(clip: str, rate_hz: float) -> int:
    """Number of frames of the clip at rate_hz."""
    from pose_perception.evaluation.human.synthetic import load_mocap_clip

    frames = load_mocap_clip(clip)
    return len(frames[:: max(1, int(round(1.0 / (rate_hz * frames[0, 0]))))])
