"""Real human motion for synthetic bodies: DeepMimic mocap clips (pybullet_data) retargeted onto the body-model groups.

Used by `eval mesh` / `bench mesh` and the tests to pose anny (human/synthetic.py) like a person walking or kicking.

The clips drive the pybullet humanoid (y up, x forward, z right; joints at zero = standing, arms down). A joint's
world rotation relative to that zero pose maps onto the matching body-model group by a change of axes, with a
fixed offset for the limbs (anny's reference pose holds the arms and legs slightly out from the body).
Groups without a counterpart (clavicles, head) follow their parent; the chest rotation is split over two
spine groups. Output rotations use the body_model.py convention (world-axis rotation relative to the reference pose).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from pose_perception.human.body_model import GROUP_NAMES, GROUP_PARENTS, MODEL_KEYPOINT_NAMES

# DeepMimic humanoid axes -> anny model axes (anny: x left, y back, z up; the person faces -y).
C_MODEL_FROM_MOCAP = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])

DEFAULT_CLIPS = ("walk", "run", "jump", "dance_a", "kick", "punch")


class MocapError(ValueError):
    """A clip that is missing or not in the DeepMimic humanoid3d format."""


@dataclass(frozen=True)
class MocapClip:
    """name; frame_dt_s; root_position_m (T, 3) and joint rotations as scipy Rotations, mocap axes."""

    name: str
    frame_dt_s: float
    root_position_m: np.ndarray
    rotations: dict  # joint name -> Rotation of length T (local, relative to the parent, zero pose = identity)

    @property
    def num_frames(self) -> int:
        return len(self.root_position_m)


def motions_dir() -> Path:
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "data" / "motions"


def available_clips() -> list[str]:
    return sorted(p.stem.removeprefix("humanoid3d_") for p in motions_dir().glob("humanoid3d_*.txt"))


def load_clip(name: str) -> MocapClip:
    """Read pybullet_data/data/motions/humanoid3d_<name>.txt (44 numbers a frame, quaternions w x y z)."""
    path = motions_dir() / f"humanoid3d_{name}.txt"
    if not path.exists():
        raise MocapError(f"no mocap clip '{name}' in {motions_dir()}; available: {available_clips()}")
    frames = np.asarray(json.loads(path.read_text())["Frames"], dtype=np.float64)
    if frames.ndim != 2 or frames.shape[1] != 44:
        raise MocapError(f"{path} is not a humanoid3d clip: frames have shape {frames.shape}, expected (T, 44)")

    def quat(i: int) -> Rotation:
        wxyz = frames[:, i:i + 4]
        return Rotation.from_quat(wxyz[:, [1, 2, 3, 0]])

    def hinge(i: int) -> Rotation:
        return Rotation.from_rotvec(np.outer(frames[:, i], [0.0, 0.0, 1.0]))

    rotations = {
        "root": quat(4), "chest": quat(8), "neck": quat(12),
        "right_hip": quat(16), "right_knee": hinge(20), "right_ankle": quat(21),
        "right_shoulder": quat(25), "right_elbow": hinge(29),
        "left_hip": quat(30), "left_knee": hinge(34), "left_ankle": quat(35),
        "left_shoulder": quat(39), "left_elbow": hinge(43),
    }
    return MocapClip(name, float(frames[0, 0]), frames[:, 1:4].copy(), rotations)


def _limb_offsets(reference_keypoints: np.ndarray) -> dict[str, np.ndarray]:
    """Rotations (3, 3) taking each reference-pose limb of the model to hanging straight down (the mocap zero pose)."""
    from pose_perception.human.body_mesh import _min_rotation

    kp = {n: reference_keypoints[i] for i, n in enumerate(MODEL_KEYPOINT_NAMES)}
    down = np.array([0.0, 0.0, -1.0])
    return {
        "leg_l": _min_rotation(kp["left_ankle"] - kp["left_hip"], down),
        "leg_r": _min_rotation(kp["right_ankle"] - kp["right_hip"], down),
        "arm_l": _min_rotation(kp["left_wrist"] - kp["left_shoulder"], down),
        "arm_r": _min_rotation(kp["right_wrist"] - kp["right_shoulder"], down),
    }


def retarget(clip: MocapClip, frame: int, reference_keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group rotations (J, 3) rotvec and root translation (3,) metres (model axes) for one clip frame.

    reference_keypoints: (23, 3) model keypoints in the reference pose (rotations zero, root at the origin).
    """
    r = {k: v[frame].as_matrix() for k, v in clip.rotations.items()}
    C = C_MODEL_FROM_MOCAP
    world = {"root": r["root"]}
    world["chest"] = world["root"] @ r["chest"]
    world["neck"] = world["chest"] @ r["neck"]
    for side in ("left", "right"):
        world[f"{side}_hip"] = world["root"] @ r[f"{side}_hip"]
        world[f"{side}_knee"] = world[f"{side}_hip"] @ r[f"{side}_knee"]
        world[f"{side}_ankle"] = world[f"{side}_knee"] @ r[f"{side}_ankle"]
        world[f"{side}_shoulder"] = world["chest"] @ r[f"{side}_shoulder"]
        world[f"{side}_elbow"] = world[f"{side}_shoulder"] @ r[f"{side}_elbow"]
    half_chest = Rotation.from_matrix(r["chest"]).as_rotvec() * 0.5
    off = _limb_offsets(reference_keypoints)

    def to_model(R: np.ndarray) -> np.ndarray:
        return C @ R @ C.T

    H = {
        "pelvis": to_model(world["root"]),
        "spine_low": to_model(world["root"] @ Rotation.from_rotvec(half_chest).as_matrix()),
        "spine_high": to_model(world["chest"]),
        "neck": to_model(world["neck"]),
    }
    H["head"] = H["neck"]
    H["clavicle_l"] = H["clavicle_r"] = H["spine_high"]
    for side, s in (("left", "l"), ("right", "r")):
        H[f"thigh_{s}"] = to_model(world[f"{side}_hip"]) @ off[f"leg_{s}"]
        H[f"shin_{s}"] = to_model(world[f"{side}_knee"]) @ off[f"leg_{s}"]
        H[f"foot_{s}"] = to_model(world[f"{side}_ankle"]) @ off[f"leg_{s}"]
        H[f"upperarm_{s}"] = to_model(world[f"{side}_shoulder"]) @ off[f"arm_{s}"]
        H[f"forearm_{s}"] = to_model(world[f"{side}_elbow"]) @ off[f"arm_{s}"]
    rotvecs = np.zeros((len(GROUP_NAMES), 3))
    for j, name in enumerate(GROUP_NAMES):
        p = GROUP_PARENTS[j]
        D = H[name] if p < 0 else H[GROUP_NAMES[p]].T @ H[name]
        rotvecs[j] = Rotation.from_matrix(D).as_rotvec()
    return rotvecs, C @ clip.root_position_m[frame]


