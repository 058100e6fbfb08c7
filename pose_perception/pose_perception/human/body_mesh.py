"""Per-person body meshes: fit a parametric body (anny by default, SMPL-X optionally) to 3D keypoints of a track.

Analytic initialisation, then a few L-BFGS steps of pose (and slowly shape) warm-started from the track's last fit.

Method (details in docs/mesh.md): the body model is reduced to 17 rotation groups (body_model.py). A cold fit
picks the shape whose limb lengths match the keypoints, aligns the pelvis frame to the hips and shoulders and
each limb group to its bone direction, then minimises confidence-weighted keypoint error + a pose prior +
hinge/joint-limit terms for knees and elbows. A warm fit starts from the previous frame of the same track and
adds a temporal term; shape drifts slowly towards what the keypoints support. Works in any sensor frame (no
gravity assumed). Bad input never raises: the fitter keeps the last good mesh for a while or returns None.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from pose_perception.core.device import DeviceError, resolve_device
from pose_perception.core.frames import rotation_between
from pose_perception.core.keypoints import COCO_WHOLEBODY_133
from pose_perception.core.types import BodyMesh
from pose_perception.human.body_model import (
    GROUP_NAMES,
    GROUP_PARENTS,
    MODEL_KEYPOINT_NAMES,
    BodyModelData,
    BodyModelError,
    BodyModelUnavailableError,
    load_anny_model_data,
    load_smplx_model_data,
)

logger = logging.getLogger(__name__)

__all__ = [
    "BodyMeshFitter",
    "fit_meshes_image",
    "FitterConfig",
    "FitResult",
    "BodyMeshError",
    "BodyModelError",
    "BodyModelUnavailableError",
    "model_keypoint_index",
]


class BodyMeshError(ValueError):
    """Bad fitter configuration (unknown model, impossible option values)."""


def _kp(name: str) -> int:
    return MODEL_KEYPOINT_NAMES.index(name)


def _grp(name: str) -> int:
    return GROUP_NAMES.index(name)


def model_keypoint_index(num_input_keypoints: int) -> tuple[np.ndarray, np.ndarray]:
    """Which input keypoints (COCO body 17 or COCO-WholeBody 133 order) feed which model keypoints.

    Returns (input_index (M,), model_index (M,)) int arrays; feet are used only when the input has them (K >= 23).
    """
    names = COCO_WHOLEBODY_133.keypoint_names[: min(num_input_keypoints, 23)]
    inp = [i for i, n in enumerate(names) if n in MODEL_KEYPOINT_NAMES]
    return np.array(inp, dtype=np.int64), np.array([MODEL_KEYPOINT_NAMES.index(names[i]) for i in inp], dtype=np.int64)


# Limb segments (parent keypoint, child keypoint) used for the shape choice and the plausibility checks, with the
# range of lengths a person can have in metres (generous: children to tall adults, noisy depth).
_SEGMENTS = (
    ("left_shoulder", "left_elbow", 0.12, 0.55),
    ("right_shoulder", "right_elbow", 0.12, 0.55),
    ("left_elbow", "left_wrist", 0.10, 0.50),
    ("right_elbow", "right_wrist", 0.10, 0.50),
    ("left_hip", "left_knee", 0.18, 0.75),
    ("right_hip", "right_knee", 0.18, 0.75),
    ("left_knee", "left_ankle", 0.18, 0.75),
    ("right_knee", "right_ankle", 0.18, 0.75),
    ("left_shoulder", "right_shoulder", 0.15, 0.65),
    ("left_hip", "right_hip", 0.08, 0.50),
    ("left_shoulder", "left_hip", 0.20, 0.90),
    ("right_shoulder", "right_hip", 0.20, 0.90),
)
_TORSO = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")

# Groups aligned to a bone direction during the analytic initialisation: (group, from keypoint, to keypoints).
_ALIGN = (
    ("thigh_l", "left_hip", ("left_knee",)),
    ("thigh_r", "right_hip", ("right_knee",)),
    ("shin_l", "left_knee", ("left_ankle",)),
    ("shin_r", "right_knee", ("right_ankle",)),
    ("foot_l", "left_ankle", ("left_big_toe", "left_small_toe")),
    ("foot_r", "right_ankle", ("right_big_toe", "right_small_toe")),
    ("upperarm_l", "left_shoulder", ("left_elbow",)),
    ("upperarm_r", "right_shoulder", ("right_elbow",)),
    ("forearm_l", "left_elbow", ("left_wrist",)),
    ("forearm_r", "right_elbow", ("right_wrist",)),
    ("neck", "left_shoulder", ("nose",)),  # from the shoulder midpoint, see _initialise
    ("head", "nose", ("left_ear", "right_ear")),  # face frame: ears and nose, see _initialise
)


def _depth(group: int) -> int:
    return 0 if GROUP_PARENTS[group] < 0 else 1 + _depth(GROUP_PARENTS[group])


_ALIGN_LEVELS = tuple(
    tuple(a for a in _ALIGN if _depth(_grp(a[0])) == d) for d in sorted({_depth(_grp(a[0])) for a in _ALIGN})
)

# Upper limb groups whose twist the end of the limb (wrist, ankle) can fix when the middle joint is bent.
_LIMB_END = {"thigh_l": "left_ankle", "thigh_r": "right_ankle", "upperarm_l": "left_wrist", "upperarm_r": "right_wrist"}
# Hinge joints: (group, parent-end keypoint, joint keypoint, child-end keypoint, which way flexion moves the child).
_HINGES = (
    ("shin_l", "left_knee", "left_ankle", "back"),
    ("shin_r", "right_knee", "right_ankle", "back"),
    ("forearm_l", "left_elbow", "left_wrist", "front"),
    ("forearm_r", "right_elbow", "right_wrist", "front"),
)
# Per-group weight of the pose prior (larger = stiffer). Groups observed well by keypoints get a light prior.
_PRIOR = {
    "pelvis": 0.0,
    "thigh_l": 0.2,
    "thigh_r": 0.2,
    "spine_low": 2.0,
    "shin_l": 0.2,
    "shin_r": 0.2,
    "spine_high": 2.0,
    "foot_l": 1.0,
    "foot_r": 1.0,
    "neck": 2.0,
    "clavicle_l": 8.0,
    "clavicle_r": 8.0,
    "head": 2.0,
    "upperarm_l": 0.1,
    "upperarm_r": 0.1,
    "forearm_l": 0.2,
    "forearm_r": 0.2,
}


@dataclass(frozen=True)
class FitterConfig:
    """Tuning of the fit. Distances in metres, times in seconds."""

    min_confidence: float = 0.3  # keypoints below this do not pull
    cold_iterations: int = 40  # L-BFGS iterations of a cold (first / re-initialised) fit
    warm_iterations: int = 6  # ... of a warm-started fit
    prior_weight: float = 2e-4  # pose prior (per rad^2, times the per-group _PRIOR)
    hinge_weight: float = 5e-2  # off-axis bending and hyper-extension of knees and elbows
    temporal_weight: float = 5e-4  # pull towards the previous frame's pose (warm fits)
    shape_temporal_weight: float = 1.0  # pull of the shape towards the track's shape (warm fits; slow drift)
    shape_prior_weight: float = 1e-3  # pull of the shape towards the model's mean
    robust_scale_m: float = 0.10  # Geman-McClure scale of the keypoint residuals
    max_residual_m: float = 0.12  # a fit with a larger mean keypoint error is rejected
    max_speed_m_s: float = 4.0  # pelvis speed above which a track is treated as jumped (re-initialised)
    keep_last_s: float = 1.0  # how long the last good mesh is returned for frames that cannot be fitted
    shape_update_every: int = 5  # warm fits between two shape refinements (shape changes slowly)
    cpu_threads: int = 1  # torch.set_num_threads on CPU (process-wide; 0 leaves torch's default)
    # Reprojection fit (fit_image): 2D keypoints through the camera, SMPLify-style.
    image_iterations: int = 60  # L-BFGS iterations of the whole-pose stage of a cold image fit
    image_warm_iterations: int = 15  # ... of a warm-started one (same track, recent)
    image_root_iterations: int = 15  # L-BFGS iterations of the first stage (root rotation + translation only)
    image_robust_scale: float = 0.04  # Geman-McClure scale of 2D residuals, as a fraction of the person's size
    image_prior_scale: float = 0.3  # the 3D fit's pose prior and hinge weights, scaled for the 2D data term
    image_init_weight: float = 2e-3  # pull of the limbs towards their initial pose (the lifter's 3D guess)
    image_depth_weight: float = 1.0  # weight of the depth-measured 3D keypoints next to the 2D term
    max_image_residual: float = 0.08  # fits whose median 2D error is above this fraction of the person are rejected
    image_good_enough: float = 0.03  # a start whose median 2D error is under this fraction skips the others
    min_image_keypoints: int = 4  # confident 2D body points needed (both shoulders among them)


@dataclass(frozen=True)
class FitResult:
    """One fit. keypoints_3d: (23, 3) float32 the model's keypoints (MODEL_KEYPOINT_NAMES) in the sensor frame;
    residual_m: confidence-weighted mean distance to the used input keypoints; shape: (S,) model shape values;
    group_rotvecs: (17, 3) world-axis rotations of GROUP_NAMES relative to the reference pose; translation (3,)."""

    mesh: BodyMesh
    keypoints_3d: np.ndarray
    residual_m: float
    iterations: int
    cold: bool
    shape: np.ndarray
    group_rotvecs: np.ndarray
    translation: np.ndarray
    fit_time_s: float
    residual_px: float = float("nan")  # image fits: mean 2D error in pixels of the confident keypoints


@dataclass
class _Track:
    rotvecs: torch.Tensor  # (J, 3)
    translation: torch.Tensor  # (3,)
    shape: torch.Tensor  # (S,)
    stamp_s: float
    last_good: Optional[FitResult] = None
    fits_since_shape: int = 0
    num_fits: int = 0


def _rotvec_to_matrix(r: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle -> (..., 3, 3) with a Taylor expansion near zero so gradients stay finite."""
    theta2 = (r * r).sum(-1, keepdim=True)[..., None]
    theta = torch.sqrt(theta2.clamp_min(1e-12))
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12))
    x, y, z = r[..., 0], r[..., 1], r[..., 2]
    zero = torch.zeros_like(x)
    K = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(r.shape[:-1] + (3, 3))
    eye = torch.eye(3, dtype=r.dtype, device=r.device).expand_as(K)
    return eye + a * K + b * (K @ K)


