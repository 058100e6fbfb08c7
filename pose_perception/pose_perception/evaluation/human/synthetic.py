"""SYNTHETIC RGB-D of a posed human body mesh with known joints, for accuracy evaluation and tests.

The body is the `anny` parametric model (Apache-2.0 code, CC0 MakeHuman assets) posed from real motion capture
(the DeepMimic humanoid3d clips in pybullet_data, retargeted by segment directions) or random pose parameters;
depth and masks are ray-cast exactly (objects.render, open3d RaycastingScene, headless CPU) and degraded with a
depth-sensor noise model. Every output of this module is synthetic and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from pose_perception.core.asset_packages import AssetPackageMissing, pybullet_data_dir
from pose_perception.core import keypoints as kp
from pose_perception.core.camera import CameraIntrinsics, project
from pose_perception.core.frames import invert_T, make_T, rotation_between, transform_points
from pose_perception.evaluation.deepmimic import MOTION_JOINTS, MocapClipError, read_clip


class SyntheticDataError(RuntimeError):
    """The synthetic human cannot be produced (body model missing, bad arguments)."""


# anny world frame: z up, the body faces -y, +x is the body's left. Bones posed by the random pose sampler,
# with per-axis angle ranges in degrees about the world axes at the bone (anny's "local-ref" parameters).
# Ranges are a plain-anatomy envelope (flexion forward is negative about x for arms and hips).
_POSE_RANGES_DEG: dict[str, dict[str, tuple[float, float]]] = {
    "upperarm01.L": {"x": (-80.0, 40.0), "y": (-50.0, 45.0)},
    "upperarm01.R": {"x": (-80.0, 40.0), "y": (-45.0, 50.0)},
    "lowerarm01.L": {"x": (-110.0, 0.0)},
    "lowerarm01.R": {"x": (-110.0, 0.0)},
    "upperleg01.L": {"x": (-60.0, 20.0), "y": (-20.0, 8.0)},
    "upperleg01.R": {"x": (-60.0, 20.0), "y": (-8.0, 20.0)},
    "lowerleg01.L": {"x": (0.0, 90.0)},
    "lowerleg01.R": {"x": (0.0, 90.0)},
    "spine03": {"x": (-25.0, 8.0), "z": (-25.0, 25.0)},
    "neck01": {"x": (-15.0, 15.0), "z": (-30.0, 30.0)},
}

# Camera frame (x right, y down, z forward) expressed in anny world when the camera looks along +y.
_R_WORLD_CAM_LOOKING_Y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


@dataclass(frozen=True)
class PosedBody:
    """A posed body in anny's world frame (metres, z up): vertices (V, 3) float64, faces (F, 3) int32,
    keypoints_133 (133, 3) float64 with the COCO body 17 and feet 6 filled (NaN elsewhere)."""

    vertices: np.ndarray
    faces: np.ndarray
    keypoints_133: np.ndarray


@dataclass(frozen=True)
class SyntheticFrame:
    """One SYNTHETIC RGB-D frame. rgb (H, W, 3) uint8 Lambert-shaded render; depth_m (H, W) float32 with
    sensor noise, NaN invalid; depth_clean_m exact depth; person_mask (H, W) bool; keypoints_3d (133, 3)
    float32 camera frame metres (NaN where the model has none); keypoints_uv (133, 2) float32 true
    projections; unoccluded (133,) bool (the first surface on the keypoint's ray belongs to its own limb);
    T_cam_world (4, 4) anny world -> camera; vertices_cam (V, 3) float32, faces (F, 3) int32."""

    rgb: np.ndarray
    depth_m: np.ndarray
    depth_clean_m: np.ndarray
    person_mask: np.ndarray
    intrinsics: CameraIntrinsics
    keypoints_3d: np.ndarray
    keypoints_uv: np.ndarray
    unoccluded: np.ndarray
    T_cam_world: np.ndarray
    vertices_cam: np.ndarray
    faces: np.ndarray
    synthetic: bool = True


def default_intrinsics(width: int = 640, height: int = 480) -> CameraIntrinsics:
    """A 640x480 RGB-D camera like a RealSense D435 / Kinect (fx = fy = 0.82 * width, centred)."""
    f = 0.82 * width
    K = np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])
    return CameraIntrinsics(K=K, width=width, height=height)


class AnnyPoser:
    """Loads the anny body model once and produces posed bodies with known COCO body 17 + feet 6 joints.

    The first construction on a machine builds anny's kernel cache (tens of seconds); later ones take ~2 s.
    """

    def __init__(self, num_threads: int = 1) -> None:
        try:
            import anny
            import torch
        except ImportError as exc:
            raise SyntheticDataError(
                f"the synthetic human needs the `anny` body model and torch ({exc}); pip install anny==0.6.2"
            ) from exc
        torch.set_num_threads(max(1, int(num_threads)))
        self._torch = torch
        self.model = anny.Anny()
        self.regressor = anny.KeypointsRegressor.coco(self.model)
        self.faces = np.asarray(self.model.get_triangular_faces().cpu().numpy(), dtype=np.int32)
        names_133 = kp.COCO_WHOLEBODY_133.keypoint_names
        self._to_133 = np.array([names_133.index(label) for label in self.regressor.labels])
        self.bone_labels = list(self.model.bone_labels)

    def sample_mocap_pose(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A random frame of a random upright DeepMimic clip (MOCAP_CLIPS), retargeted onto anny."""
        if not hasattr(self, "_clips"):
            self._clips = {name: load_mocap_clip(name) for name in MOCAP_CLIPS}
            self._rest = self.pose().keypoints_133
        clip = self._clips[MOCAP_CLIPS[int(rng.integers(len(MOCAP_CLIPS)))]]
        return mocap_pose(clip[int(rng.integers(len(clip)))], self._rest)

    def sample_pose_deg(self, rng: np.random.Generator) -> dict[str, dict[str, float]]:
        """Random per-bone rotations (degrees about world axes) inside the anatomical envelope."""
        return {
            bone: {axis: float(rng.uniform(lo, hi)) for axis, (lo, hi) in axes.items()}
            for bone, axes in _POSE_RANGES_DEG.items()
        }

    def pose(
        self,
        pose_deg: Optional[dict[str, dict[str, float] | np.ndarray]] = None,
        phenotype: Optional[dict[str, float]] = None,
    ) -> PosedBody:
        """pose_deg: {bone label: {"x"|"y"|"z": degrees} (applied in that order) or a (3, 3) rotation}, anny
        "local-ref" rotations; phenotype: anny phenotype values in [0, 1] (gender, age, muscle, weight, height,
        proportions). Feet on z = 0."""
        from scipy.spatial.transform import Rotation

        torch = self._torch
        P = torch.eye(4, dtype=self.model.dtype)[None, None].repeat(1, self.model.bone_count, 1, 1)
        for bone, axes in (pose_deg or {}).items():
            if bone not in self.bone_labels:
                raise SyntheticDataError(f"unknown anny bone '{bone}'; known: {self.bone_labels}")
            if isinstance(axes, dict):
                order = "".join(axes)
                R = Rotation.from_euler(order, [axes[a] for a in order], degrees=True).as_matrix()
            else:
                R = np.asarray(axes, dtype=np.float64).reshape(3, 3)
            P[0, self.bone_labels.index(bone), :3, :3] = torch.as_tensor(R, dtype=self.model.dtype)
        with torch.no_grad():
            out = self.model(pose_parameters=P, phenotype_kwargs=phenotype)
            joints = self.regressor(out)[0].cpu().numpy().astype(np.float64)
        vertices = out["vertices"][0].cpu().numpy().astype(np.float64)
        floor = vertices[:, 2].min()
        vertices[:, 2] -= floor
        joints[:, 2] -= floor
        keypoints = np.full((kp.COCO_WHOLEBODY_133.num_keypoints, 3), np.nan)
        keypoints[self._to_133] = joints
        return PosedBody(vertices=vertices, faces=self.faces, keypoints_133=keypoints)


# DeepMimic humanoid3d clips in pybullet_data (mocap retargeted to the DeepMimic humanoid): upright motions.
MOCAP_CLIPS = ("walk", "run", "jump", "kick", "punch", "dance_a", "dance_b", "spin", "spinkick")
# Humanoid frame (x forward, y up, z right) -> anny world (x left, y backward, z up).
_M_ANNY_FROM_HUMANOID = np.array([[0.0, 0.0, -1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
# The root orientation comes first in a frame (after duration and position), then the driven joints.
_MOCAP_JOINTS = (("root", 4),) + MOTION_JOINTS


def load_mocap_clip(name: str) -> np.ndarray:
    """(T, 44) frames of pybullet_data/data/motions/humanoid3d_<name>.txt (DeepMimic format)."""
    try:
        frames, _ = read_clip(pybullet_data_dir() / "data" / "motions" / f"humanoid3d_{name}.txt")
    except (AssetPackageMissing, MocapClipError) as exc:
        raise SyntheticDataError(f"mocap poses: {exc}") from exc
    return frames


def mocap_pose(frame: np.ndarray, rest_keypoints: np.ndarray, face_forward: bool = True) -> dict[str, np.ndarray]:
    """anny "local-ref" bone rotations reproducing one DeepMimic humanoid frame (44,): root, chest and neck
    orientations are copied; each limb segment is swung from anny's rest direction (rest_keypoints (133, 3),
    the unposed body's COCO joints) onto the humanoid's segment direction. Twist of the limbs is not kept.
    face_forward: remove the clip's heading (the body faces -y)."""
    from scipy.spatial.transform import Rotation

    q: dict[str, np.ndarray] = {}
    i = 4
    for name, n in _MOCAP_JOINTS:
        if n == 4:
            w, x, y, z = frame[i : i + 4]
            q[name] = Rotation.from_quat([x, y, z, w]).as_matrix()
        else:
            q[name] = Rotation.from_rotvec([0.0, 0.0, frame[i]]).as_matrix()  # revolute about the joint's z
        i += n
    M = _M_ANNY_FROM_HUMANOID
    G_h = {"root": q["root"]}
    G_h["chest"] = G_h["root"] @ q["chest"]
    G_h["neck"] = G_h["chest"] @ q["neck"]
    for side in ("left", "right"):
        G_h[f"{side}_hip"] = G_h["root"] @ q[f"{side}_hip"]
        G_h[f"{side}_knee"] = G_h[f"{side}_hip"] @ q[f"{side}_knee"]
        G_h[f"{side}_shoulder"] = G_h["chest"] @ q[f"{side}_shoulder"]
        G_h[f"{side}_elbow"] = G_h[f"{side}_shoulder"] @ q[f"{side}_elbow"]
    # Global rotations in anny's world; the humanoid's rest pose and anny's share directions through M.
    G = {name: M @ R @ M.T for name, R in G_h.items()}
    down = M @ np.array([0.0, -1.0, 0.0])  # humanoid limbs hang along -y at rest

    if face_forward:
        # Remove the clip's heading so the body faces -y (the camera helpers then choose the yaw).
        f = G["root"] @ np.array([0.0, -1.0, 0.0])
        heading = np.arctan2(f[0], -f[1])
        R_unyaw = Rotation.from_rotvec([0.0, 0.0, -heading]).as_matrix()
        G = {name: R_unyaw @ R for name, R in G.items()}
    pose = {"root": G["root"], "spine03": G["root"].T @ G["chest"], "neck01": G["chest"].T @ G["neck"]}
    k = rest_keypoints
    for side, s in (("left", "L"), ("right", "R")):
        li = 0 if side == "left" else 1
        sh, el, wr, hp, kn, an = (5 + li, 7 + li, 9 + li, 11 + li, 13 + li, 15 + li)
        for parent, upper_bone, lower_bone, h_upper, h_lower, a, b, c in (
            (G["chest"], f"upperarm01.{s}", f"lowerarm01.{s}", f"{side}_shoulder", f"{side}_elbow", sh, el, wr),
            (G["root"], f"upperleg01.{s}", f"lowerleg01.{s}", f"{side}_hip", f"{side}_knee", hp, kn, an),
        ):
            G_upper = rotation_between(parent @ (k[b] - k[a]), G[h_upper] @ down) @ parent
            G_lower = rotation_between(G_upper @ (k[c] - k[b]), G[h_lower] @ down) @ G_upper
            pose[upper_bone] = parent.T @ G_upper
            pose[lower_bone] = G_upper.T @ G_lower
    return pose


def camera_facing_body(
    distance_m: float, yaw_deg: float, height_m: float = 1.2, pitch_deg: float = 0.0, lateral_m: float = 0.0
) -> np.ndarray:
    """T_cam_world for a camera at height_m, distance_m in front of the body (which stands at the world origin
    facing -y), looking at it; yaw_deg turns the body about its vertical axis (0 = facing the camera)."""
    from scipy.spatial.transform import Rotation

    R_world_cam = _R_WORLD_CAM_LOOKING_Y @ Rotation.from_euler("x", pitch_deg, degrees=True).as_matrix()
    c = np.array([lateral_m, -distance_m, height_m])
    T_world_cam = make_T(R_world_cam, c)
    # Yawing the body by +a equals yawing the camera by -a about the body's vertical axis.
    T_yaw = make_T(Rotation.from_euler("z", -yaw_deg, degrees=True).as_matrix(), np.zeros(3))
    return invert_T(T_yaw @ T_world_cam)


def render_frame(
    body: PosedBody,
    T_cam_world: np.ndarray,
    intrinsics: Optional[CameraIntrinsics] = None,
    rng: Optional[np.random.Generator] = None,
    noise: bool = True,
    background: bool = True,
) -> SyntheticFrame:
    """Ray-casts the body (plus a floor at z = 0 and a wall 2.5 m behind it when background) through pixel
    centres with objects.render.render_depth. Depth noise: per-pixel Gaussian with the axial sigma of
    evaluation.objects.synthetic.DepthNoiseConfig (Kinect-class, Nguyen et al. 2012), 1 mm
    quantisation, invalid pixels at depth discontinuities (> 5 cm jump to a 4-neighbour, like a sensor's edge
    filter) and 0.5 % random dropout.
    """
    from pose_perception.evaluation.objects.synthetic import DepthNoiseConfig
    from pose_perception.objects.render import render_depth

    intrinsics = intrinsics or default_intrinsics()
    rng = rng if rng is not None else np.random.default_rng(0)
    W, H, K = intrinsics.width, intrinsics.height, intrinsics.K

    scene = [((body.vertices, body.faces), T_cam_world)]
    if background:
        floor = np.array([[-30, -30, 0], [30, -30, 0], [30, 30, 0], [-30, 30, 0]], dtype=np.float64)
        wall = np.array([[-30, 2.5, -1], [30, 2.5, -1], [30, 2.5, 8], [-30, 2.5, 8]], dtype=np.float64)
        quad = np.array([[0, 1, 2], [0, 2, 3]], dtype=np.int32)
        scene += [((floor, quad), T_cam_world), ((wall, quad), T_cam_world)]
    # Exact depth through pixel centres and which mesh each pixel sees (0 = the body).
    depth_clean, instance_ids = render_depth(scene, intrinsics)
    person = instance_ids == 0

    # Lambert shading with a light at the camera, normals from the depth image: skin-coloured body, grey
    # background.
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    z = depth_clean.astype(np.float64)
    points = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    normals = np.cross(np.gradient(points, axis=1), np.gradient(points, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
        view = points / np.linalg.norm(points, axis=-1, keepdims=True)
    lambert = np.nan_to_num(np.abs(np.sum(normals * view, axis=-1)), nan=0.6)
    albedo = np.where(person[..., None], np.array([0.85, 0.62, 0.50]), np.array([0.55, 0.57, 0.60]))
    rgb = np.clip(albedo * (0.25 + 0.75 * lambert[..., None]) * 255.0, 0, 255)
    rgb[~np.isfinite(depth_clean)] = 0
    rgb = rgb.astype(np.uint8)

    depth = depth_clean.astype(np.float64)
    if noise:
        depth = depth + rng.normal(size=depth.shape) * DepthNoiseConfig().axial_sigma_m(np.nan_to_num(depth, nan=0.0))
        depth = np.round(depth * 1000.0) / 1000.0
        padded = np.pad(np.nan_to_num(depth_clean, nan=1e3), 1, mode="edge")
        centre = padded[1:-1, 1:-1]
        jump = np.zeros((H, W), dtype=bool)
        for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):
            jump |= np.abs(padded[dy : dy + H, dx : dx + W] - centre) > 0.05
        depth[jump] = np.nan
        depth[rng.random(depth.shape) < 0.005] = np.nan

    kp_cam = transform_points(T_cam_world, body.keypoints_133)
    kp_uv = project(kp_cam, K)
    unoccluded = _unoccluded(kp_cam, kp_uv, depth_clean, person, W, H)
    return SyntheticFrame(
        rgb=rgb,
        depth_m=depth.astype(np.float32),
        depth_clean_m=depth_clean,
        person_mask=person,
        intrinsics=intrinsics,
        keypoints_3d=kp_cam.astype(np.float32),
        keypoints_uv=kp_uv.astype(np.float32),
        unoccluded=unoccluded,
        T_cam_world=np.asarray(T_cam_world, dtype=np.float64),
        vertices_cam=transform_points(T_cam_world, body.vertices).astype(np.float32),
        faces=body.faces,
    )


def _unoccluded(
    kp_cam: np.ndarray,
    kp_uv: np.ndarray,
    depth: np.ndarray,
    person: np.ndarray,
    W: int,
    H: int,
    limb_depth_m: float = 0.15,
) -> np.ndarray:
    """A keypoint is unoccluded when the body surface at its pixel is less than limb_depth_m in front of it."""
    ok = np.all(np.isfinite(kp_uv), axis=1)
    u = np.round(np.nan_to_num(kp_uv[:, 0], nan=-1)).astype(int)
    v = np.round(np.nan_to_num(kp_uv[:, 1], nan=-1)).astype(int)
    ok &= (u >= 0) & (u < W) & (v >= 0) & (v < H)
    out = np.zeros(len(kp_cam), dtype=bool)
    idx = np.flatnonzero(ok)
    surface = depth[v[idx], u[idx]]
    out[idx] = person[v[idx], u[idx]] & (kp_cam[idx, 2] - surface < limb_depth_m)
    return out


def random_frame(
    poser: AnnyPoser,
    rng: np.random.Generator,
    intrinsics: Optional[CameraIntrinsics] = None,
    noise: bool = True,
    poses: str = "mocap",
) -> SyntheticFrame:
    """A random SYNTHETIC frame: random adult phenotype, pose from a random mocap frame (poses="mocap") or
    random anny pose parameters (poses="random"), body 2.2-3.8 m away, yaw within +-70 degrees."""
    if poses not in ("mocap", "random"):
        raise SyntheticDataError(f"poses must be 'mocap' or 'random', got '{poses}'")
    phenotype = {name: float(rng.uniform(0.2, 0.8)) for name in ("gender", "age", "muscle", "weight", "height")}
    phenotype["age"] = float(rng.uniform(0.5, 0.9))  # adults
    pose = poser.sample_mocap_pose(rng) if poses == "mocap" else poser.sample_pose_deg(rng)
    body = poser.pose(pose, phenotype)
    T = camera_facing_body(
        distance_m=float(rng.uniform(2.2, 3.8)),
        yaw_deg=float(rng.uniform(-70, 70)),
        height_m=float(rng.uniform(0.9, 1.3)),
        pitch_deg=float(rng.uniform(-8, 8)),
        lateral_m=float(rng.uniform(-0.3, 0.3)),
    )
    return render_frame(body, T, intrinsics, rng=rng, noise=noise)