def resample(clip: MocapClip, rate_hz: float) -> MocapClip:
    """The clip at another frame rate (slerp for rotations, linear for the root)."""
    t = np.arange(clip.num_frames) * clip.frame_dt_s
    t_new = np.arange(0.0, t[-1] + 1e-9, 1.0 / rate_hz)
    root = np.stack([np.interp(t_new, t, clip.root_position_m[:, i]) for i in range(3)], axis=1)
    rotations = {k: Slerp(t, v)(t_new) for k, v in clip.rotations.items()}
    return MocapClip(clip.name, 1.0 / rate_hz, root, rotations)



def anny_pose_deg(rotvecs: np.ndarray) -> dict[str, dict[str, float]]:
    """Group rotations (J, 3) -> the per-bone degrees (world axes, x y z order) that synthetic.AnnyPoser.pose takes.

    The body-model groups are anny bones (body_model.ANNY_GROUP_BONES), so this is exact, root orientation included.
    """
    from pose_perception.human.body_model import ANNY_GROUP_BONES

    euler = Rotation.from_rotvec(np.asarray(rotvecs, dtype=np.float64)).as_euler("xyz", degrees=True)
    return {ANNY_GROUP_BONES[g]: dict(zip("xyz", map(float, e))) for g, e in zip(GROUP_NAMES, euler)}


def clip_bodies(poser, clip: MocapClip, frames: range, phenotype: dict[str, float]):
    """SYNTHETIC posed bodies along a clip: [(vertices (V, 3), keypoints (23, 3) MODEL_KEYPOINT_NAMES), ...] in
    anny's world frame (z up, feet on z = 0), the clip's horizontal path centred on the origin.

    poser: a human/synthetic.py AnnyPoser (anny's own full forward pass: the ground truth).
    """
    reference = poser.pose({}, {}).keypoints_133[: len(MODEL_KEYPOINT_NAMES)]
    poses = [retarget(clip, i, reference) for i in frames]
    centre = np.mean([t for _, t in poses], axis=0)
    out = []
    for rotvecs, translation in poses:
        body = poser.pose(anny_pose_deg(rotvecs), phenotype)
        shift = np.array([translation[0] - centre[0], translation[1] - centre[1], 0.0])  # the poser puts feet on z = 0
        out.append((body.vertices + shift, body.keypoints_133[: len(MODEL_KEYPOINT_NAMES)] + shift))
    return out
