"""SYNTHETIC mmWave radar data driven by real human motion: DeepMimic mocap clips (pybullet_data) through the
humanoid's forward kinematics, body-surface sampling, radar visibility, Doppler, sparsity, noise and ghosts.

Everything this module produces is synthetic and must be labelled so wherever it is reported.

Humanoid: `pybullet_data/humanoid/humanoid.urdf` at DeepMimic's globalScaling 0.25 (native axes: y up,
x forward of the character, z to its right). Clips: `pybullet_data/data/motions/humanoid3d_*.txt`, each
frame = duration, root position (3), root quaternion (w, x, y, z), then per joint a quaternion (w, x, y, z)
for spherical joints or an angle (rad, about local z) for the knees and elbows, in the order of
`evaluation/deepmimic.py: MOTION_JOINTS`.

COCO body 17 ground truth (document of the correspondence):
    shoulders, elbows, hips, knees, ankles -> the URDF joint origins of the same names;
    wrists -> the fixed `*_wrist` joint origins (end of the forearm);
    nose, eyes, ears -> fixed points on the head sphere of the `neck` link (approximations, see HEAD_POINTS).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from pose_perception.core.asset_packages import AssetPackageMissing, pybullet_data_dir
from pose_perception.core.keypoints import COCO_BODY_17_NAMES, LIMB_12_NAMES
from pose_perception.evaluation.deepmimic import MOTION_JOINTS, MocapClipError, read_clip

URDF_SCALE = 0.25  # DeepMimic loads humanoid.urdf with globalScaling=0.25

# Clips the radar network may be trained on (issue 5); every other humanoid3d clip is held out.
TRAIN_CLIPS = (
    "humanoid3d_walk",
    "humanoid3d_run",
    "humanoid3d_jump",
    "humanoid3d_dance_a",
    "humanoid3d_punch",
    "humanoid3d_kick",
    "humanoid3d_getup_faceup",
    "humanoid3d_crawl",
    "walker/0walk_forward",
    "walker/turn_left0",
    "walker/turn_left1",
    "walker/turn_right0",
    "walker/turn_right1",
)
EVAL_CLIPS = (
    "humanoid3d_backflip",
    "humanoid3d_cartwheel",
    "humanoid3d_dance_b",
    "humanoid3d_getup_facedown",
    "humanoid3d_roll",
    "humanoid3d_spin",
    "humanoid3d_spinkick",
)

LINKS = (
    "root",
    "chest",
    "neck",
    "right_hip",
    "right_knee",
    "right_ankle",
    "right_shoulder",
    "right_elbow",
    "right_wrist",
    "left_hip",
    "left_knee",
    "left_ankle",
    "left_shoulder",
    "left_elbow",
    "left_wrist",
)

# Native (y up, x forward, z right) -> Z-up world (x forward, y left, z up).
R_ZUP_FROM_NATIVE = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# Face points in the neck link frame, metres (head sphere centre at y = 0.175; left is -z in native axes).
HEAD_POINTS = {
    "nose": (0.10, 0.165, 0.0),
    "left_eye": (0.085, 0.19, -0.033),
    "right_eye": (0.085, 0.19, 0.033),
    "left_ear": (0.0, 0.175, -0.075),
    "right_ear": (0.0, 0.175, 0.075),
}
COCO_FROM_LINK = {name: name for name in LIMB_12_NAMES}  # same joint names in both skeletons

# Body surface: (link, start (3), end (3), radius) capsules in the link frame at scale 1 (metres, native axes).
# Radii are those of an average adult; BodyShape scales lengths and girth.
CAPSULES = (
    ("root", (0.0, 0.0, -0.07), (0.0, 0.0, 0.07), 0.11),  # pelvis
    ("root", (0.0, 0.06, 0.0), (0.0, 0.22, 0.0), 0.12),  # abdomen
    ("chest", (0.0, 0.10, -0.07), (0.0, 0.10, 0.07), 0.12),  # chest
    ("chest", (-0.01, 0.20, -0.10), (-0.01, 0.20, 0.10), 0.07),  # shoulder girdle
    ("neck", (0.0, 0.0, 0.0), (0.0, 0.08, 0.0), 0.05),
    ("neck", (0.01, 0.165, 0.0), (0.01, 0.185, 0.0), 0.095),  # head
    ("right_hip", (0.0, -0.03, 0.0), (0.0, -0.40, 0.0), 0.075),
    ("left_hip", (0.0, -0.03, 0.0), (0.0, -0.40, 0.0), 0.075),
    ("right_knee", (0.0, -0.02, 0.0), (0.0, -0.38, 0.0), 0.055),
    ("left_knee", (0.0, -0.02, 0.0), (0.0, -0.38, 0.0), 0.055),
    ("right_ankle", (-0.03, -0.03, 0.0), (0.14, -0.035, 0.0), 0.04),
    ("left_ankle", (-0.03, -0.03, 0.0), (0.14, -0.035, 0.0), 0.04),
    ("right_shoulder", (0.0, -0.02, 0.0), (0.0, -0.26, 0.0), 0.05),
    ("left_shoulder", (0.0, -0.02, 0.0), (0.0, -0.26, 0.0), 0.05),
    ("right_elbow", (0.0, -0.02, 0.0), (0.0, -0.25, 0.0), 0.04),
    ("left_elbow", (0.0, -0.02, 0.0), (0.0, -0.25, 0.0), 0.04),
    ("right_wrist", (0.0, -0.04, 0.0), (0.0, -0.09, 0.0), 0.045),  # hand
    ("left_wrist", (0.0, -0.04, 0.0), (0.0, -0.09, 0.0), 0.045),
)


class SimulatorError(RuntimeError):
    """The simulator's inputs (URDF, clip files, scene description) are missing or malformed."""