def _matrix_to_rotvec(R: np.ndarray) -> np.ndarray:
    return Rotation.from_matrix(R).as_rotvec()


def _project_np(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N, 3) camera-frame metres -> (N, 2) pixels (plain pinhole; the points are in front of the camera)."""
    z = np.where(points[:, 2] > 1e-9, points[:, 2], np.nan)
    return points[:, :2] / z[:, None] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]


def _frame(left: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Orthonormal (3, 3) with columns (left, up, left x up) from two rough directions."""
    x = left / np.linalg.norm(left)
    y = up - np.dot(up, x) * x
    y /= np.linalg.norm(y)
    return np.stack([x, y, np.cross(x, y)], axis=1)


class _ReducedBody:
    """Differentiable forward model of BodyModelData: (rotvecs, translation, shape) -> keypoints / vertices.

    Kept to a few dozen small tensor ops per evaluation: the fit evaluates it ~10-60 times per frame.
    """

    def __init__(self, data: BodyModelData, device: torch.device):
        f64 = dict(dtype=torch.float64, device=device)
        self.num_groups = len(GROUP_NAMES)
        depth = [0] * self.num_groups
        for j, p in enumerate(GROUP_PARENTS):
            depth[j] = 0 if p < 0 else depth[p] + 1
        if depth != sorted(depth):
            raise BodyModelError("GROUP_NAMES must be sorted by depth in the group tree")
        # Level slices of the (depth-sorted) groups and the parent index of each group in a level.
        self.levels = []
        for d in range(1, max(depth) + 1):
            members = [j for j in range(self.num_groups) if depth[j] == d]
            self.levels.append(
                (members[0], members[-1] + 1, torch.tensor([GROUP_PARENTS[j] for j in members], device=device))
            )
        self.nodes = [torch.as_tensor(n, **f64) for n in data.shape_nodes]
        for n in data.shape_nodes:
            if len(n) < 2 or not np.allclose(np.diff(n), n[1] - n[0]):
                raise BodyModelError("shape grid nodes must be evenly spaced, at least two per axis")
        kw = data.keypoint_weights.astype(np.float64)
        skin = data.skin_weights.astype(np.float64)
        num_nodes, num_vertices, _ = data.node_vertices.shape
        K, J = kw.shape[0], skin.shape[1]
        # Keypoint moments per group: a_kj = sum_v W_kv S_vj, b_kj = sum_v W_kv S_vj vref_v (per shape node).
        ws = (kw[:, None, :] * skin.T[None, :, :]).reshape(K * J, num_vertices)
        vn = data.node_vertices.astype(np.float64).transpose(1, 0, 2).reshape(num_vertices, num_nodes * 3)
        self.kp_a = torch.as_tensor(kw @ skin, **f64)  # (K, J)
        self.kp_b = torch.as_tensor((ws @ vn).reshape(K, J, num_nodes, 3).transpose(2, 0, 1, 3), **f64)  # (N, K, J, 3)
        self.node_heads = torch.as_tensor(data.node_heads.astype(np.float64), **f64)  # (N, J, 3)
        self.node_vertices = torch.as_tensor(data.node_vertices, dtype=torch.float32, device=device)  # (N, V, 3)
        self.skin = torch.as_tensor(data.skin_weights, dtype=torch.float32, device=device)  # (V, J)

    def node_weights(self, shape: torch.Tensor) -> torch.Tensor:
        """Multilinear interpolation weights (N,) of the grid nodes for shape (S,), clamped to the grid."""
        w = None
        for i, nodes in enumerate(self.nodes):
            s = shape[i].clamp(nodes[0], nodes[-1])
            axis_w = torch.relu(1 - (s - nodes).abs() / (nodes[1] - nodes[0]))  # hat functions
            w = axis_w if w is None else (w[:, None] * axis_w[None, :]).reshape(-1)
        return w

    def shape_terms(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference heads (J, 3) and per-group keypoint offsets (K, J, 3) for shape (S,)."""
        w = self.node_weights(shape)
        heads_ref = torch.einsum("n,njc->jc", w, self.node_heads)
        b = torch.einsum("n,nkjc->kjc", w, self.kp_b)
        return heads_ref, b - self.kp_a[..., None] * heads_ref[None]

    def pose(self, rotvecs: torch.Tensor, translation: torch.Tensor, heads_ref: torch.Tensor):
        """World rotations H (J, 3, 3) and posed heads P (J, 3) by forward kinematics, one batch per tree level."""
        D = _rotvec_to_matrix(rotvecs)
        H, P = D[:1], translation[None]
        for start, stop, parents in self.levels:
            Hp = H[parents]
            offs = (heads_ref[start:stop] - heads_ref[parents])[..., None]
            P = torch.cat([P, P[parents] + (Hp @ offs)[..., 0]])
            H = torch.cat([H, Hp @ D[start:stop]])
        return H, P

    def keypoints_posed(self, rotvecs, translation, heads_ref, local) -> torch.Tensor:
        H, P = self.pose(rotvecs, translation, heads_ref)
        return torch.einsum("jab,kjb->ka", H, local) + self.kp_a @ P

    def keypoints(self, rotvecs, translation, shape) -> torch.Tensor:
        """(K, 3) model keypoints (MODEL_KEYPOINT_NAMES)."""
        heads_ref, local = self.shape_terms(shape)
        return self.keypoints_posed(rotvecs, translation, heads_ref, local)

    def vertices(self, rotvecs, translation, shape) -> torch.Tensor:
        """(V, 3) float32 posed vertices."""
        w = self.node_weights(shape)
        heads_ref = torch.einsum("n,njc->jc", w, self.node_heads)
        H, P = self.pose(rotvecs, translation, heads_ref)
        vref = torch.einsum("n,nvc->vc", w.float(), self.node_vertices)
        H, P, heads_ref = H.float(), P.float(), heads_ref.float()
        # Per-vertex blended affine map: A_v = sum_j S_vj H_j, t_v = sum_j S_vj (P_j - H_j Jref_j).
        A = (self.skin @ H.reshape(-1, 9)).reshape(-1, 3, 3)
        t = self.skin @ (P - torch.einsum("jab,jb->ja", H, heads_ref))
        return (A @ vref[..., None])[..., 0] + t


class BodyMeshFitter:
    """Fits a posed body mesh to each tracked person's 3D keypoints (camera or radar frame, metres).

    One-time model load at construction (cached on disk under cache_dir); `fit` is the per-frame call.
    device: "auto" (CUDA when present), "cpu" or "cuda". model: "anny" or "smplx" (needs smplx_model_path,
    the user's licensed SMPL-X files, and the `smplx` package). max_faces: publish a decimated mesh of at most
    this many faces (None = full mesh).
    """

    def __init__(
        self,
        device: str = "auto",
        model: str = "anny",
        smplx_model_path: Optional[str] = None,
        cache_dir: Optional[str] = None,
        max_faces: Optional[int] = None,
        config: FitterConfig = FitterConfig(),
        smplx_gender: str = "neutral",
    ):
        try:
            device = resolve_device(device)
        except DeviceError as exc:
            raise BodyMeshError(str(exc)) from exc
        if max_faces is not None and max_faces < 100:
            raise BodyMeshError(f"max_faces must be >= 100 (or None for the full mesh), got {max_faces}")
        self.device = torch.device(device)
        self.config = config
        if self.device.type == "cpu" and config.cpu_threads > 0:
            # The body model's tensors are tiny (23 keypoints, 17 groups): on a loaded CPU torch's intra-op threads
            # only wait for each other (an image fit took 12x longer with 2 threads at load average 8 here).
            torch.set_num_threads(config.cpu_threads)
        cache = Path(cache_dir) if cache_dir else None
        if model == "anny":
            if smplx_model_path:
                raise BodyMeshError("smplx_model_path is set but model='anny'; set model='smplx' to use SMPL-X")
            self.data = load_anny_model_data(cache)
        elif model == "smplx":
            if not smplx_model_path:
                raise BodyModelUnavailableError(
                    "model='smplx' needs smplx_model_path: the folder of your own licensed SMPL-X model files "
                    "(https://smpl-x.is.tue.mpg.de; non-commercial licence, not bundled)"
                )
            self.data = load_smplx_model_data(smplx_model_path, smplx_gender, cache)
        else:
            raise BodyMeshError(f"unknown body model {model!r}; choose 'anny' or 'smplx'")
        self.model_name = model
        self.body = _ReducedBody(self.data, self.device)
        self._tracks: dict[int, _Track] = {}
        self._camera: Optional[tuple] = None  # (K, image_size_wh) of set_camera
        self._shape_terms_cache: tuple = (None, None)
        self._last_log: dict[str, float] = {}
        self._vertex_subset, self._faces = self._decimation(max_faces)
        self._prior_w = torch.tensor([_PRIOR[g] for g in GROUP_NAMES], dtype=torch.float64, device=self.device)
        self._reference_geometry()
        # The first torch.optim construction imports torch._dynamo (seconds): pay it here, not in the first fit.
        torch.optim.LBFGS([torch.zeros(1, requires_grad=True)])

    # ----------------------------------------------------------------------------------------------- public API
    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int32 faces of the published meshes (decimated when max_faces was set)."""
        return self._faces

    def forget(self, track_id: int) -> None:
        """Drop a track's warm-start state (call when the tracker loses the person)."""
        self._tracks.pop(int(track_id), None)

    def retain(self, track_ids: set[int]) -> None:
        """Forget every track not in track_ids (the people of the current frame)."""
        for gone in set(self._tracks) - {int(t) for t in track_ids}:
            self.forget(gone)

    def reset(self) -> None:
        self._tracks.clear()

    def set_camera(self, K: Optional[np.ndarray], image_size_wh: Optional[tuple[int, int]] = None) -> None:
        """The camera of the frames to come: with K (3, 3) set, fit_meshes fits each person's 2D keypoints by
        reprojection (fit_image); None goes back to the 3D-keypoint fit. One tuple assignment, so a mesh thread
        calling fit_meshes meanwhile sees either the old or the new camera."""
        self._camera = None if K is None else (np.array(K, dtype=np.float64).reshape(3, 3), image_size_wh)

    def fit(
        self, track_id: int, keypoints_3d: np.ndarray, confidence: np.ndarray, stamp_s: float
    ) -> Optional[BodyMesh]:
        """Mesh for one person in one frame: keypoints_3d (K>=17, 3) float32 metres (COCO / COCO-WholeBody order,
        NaN where unknown), confidence (K,). Returns the posed mesh in the keypoints' frame, the last good mesh
        of this track (for up to keep_last_s) when this frame cannot be fitted, or None. Never raises on bad input.
        """
        result = self.fit_details(track_id, keypoints_3d, confidence, stamp_s)
        return None if result is None else result.mesh

    def fit_details(
        self, track_id: int, keypoints_3d: np.ndarray, confidence: np.ndarray, stamp_s: float
    ) -> Optional[FitResult]:
        """Like fit, returning the FitResult (model keypoints, residual, shape, pose, timing)."""
        try:
            return self._fit(int(track_id), keypoints_3d, confidence, float(stamp_s))
        except Exception as exc:  # noqa: BLE001 - never into the caller's loop: log (throttled) and degrade
            self._warn("error", f"body mesh fit failed for track {track_id}: {type(exc).__name__}: {exc}")
            return self._fallback(int(track_id), float(stamp_s) if np.isfinite(stamp_s) else math.inf)

    # ------------------------------------------------------------------------------- reprojection (RGB) fit
    def fit_image(
        self,
        track_id: int,
        keypoints_uv: np.ndarray,
        confidence: np.ndarray,
        K: np.ndarray,
        stamp_s: float,
        keypoints_3d: Optional[np.ndarray] = None,
        confidence_3d: Optional[np.ndarray] = None,
        depth_measured: bool = False,
        image_size_wh: Optional[tuple[int, int]] = None,
    ) -> Optional[FitResult]:
        """Mesh for one person from 2D keypoints, by reprojection through the camera (the approach of SMPLify /
        SPIN): the body model's keypoints, projected with K, are pulled onto the 2D keypoints (robust, confidence
        weighted), under the pose prior and the knee / elbow limits; the bone lengths are the body model's.

        keypoints_uv (K>=17, 2) pixels of an undistorted image, NaN where unknown; confidence (K,); K (3, 3).
        keypoints_3d (K, 3) metres in the camera frame, optional, with confidence_3d (K,) (default: confidence):
        with depth_measured=False a guess (MediaPipe's world landmarks placed by lifting) that starts the pose
        and holds what the image cannot fix (which way a limb points in depth, limbs out of view, with a weak
        pull); with depth_measured=True depth-camera measurements that also pull like the 3D fit's keypoints.
        image_size_wh: (width, height) of the image; 2D keypoints outside it are not used (landmark models guess
        joints beyond the frame edge, often with a fair confidence: the legs of a waist-up photo).
        Needs both shoulders and min_image_keypoints confident body points: a person seen from the waist up fits.
        Without depth the distance follows from the model's size (the default adult shape): one image cannot
        separate a person's size from their distance.
        Returns a FitResult (residual_px: mean 2D error in pixels; residual_m: mean 3D error to measured depth,
        NaN without), the track's last good fit (for keep_last_s), or None. Never raises on bad input.
        """
        try:
            return self._fit_image(
                int(track_id),
                keypoints_uv,
                confidence,
                K,
                float(stamp_s),
                keypoints_3d,
                confidence_3d,
                bool(depth_measured),
                image_size_wh,
            )
        except Exception as exc:  # noqa: BLE001 - never into the caller's loop: log (throttled) and degrade
            self._warn("error", f"body mesh image fit failed for track {track_id}: {type(exc).__name__}: {exc}")
            return self._fallback(int(track_id), float(stamp_s) if np.isfinite(stamp_s) else math.inf)

    def _fit_image(
        self,
        track_id,
        keypoints_uv,
        confidence,
        K,
        stamp_s,
        keypoints_3d,
        confidence_3d,
        depth_measured,
        image_size_wh=None,
        force_cold: bool = False,
    ) -> Optional[FitResult]:
        t0 = time.perf_counter()
        cfg = self.config
        if not np.isfinite(stamp_s):
            raise ValueError(f"stamp_s must be finite, got {stamp_s}")
        uv = np.asarray(keypoints_uv, dtype=np.float64)
        conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
        if uv.ndim != 2 or uv.shape[1] != 2 or uv.shape[0] < 17 or conf.shape[0] != uv.shape[0]:
            raise ValueError(f"keypoints_uv must be (K>=17, 2) with confidence (K,), got {uv.shape} and {conf.shape}")
        K = np.asarray(K, dtype=np.float64).reshape(3, 3)
        if not (np.all(np.isfinite(K)) and K[0, 0] > 0 and K[1, 1] > 0):
            raise ValueError("K must be a finite camera matrix with positive focal lengths")
        inp, mdl = model_keypoint_index(uv.shape[0])
        n = len(MODEL_KEYPOINT_NAMES)
        tgt2, w2 = np.zeros((n, 2)), np.zeros(n)
        c = np.clip(np.nan_to_num(conf[inp], nan=0.0), 0.0, 1.0)
        ok = np.isfinite(uv[inp]).all(axis=1) & (c >= cfg.min_confidence) & (np.abs(uv[inp]) < 1e6).all(axis=1)
        if image_size_wh is not None:
            with np.errstate(invalid="ignore"):
                ok &= (uv[inp] >= 0).all(axis=1) & (uv[inp] < np.asarray(image_size_wh, dtype=np.float64)).all(axis=1)
        tgt2[mdl] = np.where(ok[:, None], np.nan_to_num(uv[inp]), 0.0)
        w2[mdl] = np.where(ok, c, 0.0)
        ls, rs = _kp("left_shoulder"), _kp("right_shoulder")
        if w2[ls] == 0 or w2[rs] == 0 or np.count_nonzero(w2) < cfg.min_image_keypoints:
            self._warn(
                f"img{track_id}",
                f"track {track_id}: an image mesh fit needs both shoulders and "
                f"{cfg.min_image_keypoints} confident body points in the image, got "
                f"{'no ' if not (w2[ls] and w2[rs]) else ''}shoulders and {np.count_nonzero(w2)} points",
            )
            return self._fallback(track_id, stamp_s)
        # The person's size in pixels: residuals are fractions of it, so the fit behaves the same near and far.
        shoulders_px = float(np.linalg.norm(tgt2[ls] - tgt2[rs]))
        size_px = max(float(np.max(np.ptp(tgt2[w2 > 0], axis=0))), 2.5 * shoulders_px, 8.0)

        tgt3 = w3 = None
        if keypoints_3d is not None:
            k3 = np.asarray(keypoints_3d, dtype=np.float64)
            c3 = conf if confidence_3d is None else np.asarray(confidence_3d, dtype=np.float64).reshape(-1)
            if k3.shape == (uv.shape[0], 3) and c3.shape[0] == uv.shape[0]:
                cc = np.clip(np.nan_to_num(c3[inp], nan=0.0), 0.0, 1.0)
                ok3 = np.isfinite(k3[inp]).all(axis=1) & (np.abs(k3[inp]) < 1e3).all(axis=1)
                ok3 &= np.nan_to_num(k3[inp][:, 2], nan=0.0) > 0.05
                tgt3, w3 = np.zeros((n, 3)), np.zeros(n)
                tgt3[mdl] = np.where(ok3[:, None], np.nan_to_num(k3[inp]), 0.0)
                if depth_measured:
                    w3[mdl] = np.where(ok3 & (cc >= cfg.min_confidence), cc, 0.0)
                else:  # a guess of where every joint is: its unsure points still start the pose better than none
                    w3[mdl] = np.where(ok3, np.maximum(cc, 0.05), 0.0)
                if not w3.any():
                    tgt3 = w3 = None

        track = self._tracks.get(track_id)
        warm = not force_cold and track is not None and 0.0 <= stamp_s - track.stamp_s <= 5 * cfg.keep_last_s
        torso3 = tgt3 is not None and all(w3[_kp(nm)] > 0 for nm in _TORSO)
        if warm:
            shape = track.shape.clone()
            rot0, trans0 = track.rotvecs.clone(), track.translation.clone()
            iterations = cfg.image_warm_iterations
        else:
            shape = torch.as_tensor(self.data.default_shape, dtype=torch.float64, device=self.device)
            if depth_measured and torso3:  # with depth the limb lengths are metric: they choose the shape
                try:
                    shape = self._choose_shape(tgt3, w3)
                except Exception:  # noqa: BLE001 - a bad length only costs the default shape
                    pass
            iterations = cfg.image_iterations
        # Starts: the track's last pose (warm), else the lifter's 3D guess and an upright body facing the way the
        # shoulders say; 2D keypoints alone have mirror-like local minima (a limb towards or away from the camera,
        # a crouch read as a lean), so a cold fit keeps whichever start ends with the lower loss.
        starts = (
            [(rot0, trans0)]
            if warm
            else ([self._initialise(tgt3, w3, shape)] if torso3 else [])
            + [self._image_initial_pose(tgt2, w2, K, shape)]
        )
        best = None
        for r0, t0_ in starts:
            fitted = self._optimise_image(
                tgt2,
                w2,
                size_px,
                K,
                r0,
                t0_,
                shape,
                iterations,
                tgt3 if depth_measured else None,
                w3 if depth_measured else None,
            )
            if best is None or fitted[3] < best[3]:
                best = fitted
            err = np.linalg.norm(_project_np(best[2], K) - tgt2, axis=1)[w2 > 0]
            if np.median(err) <= cfg.image_good_enough * size_px:  # this start landed: the next is not needed
                break
        rot, trans, kp_model, _ = best
        err_px = np.linalg.norm(_project_np(kp_model, K) - tgt2, axis=1)
        residual_px = float((err_px * w2).sum() / w2.sum())
        residual_m = float("nan")
        if depth_measured and tgt3 is not None and w3.any():
            residual_m = float((np.linalg.norm(kp_model - tgt3, axis=1) * w3).sum() / w3.sum())
        # Rejected on the median error: a fit in the wrong minimum misses most points, while a good fit may leave
        # a few out-of-reach ones (a guessed occluded ankle) far off.
        median_px = float(np.median(err_px[w2 > 0]))
        if (
            not np.isfinite(residual_px)
            or median_px > cfg.max_image_residual * size_px
            or not np.all(kp_model[:, 2] > 0)
            or (np.isfinite(residual_m) and residual_m > cfg.max_residual_m)
        ):
            self._warn(
                f"imgres{track_id}",
                f"track {track_id}: image mesh fit rejected, median 2D error "
                f"{median_px:.1f} px of a {size_px:.0f} px person",
            )
            if warm:  # try once more from scratch before giving up on this frame
                return self._fit_image(
                    track_id,
                    keypoints_uv,
                    confidence,
                    K,
                    stamp_s,
                    keypoints_3d,
                    confidence_3d,
                    depth_measured,
                    image_size_wh,
                    force_cold=True,
                )
            return self._fallback(track_id, stamp_s)
        with torch.no_grad():
            vertices = self.body.vertices(rot, trans, shape).cpu().numpy()
        if self._vertex_subset is not None:
            vertices = vertices[self._vertex_subset]
        result = FitResult(
            mesh=BodyMesh(vertices=np.ascontiguousarray(vertices, dtype=np.float32), faces=self._faces),
            keypoints_3d=kp_model.astype(np.float32),
            residual_m=residual_m,
            iterations=iterations,
            cold=not warm,
            shape=shape.detach().cpu().numpy().copy(),
            group_rotvecs=rot.cpu().numpy().copy(),
            translation=trans.cpu().numpy().copy(),
            fit_time_s=time.perf_counter() - t0,
            residual_px=residual_px,
        )
        self._tracks[track_id] = _Track(
            rotvecs=rot,
            translation=trans,
            shape=shape.detach(),
            stamp_s=stamp_s,
            last_good=result,
            num_fits=(track.num_fits if warm else 0) + 1,
        )
        return result

    def _image_initial_pose(self, tgt2, w2, K, shape) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference pose, upright (image up), facing the camera when the person's left shoulder is on the image's
        right, placed by weak perspective: the spread of the model's points against that of the 2D points."""
        ls, rs = _kp("left_shoulder"), _kp("right_shoulder")
        rot = np.zeros((len(GROUP_NAMES), 3))
        facing = tgt2[ls, 0] >= tgt2[rs, 0]
        F_obs = _frame(np.array([1.0 if facing else -1.0, 0.0, 0.0]), np.array([0.0, -1.0, 0.0]))
        rot[0] = _matrix_to_rotvec(F_obs @ self._ref_frame.T)
        kp = self._keypoints_np(rot, np.zeros(3), shape)
        m = w2 > 0
        P, q = kp[m], tgt2[m]
        spread_m = np.sqrt(((P[:, :2] - P[:, :2].mean(axis=0)) ** 2).sum(axis=1).mean())
        spread_px = np.sqrt(((q - q.mean(axis=0)) ** 2).sum(axis=1).mean())
        z = float(np.clip(0.5 * (K[0, 0] + K[1, 1]) * spread_m / max(spread_px, 1e-3), 0.3, 200.0))
        qc = q.mean(axis=0)
        centre = np.array([(qc[0] - K[0, 2]) / K[0, 0] * z, (qc[1] - K[1, 2]) / K[1, 1] * z, z])
        translation = centre - P.mean(axis=0)
        return (
            torch.as_tensor(rot, dtype=torch.float64, device=self.device),
            torch.as_tensor(translation, dtype=torch.float64, device=self.device),
        )

    def _optimise_image(self, tgt2, w2, size_px, K, rot0, trans0, shape, iterations, tgt3, w3):
        """Two stages, as SMPLify: the root rotation and translation on the 2D points alone, then the whole pose.
        Returns rotvecs (J, 3), translation (3,), model keypoints (23, 3) numpy, the final loss."""
        cfg = self.config
        dev = dict(dtype=torch.float64, device=self.device)
        uvt = torch.as_tensor(tgt2, **dev)
        w = torch.as_tensor(w2, **dev)
        w_sum = w.sum()
        fxy = torch.as_tensor([K[0, 0], K[1, 1]], **dev)
        cxy = torch.as_tensor([K[0, 2], K[1, 2]], **dev)
        sigma2 = cfg.image_robust_scale**2
        with torch.no_grad():
            heads_ref, local = self.body.shape_terms(shape)
        init_rot = rot0.detach().clone()
        # The 3D fit's prior and hinge weights are per m^2 of keypoint error (scale robust_scale_m); here the data
        # term is a fraction of its ceiling, so they are rescaled by that ceiling.
        prior_scale = cfg.image_prior_scale / cfg.robust_scale_m**2
        d3 = None
        if tgt3 is not None:
            d3 = (torch.as_tensor(tgt3, **dev), torch.as_tensor(w3, **dev))

        def data_terms(rot, trans):
            kp = self.body.keypoints_posed(rot, trans, heads_ref, local)
            z = kp[:, 2]
            uv = kp[:, :2] / z.clamp(min=1e-3)[:, None] * fxy + cxy
            r2 = (((uv - uvt) / size_px) ** 2).sum(-1)
            loss = (w * r2 / (r2 + sigma2)).sum() / w_sum
            loss = loss + 10.0 * (torch.relu(0.2 - z) ** 2).sum()  # in front of the camera
            if d3 is not None:
                e2 = ((kp - d3[0]) ** 2).sum(-1)
                s3 = cfg.robust_scale_m**2
                loss = loss + cfg.image_depth_weight * (d3[1] * e2 / (e2 + s3)).sum() / d3[1].sum().clamp(min=1e-9)
            return loss

        def lbfgs(params, closure_loss, max_iter):
            opt = torch.optim.LBFGS(
                params,
                lr=1.0,
                max_iter=max_iter,
                history_size=20,
                line_search_fn="strong_wolfe",
                tolerance_grad=1e-10,
                tolerance_change=1e-12,
            )

            def closure():
                opt.zero_grad()
                loss = closure_loss()
                loss.backward()
                return loss

            opt.step(closure)

        root = rot0[0].clone().requires_grad_(True)
        trans = trans0.clone().requires_grad_(True)
        rest = rot0[1:].clone()
        lbfgs([root, trans], lambda: data_terms(torch.cat([root[None], rest]), trans), cfg.image_root_iterations)

        rot = torch.cat([root.detach()[None], rest]).requires_grad_(True)
        trans = trans.detach().clone().requires_grad_(True)

        def full_loss():
            loss = data_terms(rot, trans)
            prior = cfg.prior_weight * (self._prior_w[1:] * (rot[1:] ** 2).sum(-1)).sum()
            r_h = rot[self._hinge_groups]
            along = (r_h * self._hinge_axes).sum(-1)
            off_axis = (r_h**2).sum(-1) - along**2
            hinge = cfg.hinge_weight * (off_axis + torch.relu(-along) ** 2 + torch.relu(along - 2.6) ** 2).sum()
            loss = loss + prior_scale * (prior + hinge)
            return loss + cfg.image_init_weight * ((rot[1:] - init_rot[1:]) ** 2).sum()

        lbfgs([rot, trans], full_loss, iterations)
        with torch.no_grad():
            kp = self.body.keypoints_posed(rot, trans, heads_ref, local).cpu().numpy()
            loss = float(full_loss())
        return rot.detach(), trans.detach(), kp, loss if np.isfinite(loss) else math.inf

    # ------------------------------------------------------------------------------------------------ internals
    def _warn(self, key: str, message: str, period_s: float = 5.0) -> None:
        now = time.monotonic()
        if now - self._last_log.get(key, -math.inf) >= period_s:
            self._last_log[key] = now
            logger.warning(message)

    def _fallback(self, track_id: int, stamp_s: float) -> Optional[FitResult]:
        track = self._tracks.get(track_id)
        if track is None or track.last_good is None:
            return None
        if abs(stamp_s - track.stamp_s) <= self.config.keep_last_s:
            return track.last_good
        return None

    def _decimation(self, max_faces: Optional[int]) -> tuple[Optional[np.ndarray], np.ndarray]:
        faces = self.data.faces
        if max_faces is None or max_faces >= len(faces):
            return None, faces
        import open3d as o3d
        from scipy.spatial import cKDTree

        vref = self.data.node_vertices[len(self.data.node_vertices) // 2].astype(np.float64)
        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vref), o3d.utility.Vector3iVector(faces))
        small = mesh.simplify_quadric_decimation(target_number_of_triangles=int(max_faces))
        # Decimated vertices snap to the nearest original vertex so that they can follow the skinning.
        _, subset_of_new = cKDTree(vref).query(np.asarray(small.vertices))
        new_faces = subset_of_new[np.asarray(small.triangles)]
        new_faces = new_faces[
            (new_faces[:, 0] != new_faces[:, 1])
            & (new_faces[:, 1] != new_faces[:, 2])
            & (new_faces[:, 0] != new_faces[:, 2])
        ]
        subset, compact = np.unique(new_faces, return_inverse=True)
        return subset.astype(np.int64), compact.reshape(-1, 3).astype(np.int32)

    def _reference_geometry(self) -> None:
        """Hinge axes of knees and elbows in the reference pose (model frame), for the joint-limit term."""
        with torch.no_grad():
            shape = torch.as_tensor(self.data.default_shape, dtype=torch.float64, device=self.device)
            zero = torch.zeros((len(GROUP_NAMES), 3), dtype=torch.float64, device=self.device)
            kp = self.body.keypoints(zero, torch.zeros(3, dtype=torch.float64, device=self.device), shape).cpu().numpy()
        self._ref_kp = kp
        # Reference-pose keypoints on a fine shape grid, for the limb-length shape choice of cold fits.
        fine = [np.linspace(n[0], n[-1], 7) for n in self.data.shape_nodes]
        self._candidates = np.array(np.meshgrid(*fine, indexing="ij")).reshape(len(fine), -1).T
        with torch.no_grad():
            self._candidate_kp = np.stack(
                [
                    self.body.keypoints(
                        zero,
                        torch.zeros(3, dtype=torch.float64, device=self.device),
                        torch.as_tensor(c, dtype=torch.float64, device=self.device),
                    )
                    .cpu()
                    .numpy()
                    for c in self._candidates
                ]
            )
        left = kp[_kp("left_hip")] - kp[_kp("right_hip")] + kp[_kp("left_shoulder")] - kp[_kp("right_shoulder")]
        up = 0.5 * (kp[_kp("left_shoulder")] + kp[_kp("right_shoulder")] - kp[_kp("left_hip")] - kp[_kp("right_hip")])
        self._ref_frame = _frame(left, up)  # columns: left, up, front-or-back
        nose_dir = kp[_kp("nose")] - 0.5 * (kp[_kp("left_ear")] + kp[_kp("right_ear")])
        front = self._ref_frame[:, 2] * np.sign(np.dot(nose_dir, self._ref_frame[:, 2]))
        axes, groups = [], []
        for group, joint, child, way in _HINGES:
            d = kp[_kp(child)] - kp[_kp(joint)]
            m = front if way == "front" else -front
            m = m - np.dot(m, d) / np.dot(d, d) * d
            axis = np.cross(d, m)
            axes.append(axis / np.linalg.norm(axis))
            groups.append(_grp(group))
        self._hinge_axes = torch.as_tensor(np.array(axes), dtype=torch.float64, device=self.device)
        self._hinge_groups = torch.tensor(groups, device=self.device)

    def _prepare(self, keypoints_3d: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Input -> (target (23, 3) float64, weight (23,) float64) in model keypoint order; weight 0 = not used."""
        kp = np.asarray(keypoints_3d, dtype=np.float64)
        conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
        if kp.ndim != 2 or kp.shape[1] != 3 or kp.shape[0] < 17 or conf.shape[0] != kp.shape[0]:
            raise ValueError(f"keypoints_3d must be (K>=17, 3) with confidence (K,), got {kp.shape} and {conf.shape}")
        inp, mdl = model_keypoint_index(kp.shape[0])
        target = np.zeros((len(MODEL_KEYPOINT_NAMES), 3))
        weight = np.zeros(len(MODEL_KEYPOINT_NAMES))
        target[mdl] = kp[inp]
        c = np.nan_to_num(conf[inp], nan=0.0)
        ok = np.isfinite(kp[inp]).all(axis=1) & (c >= self.config.min_confidence) & (np.abs(kp[inp]) < 1e3).all(axis=1)
        weight[mdl] = np.where(ok, np.clip(c, 0.0, 1.0), 0.0)
        target[weight == 0] = 0.0
        # Limb segments of impossible length: the child end of that segment does not pull.
        for a, b, lo, hi in _SEGMENTS:
            ia, ib = _kp(a), _kp(b)
            if weight[ia] > 0 and weight[ib] > 0:
                length = np.linalg.norm(target[ia] - target[ib])
                if not lo <= length <= hi:
                    if a in _TORSO and b in _TORSO:
                        raise _Unfittable(f"torso segment {a}-{b} is {length:.2f} m long (plausible {lo}-{hi} m)")
                    weight[ib] = 0.0
        return target, weight

    def _fit(
        self, track_id: int, keypoints_3d, confidence, stamp_s: float, force_cold: bool = False
    ) -> Optional[FitResult]:
        t0 = time.perf_counter()
        if not np.isfinite(stamp_s):
            raise ValueError(f"stamp_s must be finite, got {stamp_s}")
        try:
            target, weight = self._prepare(keypoints_3d, confidence)
        except _Unfittable as exc:
            self._warn(f"unfit{track_id}", f"track {track_id}: cannot fit a body mesh: {exc}")
            return self._fallback(track_id, stamp_s)
        track = self._tracks.get(track_id)
        torso_ok = all(weight[_kp(n)] > 0 for n in _TORSO)
        if (weight > 0).sum() < 8:
            self._warn(f"few{track_id}", f"track {track_id}: only {(weight > 0).sum()} usable keypoints, no mesh fit")
            return self._fallback(track_id, stamp_s)
        cold = track is None or force_cold
        if not cold:
            dt = stamp_s - track.stamp_s
            pelvis_now = 0.5 * (target[_kp("left_hip")] + target[_kp("right_hip")])
            last_pelvis = (
                0.5 * (track.last_good.keypoints_3d[_kp("left_hip")] + track.last_good.keypoints_3d[_kp("right_hip")])
                if track.last_good is not None
                else None
            )
            if dt < 0 or dt > self.config.keep_last_s * 5:
                cold = True
            elif last_pelvis is not None and weight[_kp("left_hip")] > 0 and weight[_kp("right_hip")] > 0:
                if np.linalg.norm(pelvis_now - last_pelvis) > 0.3 + self.config.max_speed_m_s * max(dt, 0.0):
                    self._warn(
                        f"jump{track_id}",
                        f"track {track_id} jumped {np.linalg.norm(pelvis_now - last_pelvis):.2f} m "
                        f"in {dt:.3f} s: re-initialising its body fit",
                    )
                    cold = True
        if cold and not torso_ok:
            self._warn(f"torso{track_id}", f"track {track_id}: a cold body fit needs both shoulders and hips")
            return self._fallback(track_id, stamp_s)
        if cold:
            shape = self._choose_shape(target, weight)
            rotvecs, translation = self._initialise(target, weight, shape)
            iterations = self.config.cold_iterations
            prev = None
        else:
            shape = track.shape.clone()
            rotvecs, translation = self._initialise(
                target, weight, shape, track.rotvecs.cpu().numpy(), track.translation.cpu().numpy(), passes=1
            )
            iterations = self.config.warm_iterations
            prev = track
        fit_shape = cold or (prev is not None and prev.fits_since_shape + 1 >= self.config.shape_update_every)
        rotvecs, translation, shape, kp_model = self._optimise(
            target, weight, rotvecs, translation, shape, iterations, prev, fit_shape
        )
        w = weight
        residual = float((np.linalg.norm(kp_model - target, axis=1) * w).sum() / w.sum())
        if not np.isfinite(residual) or residual > self.config.max_residual_m:
            self._warn(f"resid{track_id}", f"track {track_id}: body fit rejected, mean keypoint error {residual:.3f} m")
            if not cold and torso_ok:  # try once more from scratch before giving up on this frame
                return self._fit(track_id, keypoints_3d, confidence, stamp_s, force_cold=True)
            return self._fallback(track_id, stamp_s)
        with torch.no_grad():
            vertices = self.body.vertices(rotvecs, translation, shape).cpu().numpy()
        if self._vertex_subset is not None:
            vertices = vertices[self._vertex_subset]
        mesh = BodyMesh(vertices=np.ascontiguousarray(vertices, dtype=np.float32), faces=self._faces)
        result = FitResult(
            mesh=mesh,
            keypoints_3d=kp_model.astype(np.float32),
            residual_m=residual,
            iterations=iterations,
            cold=cold,
            shape=shape.detach().cpu().numpy().copy(),
            group_rotvecs=rotvecs.detach().cpu().numpy().copy(),
            translation=translation.detach().cpu().numpy().copy(),
            fit_time_s=time.perf_counter() - t0,
        )
        new = _Track(
            rotvecs=rotvecs.detach(),
            translation=translation.detach(),
            shape=shape.detach(),
            stamp_s=stamp_s,
            last_good=result,
            num_fits=(0 if prev is None else prev.num_fits) + 1,
            fits_since_shape=0 if fit_shape else prev.fits_since_shape + 1,
        )
        self._tracks[track_id] = new
        return result

    def _choose_shape(self, target: np.ndarray, weight: np.ndarray) -> torch.Tensor:
        """Shape on a fine grid whose reference-pose limb lengths best match the observed ones (cold fits)."""
        pairs = [(_kp(a), _kp(b)) for a, b, _, _ in _SEGMENTS if weight[_kp(a)] > 0 and weight[_kp(b)] > 0]
        if not pairs:
            return torch.as_tensor(self.data.default_shape, dtype=torch.float64, device=self.device)
        a, b = np.array(pairs).T
        observed = np.linalg.norm(target[a] - target[b], axis=1)
        pw = np.minimum(weight[a], weight[b])
        model_len = np.linalg.norm(self._candidate_kp[:, a] - self._candidate_kp[:, b], axis=2)  # (C, P)
        best = int(np.argmin((pw * (model_len - observed) ** 2).sum(axis=1)))
        return torch.as_tensor(self._candidates[best], dtype=torch.float64, device=self.device)

    def _initialise(
        self,
        target,
        weight,
        shape,
        rotvecs: Optional[np.ndarray] = None,
        translation: Optional[np.ndarray] = None,
        passes: int = 2,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Analytic pose: the pelvis frame turned onto the hips + shoulders, then each limb group onto its bone
        direction. Starts from the reference pose (cold) or from the track's previous pose (warm)."""
        rot = np.zeros((len(GROUP_NAMES), 3)) if rotvecs is None else np.array(rotvecs, dtype=np.float64)
        translation = np.zeros(3) if translation is None else np.array(translation, dtype=np.float64)
        lh, rh, ls, rs = (_kp(n) for n in _TORSO)
        if all(weight[i] > 0 for i in (lh, rh, ls, rs)):
            kp = self._keypoints_np(rot, translation, shape)
            F_model = _frame(kp[lh] - kp[rh] + kp[ls] - kp[rs], 0.5 * (kp[ls] + kp[rs] - kp[lh] - kp[rh]))
            F_obs = _frame(
                target[lh] - target[rh] + target[ls] - target[rs],
                0.5 * (target[ls] + target[rs] - target[lh] - target[rh]),
            )
            R_delta = F_obs @ F_model.T
            R_root = R_delta @ Rotation.from_rotvec(rot[0]).as_matrix()
            rot[0] = _matrix_to_rotvec(R_root)
            # The root turns about its head (= translation): move it so that the pelvis lands on the hips' midpoint.
            translation = 0.5 * (target[lh] + target[rh]) - R_delta @ (0.5 * (kp[lh] + kp[rh]) - translation)
        for _ in range(passes):  # a second pass corrects for the coupling between parent and child alignments
            # Groups at one tree depth never move each other: one forward pass per depth serves all of them.
            for level in _ALIGN_LEVELS:
                kp = self._keypoints_np(rot, translation, shape)
                H = self._world_rotations(rot)
                for group, start, ends in level:
                    R_align = self._alignment(group, start, ends, kp, target, weight)
                    if R_align is not None:
                        j = _grp(group)
                        rot[j] = _matrix_to_rotvec(H[GROUP_PARENTS[j]].T @ R_align @ H[j])
        return (
            torch.as_tensor(rot, dtype=torch.float64, device=self.device),
            torch.as_tensor(translation, dtype=torch.float64, device=self.device),
        )

    @staticmethod
    def _alignment(
        group: str, start: str, ends: tuple, kp: np.ndarray, target: np.ndarray, weight: np.ndarray
    ) -> Optional[np.ndarray]:
        """World rotation (3, 3) turning the model's segment of `group` onto the observed one, or None."""
        ls, rs = _kp("left_shoulder"), _kp("right_shoulder")
        if group == "head":  # face frame: ears and nose
            le, re, nose = _kp("left_ear"), _kp("right_ear"), _kp("nose")
            if min(weight[le], weight[re], weight[nose]) == 0:
                return None
            u, v = kp[le] - kp[re], target[le] - target[re]
            u2, v2 = kp[nose] - 0.5 * (kp[le] + kp[re]), target[nose] - 0.5 * (target[le] + target[re])
            if min(np.linalg.norm(x) for x in (u, v, u2, v2)) < 1e-3:
                return None
            return _frame(v, v2) @ _frame(u, u2).T
        ends_ok = [e for e in ends if weight[_kp(e)] > 0]
        if not ends_ok:
            return None
        if group == "neck":  # shoulder midpoint to nose
            if weight[ls] == 0 or weight[rs] == 0:
                return None
            u = kp[_kp("nose")] - 0.5 * (kp[ls] + kp[rs])
            v = target[_kp("nose")] - 0.5 * (target[ls] + target[rs])
        else:
            if weight[_kp(start)] == 0:
                return None
            u = np.mean([kp[_kp(e)] for e in ends_ok], axis=0) - kp[_kp(start)]
            v = np.mean([target[_kp(e)] for e in ends_ok], axis=0) - target[_kp(start)]
        if np.linalg.norm(u) < 1e-6 or np.linalg.norm(v) < 1e-6:
            return None
        third = _LIMB_END.get(group)
        if third is not None and weight[_kp(third)] > 0 and len(ends_ok) == 1:
            # A bent limb also fixes the twist of its upper segment: align the limb's plane too.
            e = _kp(ends_ok[0])
            u2, v2 = kp[_kp(third)] - kp[e], target[_kp(third)] - target[e]
            nu, nv = np.cross(u, u2), np.cross(v, v2)
            if np.linalg.norm(nu) > 0.25 * np.linalg.norm(u) * np.linalg.norm(u2) and np.linalg.norm(
                nv
            ) > 0.25 * np.linalg.norm(v) * np.linalg.norm(v2):
                return _frame(v, nv) @ _frame(u, nu).T
        return rotation_between(u, v)

    def _keypoints_np(self, rot: np.ndarray, translation: np.ndarray, shape: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            key = shape.cpu().numpy().tobytes()
            if self._shape_terms_cache[0] != key:  # the init evaluates one shape a dozen times
                self._shape_terms_cache = (key, self.body.shape_terms(shape))
            return (
                self.body.keypoints_posed(
                    torch.as_tensor(rot, dtype=torch.float64, device=self.device),
                    torch.as_tensor(translation, dtype=torch.float64, device=self.device),
                    *self._shape_terms_cache[1],
                )
                .cpu()
                .numpy()
            )

    def _world_rotations(self, rot: np.ndarray) -> np.ndarray:
        D = Rotation.from_rotvec(rot).as_matrix()
        H = np.zeros_like(D)
        for j, p in enumerate(GROUP_PARENTS):
            H[j] = D[j] if p < 0 else H[p] @ D[j]
        return H

    def _optimise(
        self, target, weight, rotvecs, translation, shape, iterations, prev: Optional[_Track], fit_shape: bool
    ):
        cfg = self.config
        dev = dict(dtype=torch.float64, device=self.device)
        tgt = torch.as_tensor(target, **dev)
        w = torch.as_tensor(weight, **dev)
        w_sum = w.sum()
        rot = rotvecs.clone().requires_grad_(True)
        trans = translation.clone().requires_grad_(True)
        shp = shape.clone().requires_grad_(fit_shape)
        params = [rot, trans] + ([shp] if fit_shape else [])
        lo, hi = (torch.as_tensor(b, **dev) for b in self.data.shape_bounds())
        mean_shape = torch.as_tensor(self.data.default_shape, **dev)
        sigma2 = cfg.robust_scale_m**2
        prev_rot = prev.rotvecs if prev is not None else None
        prev_shape = prev.shape if prev is not None else None
        with torch.no_grad():
            fixed_terms = self.body.shape_terms(shape)
        optimiser = torch.optim.LBFGS(
            params,
            lr=1.0,
            max_iter=iterations,
            history_size=20,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )

        def closure():
            optimiser.zero_grad()
            if fit_shape:
                s = shp.clamp(lo, hi)
                kp = self.body.keypoints(rot, trans, s)
            else:
                s = shp
                kp = self.body.keypoints_posed(rot, trans, *fixed_terms)
            e2 = ((kp - tgt) ** 2).sum(-1)
            data = (w * sigma2 * e2 / (e2 + sigma2)).sum() / w_sum  # Geman-McClure, confidence weighted
            prior = cfg.prior_weight * (self._prior_w[1:] * (rot[1:] ** 2).sum(-1)).sum()
            r_h = rot[self._hinge_groups]
            along = (r_h * self._hinge_axes).sum(-1)
            off_axis = (r_h**2).sum(-1) - along**2
            hinge = cfg.hinge_weight * (off_axis + torch.relu(-along) ** 2 + torch.relu(along - 2.6) ** 2).sum()
            loss = data + prior + hinge + cfg.shape_prior_weight * ((s - mean_shape) ** 2).sum()
            if prev_rot is not None:
                loss = loss + cfg.temporal_weight * ((rot[1:] - prev_rot[1:]) ** 2).sum()
                if fit_shape:
                    loss = loss + cfg.shape_temporal_weight * sigma2 * ((s - prev_shape) ** 2).sum()
            loss.backward()
            return loss

        optimiser.step(closure)
        with torch.no_grad():
            s = shp.detach().clamp(lo, hi)
            kp = self.body.keypoints(rot, trans, s).cpu().numpy()
        return rot.detach(), trans.detach(), s, kp


def fit_meshes(fitter: "BodyMeshFitter", humans: list, stamp_s: float) -> list:
    """Each HumanPose with 3D keypoints gets its track's mesh (None when the fit gives none); tracks absent from
    this frame are forgotten. When the fitter has a camera (set_camera), every person is fitted by reprojection
    of their 2D keypoints instead (fit_meshes_image)."""
    from dataclasses import replace

    camera = getattr(fitter, "_camera", None)
    if camera is not None:
        return fit_meshes_image(fitter, humans, stamp_s, camera[0], None, camera[1])
    fitter.retain({h.track_id for h in humans})
    return [
        replace(h, mesh=fitter.fit(h.track_id, h.keypoints_3d, h.confidence, stamp_s))
        if h.keypoints_3d is not None
        else replace(h, mesh=None)
        for h in humans
    ]


def fit_meshes_image(
    fitter: "BodyMeshFitter",
    humans: list,
    stamp_s: float,
    K: np.ndarray,
    confidence_2d: Optional[list] = None,
    image_size_wh: Optional[tuple[int, int]] = None,
) -> list:
    """Each HumanPose gets a mesh fitted to its 2D keypoints through the camera K (3, 3) (fit_image), its 3D
    keypoints as the starting guess, or as measurements when they come from depth (Source.RGBD).
    confidence_2d: per human, the (K,) confidence of its 2D keypoints when it differs from HumanPose.confidence
    (which lifting rescales). Tracks absent from this frame are forgotten."""
    from dataclasses import replace

    from pose_perception.core.types import Source

    fitter.retain({h.track_id for h in humans})
    out = []
    for i, h in enumerate(humans):
        conf2 = h.confidence if confidence_2d is None else confidence_2d[i]
        result = fitter.fit_image(
            h.track_id,
            h.keypoints_uv,
            conf2,
            K,
            stamp_s,
            h.keypoints_3d,
            h.confidence,
            depth_measured=h.source == Source.RGBD,
            image_size_wh=image_size_wh,
        )
        out.append(replace(h, mesh=None if result is None else result.mesh))
    return out


class _Unfittable(Exception):
    """This frame's keypoints cannot describe a person (internal: turned into a fallback, never raised)."""