def pybullet_data_path() -> Path:
    try:
        return pybullet_data_dir()
    except AssetPackageMissing as exc:
        raise SimulatorError(f"the radar simulator: {exc}") from exc


def clip_path(name: str) -> Path:
    return pybullet_data_path() / "data" / "motions" / f"{name}.txt"


@dataclass(frozen=True)
class Skeleton:
    """Humanoid joint tree: parent index per link and the joint origin (3,) in the parent frame, metres."""

    parents: tuple[int, ...]
    offsets: np.ndarray  # (L, 3) float64


def load_skeleton(urdf_path: Path | None = None) -> Skeleton:
    """Parse humanoid.urdf (joint origins at DeepMimic scale) into the LINKS order."""
    urdf_path = urdf_path or pybullet_data_path() / "humanoid" / "humanoid.urdf"
    try:
        raw = Path(urdf_path).read_bytes()
        # The shipped file has trailing NUL bytes after </robot>; parse up to the closing tag.
        end = raw.rfind(b"</robot>")
        root = ET.fromstring(raw[: end + len(b"</robot>")] if end >= 0 else raw)
    except (OSError, ET.ParseError) as exc:
        raise SimulatorError(f"cannot read humanoid URDF '{urdf_path}': {exc}") from exc
    parents = [-1] * len(LINKS)
    offsets = np.zeros((len(LINKS), 3))
    for joint in root.iter("joint"):
        child = joint.find("child").get("link")
        if child not in LINKS or child == "root":
            continue
        parent = joint.find("parent").get("link")
        xyz = [float(v) for v in joint.find("origin").get("xyz").split()]
        parents[LINKS.index(child)] = LINKS.index(parent)
        offsets[LINKS.index(child)] = np.asarray(xyz) * URDF_SCALE
    if any(p < 0 for p in parents[1:]):
        raise SimulatorError(f"humanoid URDF '{urdf_path}' lacks joints for some of {LINKS}")
    return Skeleton(tuple(parents), offsets)


@dataclass(frozen=True)
class MocapClip:
    """A DeepMimic clip resampled as arrays. times_s (F,), root_pos (F, 3) native axes, local rotations
    (F, L, 3, 3) per link (root included) in native axes."""

    name: str
    times_s: np.ndarray
    root_pos: np.ndarray
    rotations: np.ndarray
    wraps: bool = False  # "Loop": "wrap" clips repeat with the root carried on; others play back and forth

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1])


def _quat_wxyz_to_mat(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z), as the mocap files store them -> (..., 3, 3) rotations."""
    q = np.asarray(q, dtype=np.float64)
    return Rotation.from_quat(q.reshape(-1, 4)[:, [1, 2, 3, 0]]).as_matrix().reshape(*q.shape[:-1], 3, 3)


def _rot_z(angle: np.ndarray) -> np.ndarray:
    """(N,) angles (rad) -> (N, 3, 3) rotations about z (the mocap's revolute knees and elbows)."""
    return Rotation.from_euler("z", np.asarray(angle, dtype=np.float64)[:, None]).as_matrix()


def load_clip(name: str, path: Path | None = None) -> MocapClip:
    """Read a DeepMimic motion file (JSON with "Frames") into arrays. Raises SimulatorError."""
    path = path or clip_path(name)
    try:
        frames, wraps = read_clip(path)
    except MocapClipError as exc:
        raise SimulatorError(str(exc)) from exc
    times = np.concatenate([[0.0], np.cumsum(frames[:-1, 0])])
    rotations = np.tile(np.eye(3), (len(frames), len(LINKS), 1, 1))
    rotations[:, 0] = _quat_wxyz_to_mat(frames[:, 4:8])
    col = 8
    for joint, n in MOTION_JOINTS:
        li = LINKS.index(joint)
        rotations[:, li] = _quat_wxyz_to_mat(frames[:, col : col + 4]) if n == 4 else _rot_z(frames[:, col])
        col += n
    return MocapClip(name, times, frames[:, 1:4].copy(), rotations, wraps=wraps)


@dataclass(frozen=True)
class BodyShape:
    """Body-shape variation: `scale` multiplies all lengths (height), `girth` all capsule radii,
    `limb` (L,) extra per-link length factors."""

    scale: float = 1.0
    girth: float = 1.0
    limb: np.ndarray = field(default_factory=lambda: np.ones(len(LINKS)))


def random_body_shape(rng: np.random.Generator) -> BodyShape:
    limb = rng.uniform(0.94, 1.06, len(LINKS))
    for left, right in (
        ("left_hip", "right_hip"),
        ("left_knee", "right_knee"),
        ("left_ankle", "right_ankle"),
        ("left_shoulder", "right_shoulder"),
        ("left_elbow", "right_elbow"),
        ("left_wrist", "right_wrist"),
    ):
        limb[LINKS.index(right)] = limb[LINKS.index(left)]  # people are roughly symmetric
    return BodyShape(scale=float(rng.uniform(0.85, 1.12)), girth=float(rng.uniform(0.8, 1.35)), limb=limb)


def _interp_rotations(clip: MocapClip, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Root position (T, 3) and local rotations (T, L, 3, 3) at times t_s (clamped to the clip)."""
    t = np.clip(t_s, 0.0, clip.duration_s)
    i1 = np.clip(np.searchsorted(clip.times_s, t, side="right"), 1, len(clip.times_s) - 1)
    i0 = i1 - 1
    a = (t - clip.times_s[i0]) / np.maximum(clip.times_s[i1] - clip.times_s[i0], 1e-9)
    pos = clip.root_pos[i0] * (1 - a[:, None]) + clip.root_pos[i1] * a[:, None]
    # Frames are 1/30 s apart: a linear blend re-orthonormalised by SVD is within a fraction of a degree of slerp.
    R = clip.rotations[i0] * (1 - a[:, None, None, None]) + clip.rotations[i1] * a[:, None, None, None]
    u, _, vt = np.linalg.svd(R)
    return pos, u @ vt


def forward_kinematics(
    skeleton: Skeleton, clip: MocapClip, t_s: np.ndarray, shape: BodyShape = BodyShape()
) -> tuple[np.ndarray, np.ndarray]:
    """World link poses at times t_s (T,): rotations (T, L, 3, 3) and origins (T, L, 3), metres, Z-up world
    (x forward of the clip's start heading, y left, z up), body scaled by `shape`."""
    root_pos, local = _interp_rotations(clip, np.atleast_1d(np.asarray(t_s, np.float64)))
    T = len(root_pos)
    R = np.zeros((T, len(LINKS), 3, 3))
    p = np.zeros((T, len(LINKS), 3))
    R[:, 0] = local[:, 0]
    p[:, 0] = root_pos * shape.scale
    for li in range(1, len(LINKS)):
        parent = skeleton.parents[li]
        offset = skeleton.offsets[li] * shape.scale * shape.limb[parent]
        p[:, li] = p[:, parent] + R[:, parent] @ offset
        R[:, li] = R[:, parent] @ local[:, li]
    return R_ZUP_FROM_NATIVE @ R, p @ R_ZUP_FROM_NATIVE.T


def coco17_from_fk(R: np.ndarray, p: np.ndarray, shape: BodyShape = BodyShape()) -> np.ndarray:
    """World link poses (T, L, 3, 3), (T, L, 3) -> COCO body 17 joints (T, 17, 3) metres (see module doc)."""
    out = np.zeros((len(p), 17, 3))
    neck = LINKS.index("neck")
    for k, name in enumerate(COCO_BODY_17_NAMES):
        if name in COCO_FROM_LINK:
            out[:, k] = p[:, LINKS.index(COCO_FROM_LINK[name])]
        else:
            local = np.asarray(HEAD_POINTS[name]) * shape.scale
            out[:, k] = p[:, neck] + R[:, neck] @ local
    return out


class BodySurface:
    """Points sampled uniformly on the capsule surface of one body shape, fixed in their link frames."""

    def __init__(self, shape: BodyShape, rng: np.random.Generator, points_per_m2: float = 900.0):
        links, local_pts, local_nrm = [], [], []
        for link, a, b, radius in CAPSULES:
            li = LINKS.index(link)
            a = np.asarray(a) * shape.scale * shape.limb[li]
            b = np.asarray(b) * shape.scale * shape.limb[li]
            r = radius * shape.girth * (0.5 + 0.5 * shape.scale)
            axis = b - a
            length = np.linalg.norm(axis)
            area = 2 * np.pi * r * length + 4 * np.pi * r * r
            n = max(8, int(area * points_per_m2))
            # Uniform on a capsule (Archimedes: area per unit axial length is 2*pi*r on the caps too): pick
            # the axial coordinate s uniformly over [-r, length + r], then a random direction around the axis.
            u = axis / max(length, 1e-9)
            s = rng.uniform(-r, length + r, n)
            h = np.where(s < 0, s / r, np.where(s > length, (s - length) / r, 0.0))
            perp = rng.normal(size=(n, 3))
            perp -= (perp @ u)[:, None] * u
            perp /= np.linalg.norm(perp, axis=1, keepdims=True)
            d = h[:, None] * u + np.sqrt(np.clip(1 - h * h, 0, 1))[:, None] * perp
            base = a + np.clip(s, 0, length)[:, None] * u
            local_pts.append(base + r * d)
            local_nrm.append(d)
            links.append(np.full(n, li))
        self.link_index = np.concatenate(links)
        self.local_points = np.concatenate(local_pts)  # native link axes
        self.local_normals = np.concatenate(local_nrm)

    def world(self, R: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame's link poses (L, 3, 3) (native link axes -> world), (L, 3) -> surface points (S, 3) and
        outward normals (S, 3) in the same world frame."""
        Rl = R[self.link_index]
        pts = np.einsum("sij,sj->si", Rl, self.local_points) + p[self.link_index]
        nrm = np.einsum("sij,sj->si", Rl, self.local_normals)
        return pts, nrm


@dataclass(frozen=True)
class RadarModel:
    """Sensor model of a TI IWR1443/6843-class radar after the driver's CFAR and static-clutter removal.

    Units: metres, degrees, m/s. `points_at_ref` detections for a fully moving person at `ref_range_m`,
    falling with 1/range^2 (received power falls with range^4, CFAR keeps fewer cells).
    """

    fov_azimuth_deg: float = 60.0
    fov_elevation_deg: float = 25.0
    min_range_m: float = 0.5
    max_range_m: float = 8.0
    points_at_ref: float = 45.0
    ref_range_m: float = 3.0
    static_velocity_mps: float = 0.08  # |radial velocity| the clutter removal suppresses
    static_keep_prob: float = 0.04
    range_sigma_m: float = 0.025
    azimuth_sigma_deg: float = 1.2
    elevation_sigma_deg: float = 2.5
    velocity_sigma_mps: float = 0.04
    ghosts_per_frame: float = 1.5
    occlusion_bin_deg: float = 2.0
    occlusion_depth_m: float = 0.12


def _spherical(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r = np.linalg.norm(points, axis=1)
    az = np.arctan2(points[:, 1], points[:, 0])
    el = np.arcsin(np.clip(points[:, 2] / np.maximum(r, 1e-9), -1, 1))
    return r, az, el


def _cartesian(r: np.ndarray, az: np.ndarray, el: np.ndarray) -> np.ndarray:
    return np.stack([r * np.cos(el) * np.cos(az), r * np.cos(el) * np.sin(az), r * np.sin(el)], axis=1)


def radar_frame(
    surfaces: list[tuple[np.ndarray, np.ndarray, np.ndarray]], model: RadarModel, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One radar frame from the people in view.

    surfaces: per person (points (S, 3), normals (S, 3), velocities (S, 3)) in the radar frame (REP-103).
    Returns points (N, 5) float32 [x, y, z, radial velocity (positive = moving away), snr dB] and the person
    index (N,) int32 of each point (-1 for ghosts).
    """
    if not surfaces:
        return np.zeros((0, 5), np.float32), np.zeros((0,), np.int32)
    pts = np.concatenate([s[0] for s in surfaces])
    nrm = np.concatenate([s[1] for s in surfaces])
    vel = np.concatenate([s[2] for s in surfaces])
    owner = np.concatenate([np.full(len(s[0]), i) for i, s in enumerate(surfaces)])
    r, az, el = _spherical(pts)
    ray = pts / np.maximum(r, 1e-9)[:, None]
    facing = np.einsum("ij,ij->i", nrm, -ray)
    inside = (
        (facing > 0.05)
        & (r > model.min_range_m)
        & (r < model.max_range_m)
        & (np.abs(np.degrees(az)) < model.fov_azimuth_deg)
        & (np.abs(np.degrees(el)) < model.fov_elevation_deg)
    )
    # Occlusion: within each angular cell only surface close to the nearest one reflects.
    b = np.radians(model.occlusion_bin_deg)
    cell = np.floor(az / b).astype(np.int64) * 100000 + np.floor(el / b).astype(np.int64)
    idx = np.flatnonzero(inside)
    if len(idx):
        _, inv = np.unique(cell[idx], return_inverse=True)
        nearest = np.full(inv.max() + 1, np.inf)
        np.minimum.at(nearest, inv, r[idx])
        idx = idx[r[idx] <= nearest[inv] + model.occlusion_depth_m]
    v_r = np.einsum("ij,ij->i", vel[idx], ray[idx])
    moving = np.abs(v_r) >= model.static_velocity_mps
    keep = moving | (rng.random(len(idx)) < model.static_keep_prob)
    idx, v_r = idx[keep], v_r[keep]
    chosen = []
    for person in range(len(surfaces)):
        cand = np.flatnonzero(owner[idx] == person)
        n_vis = np.count_nonzero(inside & (owner == person))
        if len(cand) == 0 or n_vis == 0:
            continue
        rng_m = float(np.median(r[idx[cand]]))
        lam = model.points_at_ref * (model.ref_range_m / rng_m) ** 2
        # A still person gives few points: the expected count scales with the surface the clutter removal keeps.
        lam *= min(1.0, 1.6 * len(cand) / n_vis)
        m = min(len(cand), rng.poisson(min(lam, 120.0)))
        if m:
            w = facing[idx[cand]] + 0.3
            chosen.append(cand[rng.choice(len(cand), m, replace=False, p=w / w.sum())])
    sel = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
    src, v_sel = idx[sel], v_r[sel]
    n = len(src)
    r_n = r[src] + rng.normal(0, model.range_sigma_m, n)
    az_n = az[src] + np.radians(rng.normal(0, model.azimuth_sigma_deg, n))
    el_n = el[src] + np.radians(rng.normal(0, model.elevation_sigma_deg, n))
    xyz = _cartesian(r_n, az_n, el_n)
    v_n = v_sel + rng.normal(0, model.velocity_sigma_mps, n)
    snr = (
        10 * np.log10(np.maximum(facing[src], 0.05)) - 40 * np.log10(r_n / model.ref_range_m) + 18 + rng.normal(0, 3, n)
    )
    out = [np.column_stack([xyz, v_n, snr])]
    labels = [owner[src]]
    # Ghosts: multipath copies behind real detections and a few uniform false alarms.
    n_ghost = rng.poisson(model.ghosts_per_frame)
    if n_ghost:
        g_r = rng.uniform(model.min_range_m, model.max_range_m, n_ghost)
        g_az = np.radians(rng.uniform(-model.fov_azimuth_deg, model.fov_azimuth_deg, n_ghost))
        g_el = np.radians(rng.uniform(-model.fov_elevation_deg, model.fov_elevation_deg, n_ghost))
        if n:
            mp = rng.random(n_ghost) < 0.5
            pick = rng.integers(0, n, n_ghost)
            g_r = np.where(mp, r_n[pick] + rng.uniform(0.3, 1.5, n_ghost), g_r)
            g_az = np.where(mp, az_n[pick] + np.radians(rng.normal(0, 3, n_ghost)), g_az)
            g_el = np.where(mp, el_n[pick], g_el)
        g_v = rng.uniform(-1.5, 1.5, n_ghost)
        g_v[np.abs(g_v) < model.static_velocity_mps] += 2 * model.static_velocity_mps
        g_snr = rng.normal(8, 3, n_ghost)
        out.append(np.column_stack([_cartesian(g_r, g_az, g_el), g_v, g_snr]))
        labels.append(np.full(n_ghost, -1))
    return np.concatenate(out).astype(np.float32), np.concatenate(labels).astype(np.int32)


@dataclass
class SimPerson:
    """One simulated person: a clip played from `t0_s`, placed at `position_xy` (radar frame, metres) with
    heading `yaw_rad`; the floor is `radar_height_m` below the radar."""

    clip: MocapClip
    shape: BodyShape
    surface: BodySurface
    t0_s: float
    position_xy: np.ndarray
    yaw_rad: float
    mirror: bool = False
    orientation: OrientationAugment | None = None  # training only: the body turned about its pelvis
    speed: float = 1.0  # clip seconds per scene second (training varies it)
    _start_xy: np.ndarray | None = field(default=None, repr=False)
    _loop_xy: np.ndarray | None = field(default=None, repr=False)

    def _clip_time(self, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scene times (T,) -> clip times (T,) and completed loops (T,) (0 for back-and-forth clips)."""
        d = max(self.clip.duration_s, 1e-6)
        u = self.t0_s + self.speed * np.asarray(t_s, np.float64)
        if self.clip.wraps:
            loops = np.floor(u / d)
            return u - loops * d, loops
        u = np.mod(u, 2 * d)
        return np.where(u < d, u, 2 * d - u), np.zeros_like(u)

    def pose(self, skeleton: Skeleton, t_s: np.ndarray, radar_height_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Scene times (T,) -> link rotations (T, L, 3, 3) (native link axes -> radar frame), origins (T, L, 3)."""
        tc, loops = self._clip_time(t_s)
        R, p = forward_kinematics(skeleton, self.clip, tc, self.shape)
        if self._start_xy is None:
            ends = forward_kinematics(skeleton, self.clip, np.array([0.0, self.clip.duration_s]), self.shape)[1][:, 0]
            self._start_xy = ends[0, :2]
            self._loop_xy = ends[1, :2] - ends[0, :2]
        shift = np.zeros((len(tc), 3))
        shift[:, :2] = loops[:, None] * self._loop_xy - self._start_xy
        p = p + shift[:, None, :]
        if self.mirror:
            # Mirror the motion left-right (world y -> -y); M R N (N flips the native z = right axis) keeps the
            # link frames proper rotations, and left/right links swap roles.
            M = np.diag([1.0, -1.0, 1.0])
            R = M @ R @ np.diag([1.0, 1.0, -1.0])
            p = p @ M.T
            R, p = R[:, list(_MIRROR_LINKS)], p[:, list(_MIRROR_LINKS)]
        if self.orientation is not None:
            R, p = self.orientation.apply(np.asarray(t_s, np.float64), R, p, self.shape.scale)
        c, s = np.cos(self.yaw_rad), np.sin(self.yaw_rad)
        Rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        offset = np.array([self.position_xy[0], self.position_xy[1], -radar_height_m])
        return Rz @ R, p @ Rz.T + offset

    def observe(
        self, skeleton: Skeleton, t_s: np.ndarray, radar_height_m: float, dt_s: float = 1 / 120
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Scene times (T,) -> per time: surface points, normals, velocities (S, 3) and COCO 17 joints (17, 3),
        all in the radar frame. One batched forward kinematics for all times."""
        t = np.atleast_1d(np.asarray(t_s, np.float64))
        R, p = self.pose(skeleton, np.concatenate([t, t + dt_s]), radar_height_m)
        joints = coco17_from_fk(R[: len(t)], p[: len(t)], self.shape)
        out = []
        for k in range(len(t)):
            pts0, nrm = self.surface.world(R[k], p[k])
            pts1, _ = self.surface.world(R[len(t) + k], p[len(t) + k])
            out.append((pts0, nrm, (pts1 - pts0) / dt_s, joints[k]))
        return out


def _rotvec_to_mat(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vectors (T, 3) radians -> rotation matrices (T, 3, 3) (Rodrigues)."""
    angle = np.linalg.norm(rotvec, axis=1)
    axis = rotvec / np.maximum(angle, 1e-12)[:, None]
    x, y, z = axis[:, 0], axis[:, 1], axis[:, 2]
    zero = np.zeros_like(x)
    K = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    c, s = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    return np.eye(3) + s * K + (1 - c) * (K @ K)


@dataclass(frozen=True)
class OrientationAugment:
    """Pose-space augmentation for training: the whole body turned about its pelvis by R(t) = exp(t * rate) tilt.

    The allowed training clips (walk, run, punch, ...) are almost all upright; flips, rolls, cartwheels and
    getting up face-down are largely the same limb configurations in other orientations of the whole body.
    `tilt` (3, 3) is the orientation at t = 0, `rate_radps` (3,) a constant angular velocity (rad/s, world
    axes, so the body tumbles as in a flip or a cartwheel and the Doppler sees it). `grounded`: the lowest
    joint is put on the floor in every frame (lying, rolling, hands and feet on the floor); otherwise the body
    keeps its height and is only lifted where it would go through the floor (airborne flips).
    """

    tilt: np.ndarray
    rate_radps: np.ndarray
    grounded: bool = True

    # Height of the lowest link origin above the floor when it touches it (ankle above the sole, joint centres
    # inside a limb of radius ~5-10 cm), metres at body scale 1.
    FLOOR_CLEARANCE_M = 0.03

    def apply(
        self, t_s: np.ndarray, R: np.ndarray, p: np.ndarray, body_scale: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scene times (T,), link rotations (T, L, 3, 3) and origins (T, L, 3) in the Z-up clip frame (floor at
        z = 0) -> the same, turned about the pelvis (link 0) and kept on / above the floor."""
        A = _rotvec_to_mat(np.asarray(t_s, np.float64)[:, None] * np.asarray(self.rate_radps)[None]) @ self.tilt
        pelvis = p[:, :1]
        p_new = pelvis + np.einsum("tij,tlj->tli", A, p - pelvis)
        R_new = A[:, None] @ R
        floor = self.FLOOR_CLEARANCE_M * body_scale
        lowest = p_new[..., 2].min(axis=1)
        lift = floor - lowest if self.grounded else np.maximum(floor - lowest, 0.0)
        p_new[..., 2] += lift[:, None]
        return R_new, p_new


def random_orientation_augment(rng: np.random.Generator, max_rate_radps: float = 9.0) -> OrientationAugment:
    """A uniformly random 3D body orientation; half the time also a tumble about a random axis at up to
    max_rate_radps (a backflip turns ~9 rad/s); grounded 70 % of the time."""
    q = rng.normal(size=4)
    w, x, y, z = q / np.linalg.norm(q)  # a uniform random unit quaternion is a uniform random rotation
    tilt = _quat_wxyz_to_mat(np.array([w, x, y, z]))
    rate = np.zeros(3)
    if rng.random() < 0.5:
        axis = rng.normal(size=3)
        rate = axis / np.linalg.norm(axis) * rng.uniform(1.0, max_rate_radps)
    return OrientationAugment(tilt=tilt, rate_radps=rate, grounded=bool(rng.random() < 0.7))


def source_balanced_weights(clip_names: tuple[str, ...]) -> np.ndarray:
    """Clip probabilities (len,) that give each motion source equal weight per clip: the clips of a sub-folder
    (walker/*: five takes of walking and turning) share the weight of one top-level clip, so walking does not
    dominate the training set."""
    groups = [n.split("/")[0] if "/" in n else n for n in clip_names]
    w = np.array([1.0 / groups.count(g) for g in groups])
    return w / w.sum()


_MIRROR_LINKS = tuple(LINKS.index(n.replace("left", "#").replace("right", "left").replace("#", "right")) for n in LINKS)


def random_person(
    rng: np.random.Generator,
    skeleton: Skeleton,
    clips: list[MocapClip],
    position_xy: np.ndarray,
    allow_mirror: bool = True,
    orientation_prob: float = 0.0,
    speed_range: tuple[float, float] | None = None,
    clip_weights: np.ndarray | None = None,
) -> SimPerson:
    """A random body, clip, phase, heading (and mirror) at position_xy. Training augmentation (off by default, and
    then the random draws are those of earlier versions, so evaluation sequences do not change): with probability
    orientation_prob a random whole-body orientation / tumble (OrientationAugment); speed_range: clip playback
    speed drawn uniformly from it; clip_weights (len(clips),): probabilities of the clips (default uniform)."""
    shape = random_body_shape(rng)
    clip = clips[rng.integers(len(clips)) if clip_weights is None else rng.choice(len(clips), p=clip_weights)]
    person = SimPerson(
        clip=clip,
        shape=shape,
        surface=BodySurface(shape, rng),
        t0_s=float(rng.uniform(0, clip.duration_s)),
        position_xy=np.asarray(position_xy, np.float64),
        yaw_rad=float(rng.uniform(-np.pi, np.pi)),
        mirror=bool(allow_mirror and rng.random() < 0.5),
    )
    if orientation_prob > 0 and rng.random() < orientation_prob:
        person.orientation = random_orientation_augment(rng)
    if speed_range is not None:
        person.speed = float(rng.uniform(*speed_range))
    return person


def random_position(
    rng: np.random.Generator,
    model: RadarModel,
    min_range_m: float = 1.5,
    max_range_m: float = 6.0,
    max_azimuth_deg: float = 45.0,
) -> np.ndarray:
    r = rng.uniform(min_range_m, max_range_m)
    az = np.radians(rng.uniform(-max_azimuth_deg, max_azimuth_deg))
    return np.array([r * np.cos(az), r * np.sin(az)])


@dataclass
class SimScene:
    """People in front of one radar; `frames()` yields what the radar reports at `rate_hz` with ground truth."""

    people: list[SimPerson]
    skeleton: Skeleton
    model: RadarModel = RadarModel()
    radar_height_m: float = 1.0
    rate_hz: float = 20.0

    def frames(self, times_s: np.ndarray, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Scene times (T,) -> per time: points (N, 5) float32, person index (N,) int32 (-1 ghost) and joints
        (P, 17, 3) float64, all in the radar frame (REP-103). SYNTHETIC."""
        obs = [p.observe(self.skeleton, times_s, self.radar_height_m) for p in self.people]
        out = []
        for k in range(len(np.atleast_1d(times_s))):
            per = [o[k] for o in obs]
            points, labels = radar_frame([(o[0], o[1], o[2]) for o in per], self.model, rng)
            joints = np.stack([o[3] for o in per]) if per else np.zeros((0, 17, 3))
            out.append((points, labels, joints))
        return out
